import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { Webhook } from "standardwebhooks";
import { importCatalogue } from "../../src/cli/import.js";
import { buildApp } from "../../src/http/app.js";
import { getJob, type JobRow } from "../../src/store/jobs.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
const SHOPIFY_SECRET = "shpss_test_app_secret";
const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;
const OLD_INTAKE_SECRET = newSecret();
const NEW_INTAKE_SECRET = newSecret();

let deliveryCounter = 0;
const nextDeliveryId = () => `evt-${process.pid}-${++deliveryCounter}`;

for (const backend of BACKENDS) {
  describe(`webhooks in on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let cdn: Server;
    let cdnUrl: string;
    let cdnRequests = 0;
    before(async () => {
      // The fake Shopify CDN: serves product photos from loopback, counting requests.
      cdn = createServer((request, response) => {
        cdnRequests++;
        if (request.url?.startsWith("/missing/")) {
          response.writeHead(404, { "content-type": "text/plain" }).end("not found");
          return;
        }
        response.writeHead(200, { "content-type": "image/jpeg" }).end(photo);
      });
      await new Promise<void>((resolve) => cdn.listen(0, "127.0.0.1", resolve));
      cdnUrl = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;
      env = await createTestRuntime(backend, {
        SHOTLIST_SHOPIFY_WEBHOOK_SECRET: SHOPIFY_SECRET,
        SHOTLIST_INTAKE_WEBHOOK_SECRET: `${OLD_INTAKE_SECRET} ${NEW_INTAKE_SECRET}`,
        SHOTLIST_SHOPIFY_CATEGORIES: "Mugs=home,Tees=apparel",
        SHOTLIST_ALLOW_PRIVATE_NETWORKS: "1",
      });
      app = await buildApp(env.runtime);
      // Runs the deliveries' intake jobs (not the render jobs they create, which stay queued).
      env.runtime.startWorker({ kinds: ["intake"], pollMs: 20 });
    });
    after(async () => {
      await app.close();
      cdn.close();
      await env.cleanup();
    });

    async function counts() {
      const [row] = await env.runtime.db.query<{
        products: number;
        jobs: number;
        intakeJobs: number;
        receipts: number;
      }>(
        `select (select count(*)::integer from products) as products,
           (select count(*)::integer from jobs where kind <> 'intake') as jobs,
           (select count(*)::integer from jobs where kind = 'intake') as "intakeJobs",
           (select count(*)::integer from webhook_receipts) as receipts`,
      );
      assert.ok(row);
      return row;
    }

    /** Waits for the intake job an accepted delivery queued to finish, one way or the other. */
    async function intakeJobOf(response: LightMyRequestResponse): Promise<JobRow> {
      const body = response.json() as { status: string; jobId: number };
      assert.equal(body.status, "accepted", response.body);
      return waitFor(async () => {
        const job = await getJob(env.runtime.db, body.jobId);
        return job && ["succeeded", "needs_review", "failed"].includes(job.state) ? job : undefined;
      }, `intake job ${body.jobId}`);
    }

    /** The delivery was accepted and its intake job took the product in. */
    async function takenIn(response: LightMyRequestResponse): Promise<void> {
      assert.equal(response.statusCode, 200, response.body);
      const job = await intakeJobOf(response);
      assert.equal(job.kind, "intake");
      assert.equal(job.state, "succeeded", job.last_error ?? "");
    }

    async function recipeHashes(sku: string) {
      const rows = await env.runtime.db.query<{ slot: string; recipe_hash: string }>(
        "select slot, recipe_hash from product_slots where product_sku = $1 order by position",
        [sku],
      );
      return rows.map((row) => `${row.slot}:${row.recipe_hash}`);
    }

    function shopifyProduct(overrides: Record<string, unknown> = {}) {
      return {
        id: 7_001_234,
        title: "Speckled Mug",
        body_html: "<p>Hand-thrown.</p>",
        vendor: "Kiln & Co",
        product_type: "Mugs",
        tags: "ceramic, gift",
        status: "active",
        options: [{ name: "Color", position: 1, values: ["red", "navy"] }],
        variants: [
          { id: 41, sku: "MUG-SPECKLED", position: 1, option1: "red", price: "18.00" },
          { id: 42, sku: "MUG-SPECKLED-NAVY", position: 2, option1: "navy", price: "18.00" },
        ],
        images: [{ id: 9, position: 1, src: `${cdnUrl}/s/files/mug.jpg?v=1` }],
        ...overrides,
      };
    }

    function sendShopify(
      body: unknown,
      options: {
        topic?: string;
        eventId?: string;
        /** Send only X-Shopify-Webhook-Id with this value (older deliveries have no event id). */
        webhookIdOnly?: string;
        secret?: string;
        signature?: string | null;
      } = {},
    ): Promise<LightMyRequestResponse> {
      const raw = typeof body === "string" ? body : JSON.stringify(body);
      const signature =
        options.signature === undefined
          ? createHmac("sha256", options.secret ?? SHOPIFY_SECRET)
              .update(raw)
              .digest("base64")
          : options.signature;
      return app.inject({
        method: "POST",
        url: "/webhooks/shopify",
        payload: raw,
        headers: {
          "content-type": "application/json",
          "x-shopify-topic": options.topic ?? "products/create",
          "x-shopify-shop-domain": "kiln.myshopify.com",
          "x-shopify-api-version": "2025-07",
          ...(options.webhookIdOnly
            ? { "x-shopify-webhook-id": options.webhookIdOnly }
            : {
                "x-shopify-webhook-id": `wh-${options.eventId ?? nextDeliveryId()}`,
                "x-shopify-event-id": options.eventId ?? nextDeliveryId(),
              }),
          ...(signature === null ? {} : { "x-shopify-hmac-sha256": signature }),
        },
      });
    }

    function sendIntake(
      body: unknown,
      options: { secret?: string; id?: string; at?: Date; signature?: string } = {},
    ): Promise<LightMyRequestResponse> {
      const raw = typeof body === "string" ? body : JSON.stringify(body);
      const id = options.id ?? `msg_${nextDeliveryId()}`;
      const at = options.at ?? new Date();
      const signature =
        options.signature ?? new Webhook(options.secret ?? OLD_INTAKE_SECRET).sign(id, at, raw);
      return app.inject({
        method: "POST",
        url: "/webhooks/intake",
        payload: raw,
        headers: {
          "content-type": "application/json",
          "webhook-id": id,
          "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
          "webhook-signature": signature,
        },
      });
    }

    const codeOf = (response: LightMyRequestResponse) => {
      assert.match(String(response.headers["content-type"]), /^application\/problem\+json/);
      return (response.json() as { code: string }).code;
    };

    it("turns a signed Shopify products/create into a product with its jobs", async () => {
      const before = cdnRequests;
      const start = await counts();
      const response = await sendShopify(shopifyProduct());
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json() as { status: string; sku: string; jobId: number };
      assert.equal(body.status, "accepted");
      assert.equal(body.sku, "MUG-SPECKLED");
      await takenIn(response);
      // home: hero, three angles, lifestyle, and the swatch grid (two colour variants).
      assert.equal((await counts()).jobs, start.jobs + 6);
      assert.equal(cdnRequests, before + 1, "the reference photo was fetched from the CDN");

      const product = (
        await app.inject({
          url: "/v1/products/MUG-SPECKLED",
          headers: { ...(await apiHeaders(env)) },
        })
      ).json() as {
        category: string;
        attributes: Record<string, string>;
        variants: { sku: string; attributes: Record<string, string> }[];
        referenceImages: { origin: string }[];
      };
      assert.equal(product.category, "home");
      assert.equal(product.attributes.tags, "ceramic, gift");
      assert.deepEqual(
        product.variants.map((variant) => [variant.sku, variant.attributes.color]),
        [
          ["MUG-SPECKLED", "red"],
          ["MUG-SPECKLED-NAVY", "navy"],
        ],
      );
      assert.equal(product.referenceImages[0]?.origin, `${cdnUrl}/s/files/mug.jpg?v=1`);
    });

    it("acts once on a delivery sent five times, even concurrently", async () => {
      const eventId = nextDeliveryId();
      const payload = shopifyProduct({
        id: 7_001_300,
        variants: [{ id: 51, sku: "MUG-FIVE", option1: "red" }],
      });
      const start = await counts();
      const first = await sendShopify(payload, { eventId });
      await takenIn(first);
      const taken = await counts();
      assert.ok(taken.jobs > start.jobs, "the first copy planned render jobs");
      const retries = await Promise.all(
        Array.from({ length: 4 }, () => sendShopify(payload, { eventId })),
      );
      for (const retry of retries) {
        assert.equal(retry.statusCode, 200, retry.body);
        assert.equal((retry.json() as { status: string }).status, "duplicate");
      }
      const end = await counts();
      assert.equal(end.receipts, start.receipts + 1);
      assert.equal(end.intakeJobs, start.intakeJobs + 1);
      assert.deepEqual(end, taken, "the duplicates changed nothing");

      // Concurrent copies of a new delivery: exactly one is accepted.
      const raceId = nextDeliveryId();
      const racePayload = shopifyProduct({
        id: 7_001_301,
        variants: [{ id: 52, sku: "MUG-RACE", option1: "navy" }],
      });
      const racers = await Promise.all(
        Array.from({ length: 5 }, () => sendShopify(racePayload, { eventId: raceId })),
      );
      const statuses = racers.map((racer) => (racer.json() as { status: string }).status).sort();
      assert.deepEqual(statuses, ["accepted", "duplicate", "duplicate", "duplicate", "duplicate"]);
      const raceJobs = await env.runtime.db.query<{ id: number }>(
        "select id from jobs where kind = 'intake' and key = $1",
        [`intake:shopify:${raceId}`],
      );
      assert.equal(raceJobs.length, 1, "five concurrent copies queued one intake job");
      const accepted = racers.find(
        (racer) => (racer.json() as { status: string }).status === "accepted",
      );
      assert.ok(accepted);
      assert.equal((accepted.json() as { jobId: number }).jobId, raceJobs[0]?.id);
      await takenIn(accepted);
      const raced = await counts();
      assert.equal(raced.receipts, end.receipts + 1);
      assert.equal(raced.intakeJobs, end.intakeJobs + 1);
    });

    it("falls back to X-Shopify-Webhook-Id when there is no event id", async () => {
      const payload = shopifyProduct({
        id: 7_001_350,
        variants: [{ id: 53, sku: "MUG-WEBHOOK-ID", option1: "red" }],
      });
      const webhookIdOnly = `wh-only-${nextDeliveryId()}`;
      const first = await sendShopify(payload, { webhookIdOnly });
      await takenIn(first);
      const second = await sendShopify(payload, { webhookIdOnly });
      assert.equal((second.json() as { status: string }).status, "duplicate");
      const [receipt] = await env.runtime.db.query<{ delivery_id: string }>(
        "select delivery_id from webhook_receipts where sku = 'MUG-WEBHOOK-ID'",
      );
      assert.equal(receipt?.delivery_id, webhookIdOnly);
    });

    it("refuses forged and unsigned Shopify deliveries with 401 and writes nothing", async () => {
      const start = await counts();
      const payload = shopifyProduct({ id: 7_001_400, variants: [{ id: 61, sku: "MUG-FORGED" }] });
      const forged = await sendShopify(payload, { secret: "not-the-app-secret" });
      assert.equal(forged.statusCode, 401);
      assert.equal(codeOf(forged), "invalid_signature");
      const missing = await sendShopify(payload, { signature: null });
      assert.equal(missing.statusCode, 401);
      const garbage = await sendShopify(payload, { signature: "%%%not-base64" });
      assert.equal(garbage.statusCode, 401);
      // A valid signature over other bytes: the body was changed in transit.
      const raw = JSON.stringify(payload);
      const other = createHmac("sha256", SHOPIFY_SECRET).update(`${raw} `).digest("base64");
      assert.equal((await sendShopify(raw, { signature: other })).statusCode, 401);
      assert.deepEqual(await counts(), start);
    });

    it("acknowledges unknown topics with 202 and ignores them", async () => {
      const start = await counts();
      const response = await sendShopify({ id: 1, line_items: [] }, { topic: "orders/create" });
      assert.equal(response.statusCode, 202, response.body);
      assert.equal((response.json() as { status: string }).status, "ignored");
      assert.deepEqual(await counts(), start);
    });

    it("answers 400 to invalid JSON, 413 to an oversized body, 422 to missing fields", async () => {
      const start = await counts();
      const broken = await sendShopify('{"id": 5, "title": ');
      assert.equal(broken.statusCode, 400);
      assert.equal(codeOf(broken), "invalid_json");
      const huge = await sendShopify(
        JSON.stringify({ id: 5, title: "x", pad: "x".repeat(5 * 1024 * 1024) }),
      );
      assert.equal(huge.statusCode, 413);
      assert.equal(codeOf(huge), "payload_too_large");
      const { title: _title, ...untitled } = shopifyProduct({ id: 7_001_500 });
      const missing = await sendShopify(untitled);
      assert.equal(missing.statusCode, 422, missing.body);
      assert.match((missing.json() as { detail: string }).detail, /title/);
      const unmapped = await sendShopify(shopifyProduct({ id: 7_001_501, product_type: "Rugs" }));
      assert.equal(unmapped.statusCode, 422);
      assert.equal(codeOf(unmapped), "unknown_category");
      assert.deepEqual(await counts(), start);
    });

    it("keeps one variant per colour when Shopify sends 500 variants", async () => {
      const colors = ["red", "navy", "sand", "black", "white"];
      const variants = Array.from({ length: 500 }, (_, index) => ({
        id: 100_000 + index,
        sku: `TEE-MANY-${index}`,
        position: index + 1,
        option1: colors[index % colors.length],
        option2: `size-${Math.floor(index / colors.length)}`,
      }));
      const response = await sendShopify(
        shopifyProduct({
          id: 7_001_600,
          product_type: "Tees",
          options: [
            { name: "Colour", position: 1 },
            { name: "Size", position: 2 },
          ],
          variants,
        }),
      );
      await takenIn(response);
      const stored = await env.runtime.db.query<{ sku: string; attributes: { color: string } }>(
        "select sku, attributes from variants where product_sku = 'TEE-MANY-0' order by position",
      );
      assert.deepEqual(
        stored.map((row) => [row.sku, row.attributes.color]),
        colors.map((color, index) => [`TEE-MANY-${index}`, color]),
      );
    });

    it("creates no job for an update that changes nothing a recipe reads", async () => {
      const original = shopifyProduct({
        id: 7_001_700,
        variants: [{ id: 71, sku: "MUG-UPDATE", option1: "red" }],
      });
      await takenIn(await sendShopify(original));
      const hashes = await recipeHashes("MUG-UPDATE");
      const jobsBefore = (await counts()).jobs;
      const retitled = await sendShopify(
        { ...original, title: "Speckled Mug (new)", tags: "sale", body_html: "<p>New</p>" },
        { topic: "products/update" },
      );
      await takenIn(retitled);
      const [saved] = await env.runtime.db.query<{ title: string }>(
        "select title from products where sku = 'MUG-UPDATE'",
      );
      assert.equal(saved?.title, "Speckled Mug (new)", "the title was saved");
      assert.equal((await counts()).jobs, jobsBefore);
      assert.deepEqual(await recipeHashes("MUG-UPDATE"), hashes);

      // A new colour is something the swatch grid reads: that update makes a job.
      const recoloured = await sendShopify(
        {
          ...original,
          variants: [
            { id: 71, sku: "MUG-UPDATE", option1: "red" },
            { id: 72, sku: "MUG-UPDATE-NAVY", option1: "navy" },
          ],
        },
        { topic: "products/update" },
      );
      await takenIn(recoloured);
      assert.equal((await counts()).jobs, jobsBefore + 1);
    });

    it("verifies Standard Webhooks: valid, rotated secret, stale, forged", async () => {
      const product = {
        sku: "PIM-LAMP",
        title: "Brass Lamp",
        category: "home",
        referenceImages: [{ url: `${cdnUrl}/pim/lamp.jpg` }],
      };
      const start = await counts();
      const stale = await sendIntake(product, { at: new Date(Date.now() - 6 * 60_000) });
      assert.equal(stale.statusCode, 401, stale.body);
      const forged = await sendIntake(product, { secret: newSecret() });
      assert.equal(forged.statusCode, 401);
      assert.equal(codeOf(forged), "invalid_signature");
      const unsigned = await sendIntake(product, { signature: "" });
      assert.equal(unsigned.statusCode, 401);
      assert.deepEqual(await counts(), start);

      const valid = await sendIntake(product, { id: "msg_lamp_1" });
      await takenIn(valid);
      assert.equal((await counts()).jobs, start.jobs + 5);
      const again = await sendIntake(product, { id: "msg_lamp_1" });
      assert.equal((again.json() as { status: string }).status, "duplicate");

      // Rotation: a sender already on the new secret, and one sending both signatures.
      const rotated = await sendIntake(
        { ...product, sku: "PIM-LAMP-2" },
        { secret: NEW_INTAKE_SECRET },
      );
      await takenIn(rotated);
      const raw = JSON.stringify({ ...product, sku: "PIM-LAMP-3" });
      const at = new Date();
      const both = [newSecret(), NEW_INTAKE_SECRET]
        .map((secret) => new Webhook(secret).sign("msg_lamp_3", at, raw))
        .join(" ");
      await takenIn(await sendIntake(raw, { id: "msg_lamp_3", at, signature: both }));

      const missing = await sendIntake({ sku: "PIM-NOTITLE", category: "home" });
      assert.equal(missing.statusCode, 422);
      const broken = await sendIntake("{nope");
      assert.equal(broken.statusCode, 400);
      assert.equal((await counts()).receipts, start.receipts + 3);
    });

    it("gives the same recipes and no duplicate jobs through all four doors", async () => {
      const sku = "MUG-FOURDOORS";
      const imageUrl = `${cdnUrl}/s/files/four.jpg`;
      const product = {
        sku,
        title: "Four Doors Mug",
        category: "home",
        variants: [
          { sku, attributes: { color: "red" } },
          { sku: `${sku}-NAVY`, attributes: { color: "navy" } },
        ],
        referenceImages: [{ url: imageUrl }],
      };
      const jobsBefore = (await counts()).jobs;
      const viaApi = await app.inject({
        method: "POST",
        url: "/v1/products",
        payload: product,
        headers: { ...(await apiHeaders(env)) },
      });
      assert.equal(viaApi.statusCode, 201, viaApi.body);
      const planned = await recipeHashes(sku);
      assert.equal(planned.length, 6);
      assert.equal((await counts()).jobs, jobsBefore + 6);

      const viaIntake = await sendIntake(product);
      await takenIn(viaIntake);
      assert.deepEqual(await recipeHashes(sku), planned);

      const viaShopify = await sendShopify(
        shopifyProduct({
          id: 7_001_800,
          title: "Four Doors Mug",
          variants: [
            { id: 81, sku, option1: "red" },
            { id: 82, sku: `${sku}-NAVY`, option1: "navy" },
          ],
          images: [{ id: 1, position: 1, src: imageUrl }],
        }),
      );
      assert.equal((viaShopify.json() as { sku: string }).sku, sku);
      await takenIn(viaShopify);
      assert.deepEqual(await recipeHashes(sku), planned);

      const folder = mkdtempSync(join(tmpdir(), "shotlist-doors-"));
      try {
        const file = join(folder, "catalogue.jsonl");
        writeFileSync(file, `${JSON.stringify(product)}\n`);
        const report = await importCatalogue(env.runtime.intake, file, {
          dryRun: false,
          progress: false,
          print: () => {},
        });
        assert.equal(report.accepted, 1, JSON.stringify(report.rejected));
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
      assert.deepEqual(await recipeHashes(sku), planned);
      assert.equal((await counts()).jobs, jobsBefore + 6, "no door added a duplicate job");
    });

    it("answers 200 to a delivery whose reference 404s; its intake job records why", async () => {
      const start = await counts();
      const response = await sendIntake({
        sku: "PIM-GONE",
        title: "Vanished Vase",
        category: "home",
        referenceImages: [{ url: `${cdnUrl}/missing/vase.jpg` }],
      });
      assert.equal(response.statusCode, 200, response.body);
      const job = await intakeJobOf(response);
      assert.equal(job.state, "needs_review");
      assert.match(job.last_error ?? "", /referenceImages\.0/);
      assert.match(job.last_error ?? "", /answered 404/);
      const end = await counts();
      assert.equal(end.products, start.products, "no product was written");
      assert.equal(end.jobs, start.jobs);
      assert.equal(end.receipts, start.receipts + 1, "the delivery is not taken twice");
    });
  });
}
