import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { ShotlistError } from "../../src/domain/errors.js";
import { buildApp } from "../../src/http/app.js";
import {
  enqueueShopifyWriteback,
  SHOPIFY_WRITEBACK_KIND,
} from "../../src/integrations/shopify/writeback.js";
import { startWorker, type Worker } from "../../src/queue/worker.js";
import { enqueueJob, getJob } from "../../src/store/jobs.js";
import { type FakeShopify, sendShopifyWebhook, startFakeShopify } from "../fakes/shopify.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { freePort } from "../helpers/net.js";

const photos = [0, 1, 2, 3].map((index) =>
  readFileSync(
    fileURLToPath(
      new URL(`../../examples/catalogue/images/MUG-STONEWARE-${index}.jpg`, import.meta.url),
    ),
  ),
);
const SECRET = "shpss_writeback_test_secret";
const SHOPIFY_ID = 8_123_456_789;

for (const backend of BACKENDS) {
  describe(`Shopify write-back on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let worker: Worker;
    /** Queues a write-back of MUG-WRITEBACK under its own key and waits for it to succeed. */
    const runWriteback = async (label: string, what: string) => {
      const job = await enqueueJob(env.runtime.db, {
        kind: SHOPIFY_WRITEBACK_KIND,
        key: `${SHOPIFY_WRITEBACK_KIND}:MUG-WRITEBACK:${label}`,
        payload: { sku: "MUG-WRITEBACK" },
        maxAttempts: 3,
      });
      worker.wake();
      return waitFor(async () => {
        const [row] = await env.runtime.db.query<{ state: string; attempts: number }>(
          "select state, attempts from jobs where id = $1",
          [job.id],
        );
        return row?.state === "succeeded" && row;
      }, what);
    };
    let cdn: Server;
    let cdnUrl: string;
    let shopify: FakeShopify;
    let shotlistUrl: string;
    const productGid = `gid://shopify/Product/${SHOPIFY_ID}`;

    before(async () => {
      // The fake Shopify CDN: /s/files/mug-N.jpg serves the product's Nth photo.
      cdn = createServer((request, response) => {
        const index = Number(/mug-(\d)\.jpg/.exec(request.url ?? "")?.[1] ?? 0);
        response.writeHead(200, { "content-type": "image/jpeg" }).end(photos[index] ?? photos[0]);
      });
      await new Promise<void>((resolve) => cdn.listen(0, "127.0.0.1", resolve));
      cdnUrl = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;
      shopify = await startFakeShopify({ maximumAvailable: 60, restoreRate: 50 });
      const port = await freePort();
      shotlistUrl = `http://127.0.0.1:${port}`;
      env = await createTestRuntime(backend, {
        PORT: String(port),
        SHOTLIST_PUBLIC_URL: shotlistUrl,
        SHOTLIST_SHOPIFY_WEBHOOK_SECRET: SECRET,
        SHOTLIST_SHOPIFY_CATEGORIES: "Mugs=home",
        SHOTLIST_ALLOW_PRIVATE_NETWORKS: "1",
        SHOTLIST_SHOPIFY_SHOP: shopify.shop,
        SHOTLIST_SHOPIFY_ACCESS_TOKEN: shopify.accessToken,
        SHOTLIST_SHOPIFY_API_URL: shopify.url,
      });
      app = await buildApp(env.runtime);
      await app.listen({ port, host: "127.0.0.1" });
      worker = env.runtime.startWorker({ pollMs: 20, shopifyPollMs: 30 });
    });
    after(async () => {
      await worker?.stop();
      await app?.close();
      cdn?.close();
      await shopify?.close();
      await env?.cleanup();
    });

    const writebackJobs = () =>
      env.runtime.db.query<{ id: number; key: string; state: string; attempts: number }>(
        "select id, key, state, attempts from jobs where kind = $1 order by id",
        [SHOPIFY_WRITEBACK_KIND],
      );

    it("writes a Shopify product's published assets back in shot-list order, exactly once", async () => {
      shopify.createProduct(SHOPIFY_ID, "Speckled Mug");
      const merchant = shopify.addMerchantMedia(productGid, "Photo the merchant took");
      // A burst of 429s when the write-back starts talking to Shopify: waited out.
      shopify.fail429(3, 1);

      const response = await sendShopifyWebhook({
        url: `${shotlistUrl}/webhooks/shopify`,
        secret: SECRET,
        shop: shopify.shop,
        topic: "products/create",
        payload: {
          id: SHOPIFY_ID,
          title: "Speckled Mug",
          vendor: "Kiln & Co",
          product_type: "Mugs",
          tags: "ceramic",
          options: [{ name: "Title", position: 1, values: ["Default Title"] }],
          variants: [{ id: 1, sku: "MUG-WRITEBACK", position: 1, option1: "Default Title" }],
          images: [0, 1, 2, 3].map((index) => ({
            id: 90 + index,
            position: index + 1,
            src: `${cdnUrl}/s/files/mug-${index}.jpg`,
          })),
        },
      });
      assert.equal(response.status, 200, await response.text());

      const [job] = await waitFor(
        async () => {
          const jobs = await writebackJobs();
          return jobs.length > 0 && jobs.every((row) => row.state === "succeeded") && jobs;
        },
        "the write-back job to succeed",
        45_000,
      ).catch(async (error: unknown) => {
        const state = await env.runtime.db.query(
          `select kind, key, state, attempts, last_error from jobs order by id`,
        );
        const slots = await env.runtime.db.query(
          "select slot, required, state, reason from product_slots order by position",
        );
        throw new Error(
          `${String(error)}\njobs: ${JSON.stringify(state)}\nslots: ${JSON.stringify(slots)}`,
        );
      });
      assert.ok(job);
      assert.equal(shopify.throttled429, 3, "the 429 burst was answered and waited out");
      assert.equal(
        shopify.throttledGraphql,
        0,
        "the client waited for bucket points instead of being refused",
      );

      const published = await env.runtime.db.query<{ slot: string; alt: string }>(
        `select slot, alt from product_slots where product_sku = 'MUG-WRITEBACK' and state = 'published'
       order by position`,
      );
      assert.ok(published.length >= 3, `published slots: ${published.length}`);
      const media = shopify.products.get(productGid)?.media ?? [];
      // The merchant's photo first and untouched, then ours in shot-list order with the slot alt.
      assert.equal(media[0]?.id, merchant.id);
      assert.equal(media[0]?.alt, "Photo the merchant took");
      assert.deepEqual(
        media.slice(1).map((item) => item.alt),
        published.map((row) => row.alt),
      );
      for (const item of media.slice(1)) {
        assert.equal(item.status, "READY", `${item.id} is ${item.status}`);
        assert.equal(item.fetched, "image", "Shopify could fetch the asset's public URL");
        assert.ok(item.originalSource?.startsWith(`${shotlistUrl}/a/`));
      }
      const records = await env.runtime.db.query<{
        slot: string;
        status: string;
        media_gid: string;
      }>(
        "select slot, status, media_gid from shopify_media where product_gid = $1 order by position",
        [productGid],
      );
      assert.deepEqual(
        records.map((row) => [row.slot, row.status, row.media_gid]),
        published.map((row, index) => [row.slot, "ready", media[index + 1]?.id]),
      );

      // Running the write-back again attaches nothing new and deletes nothing.
      const before = media.map((item) => item.id);
      const operationsBefore = shopify.operations.length;
      await runWriteback("rerun", "the second write-back to succeed");
      const after = shopify.products.get(productGid)?.media.map((item) => item.id);
      assert.deepEqual(after, before);
      const newOperations = shopify.operations.slice(operationsBefore);
      assert.ok(newOperations.length > 0);
      assert.ok(
        newOperations.every((operation) => operation === "product"),
        `only reads on a re-run: ${newOperations.join(", ")}`,
      );
    });

    it("replaces Shotlist media a newer asset superseded, and leaves merchant-edited media alone", async () => {
      const records = await env.runtime.db.query<{
        slot: string;
        sha256: string;
        media_gid: string;
      }>(
        "select slot, sha256, media_gid from shopify_media where product_gid = $1 order by position",
        [productGid],
      );
      const [first, second] = records;
      assert.ok(first && second);
      // Pretend both slots showed older assets before: their Shopify media are stale now. One was
      // edited by a merchant in the admin (its alt is no longer ours), the other was not.
      const product = shopify.products.get(productGid);
      assert.ok(product);
      const stale = shopify.addMerchantMedia(productGid, "Old hero");
      const edited = shopify.addMerchantMedia(productGid, "Merchant rewrote this alt");
      await env.runtime.db.query(
        `insert into shopify_media (shop, product_gid, slot, sha256, media_gid, status, alt, position)
       values ($1, $2, $3, 'old-hero', $4, 'ready', 'Old hero', 0),
              ($1, $2, $5, 'old-angle', $6, 'ready', 'Original alt', 1)`,
        [shopify.shop, productGid, first.slot, stale.id, second.slot, edited.id],
      );
      await runWriteback("replace", "the replacing write-back to succeed");
      const ids = shopify.products.get(productGid)?.media.map((item) => item.id) ?? [];
      assert.ok(!ids.includes(stale.id), "the superseded Shotlist media was deleted");
      assert.ok(ids.includes(edited.id), "the merchant-edited media was left alone");
      const statuses = await env.runtime.db.query<{ sha256: string; status: string }>(
        "select sha256, status from shopify_media where sha256 in ('old-hero', 'old-angle') order by sha256",
      );
      assert.deepEqual(
        statuses.map((row) => [row.sha256, row.status]),
        [
          ["old-angle", "left_alone"],
          ["old-hero", "removed"],
        ],
      );
    });

    it("attaches again a media Shopify failed to process", async () => {
      const [first] = await env.runtime.db.query<{ slot: string; media_gid: string }>(
        `select slot, media_gid from shopify_media where product_gid = $1 and status = 'ready'
       order by position limit 1`,
        [productGid],
      );
      assert.ok(first);
      // Forget the first slot on both sides, then make Shopify fail the next upload once.
      const product = shopify.products.get(productGid);
      assert.ok(product);
      product.media = product.media.filter((item) => item.id !== first.media_gid);
      await env.runtime.db.query("delete from shopify_media where media_gid = $1", [
        first.media_gid,
      ]);
      shopify.failNextMedia(1);
      const done = await runWriteback(
        "failed-upload",
        "the write-back to succeed after a FAILED media",
      );
      assert.equal(done.attempts, 2, "one failed attempt, then a successful one");
      const [record] = await env.runtime.db.query<{ status: string; media_gid: string }>(
        "select status, media_gid from shopify_media where product_gid = $1 and slot = $2 and status = 'ready'",
        [productGid, first.slot],
      );
      assert.ok(record, "the slot's media is recorded READY");
      const media = shopify.products.get(productGid)?.media ?? [];
      assert.equal(media.find((item) => item.id === record.media_gid)?.status, "READY");
      assert.ok(
        media.every((item) => item.status !== "FAILED"),
        "the failed media was deleted from the product",
      );
    });

    it("runs a finished write-back again when its set of images is published again (A → B → A)", async () => {
      // The first test's write-back is keyed by the product's set of images and has finished.
      const setJob = (await writebackJobs()).find((job) =>
        /:MUG-WRITEBACK:[0-9a-f]{32}$/.test(job.key),
      );
      assert.ok(setJob && setJob.state === "succeeded", "the set's write-back finished before");
      const [{ finished } = { finished: null }] = await env.runtime.db.query<{
        finished: Date | null;
      }>("select finished_at as finished from jobs where id = $1", [setJob.id]);
      const mediaBefore = shopify.products.get(productGid)?.media.map((item) => item.id) ?? [];
      // The same set published again (as after B → A): the finished job must run again.
      await env.runtime.db.transaction((tx) => enqueueShopifyWriteback(tx, ["MUG-WRITEBACK"], 3));
      worker.wake();
      await waitFor(async () => {
        const [row] = await env.runtime.db.query<{ state: string; finished_at: Date | null }>(
          "select state, finished_at from jobs where id = $1",
          [setJob.id],
        );
        return (
          row?.state === "succeeded" &&
          row.finished_at !== null &&
          finished !== null &&
          row.finished_at.getTime() > new Date(finished).getTime()
        );
      }, "the same write-back job to run again and succeed");
      const jobs = await writebackJobs();
      assert.equal(jobs.filter((job) => job.key === setJob.key).length, 1, "still one job");
      const mediaAfter = shopify.products.get(productGid)?.media.map((item) => item.id) ?? [];
      assert.deepEqual(
        [...mediaAfter].sort(),
        [...mediaBefore].sort(),
        "the rerun attached nothing twice and removed nothing of ours",
      );
    });

    it("refuses Admin API calls without the access token", async () => {
      const response = await fetch(`${shopify.url}/admin/api/2026-10/graphql.json`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ shop { name } }" }),
      });
      assert.equal(response.status, 401);
    });

    it("retries a throttled job no sooner than the Retry-After it was given", async () => {
      const job = await enqueueJob(env.runtime.db, {
        kind: "throttled-test",
        key: "throttled-test:1",
        payload: {},
        maxAttempts: 3,
      });
      const hinted = startWorker({
        db: env.runtime.db,
        log: env.runtime.log,
        pollMs: 20,
        retryBaseMs: 10,
        handlers: {
          "throttled-test": {
            async run() {
              throw new ShotlistError("shopify_error", "Shopify throttled the write-back", {
                retryable: true,
                extra: { retryAfterMs: 60_000 },
              });
            },
            async onNeedsReview() {},
          },
        },
      });
      try {
        const row = await waitFor(async () => {
          const current = await getJob(env.runtime.db, job.id);
          return current?.state === "retrying" && current;
        }, "the throttled job to be retrying");
        const [delay] = await env.runtime.db.query<{ seconds: number }>(
          "select extract(epoch from run_at - updated_at)::float8 as seconds from jobs where id = $1",
          [row.id],
        );
        assert.ok((delay?.seconds ?? 0) >= 59, `retry in ${delay?.seconds} s`);
      } finally {
        await hinted.stop();
      }
    });
  });
}
