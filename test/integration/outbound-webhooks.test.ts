import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, InjectOptions } from "fastify";
import { Webhook } from "standardwebhooks";
import { ShotlistError } from "../../src/domain/errors.js";
import type { WebhookEvent } from "../../src/domain/webhook-events.js";
import { buildApp } from "../../src/http/app.js";
import { submitProduct } from "../../src/intake/submit.js";
import { createWebhookDeliveryHandler } from "../../src/integrations/webhooks/delivery.js";
import type { Worker } from "../../src/queue/worker.js";
import type { Queryable } from "../../src/store/db.js";
import type { ClaimedJob } from "../../src/store/jobs.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { freePort } from "../helpers/net.js";

const photos = [0, 1, 2, 3].map((index) =>
  readFileSync(
    fileURLToPath(
      new URL(`../../examples/catalogue/images/MUG-STONEWARE-${index}.jpg`, import.meta.url),
    ),
  ),
);

/** What the receiver was sent, and whether the signature verified with the endpoint's secret. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  event: WebhookEvent;
  verified: boolean;
}

interface Delivery {
  id: string;
  endpointId: number;
  event: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  attemptLog: { statusCode: number | null; error: string | null; durationMs: number }[];
  payload: WebhookEvent;
}

for (const backend of BACKENDS) {
  describe(`outbound webhooks on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let worker: Worker;
    let receiver: Server;
    let receiverUrl: string;
    let admin: Record<string, string>;
    const received: Received[] = [];
    /** Per receiver path: the endpoint's secret, and the statuses to answer before 200s. */
    const secrets = new Map<string, string>();
    const scripted = new Map<string, number[]>();
    /** Receiver paths that never answer; each request held there, and when the sender gave up. */
    const hanging = new Set<string>();
    const held: { path: string; closedAt: number | undefined; end(): void }[] = [];

    before(async () => {
      const port = await freePort();
      receiver = createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => {
          const path = request.url ?? "/";
          const body = Buffer.concat(chunks).toString("utf8");
          let verified = false;
          try {
            new Webhook(secrets.get(path) ?? "").verify(
              body,
              request.headers as Record<string, string>,
            );
            verified = true;
          } catch {}
          received.push({
            path,
            headers: request.headers,
            body,
            event: JSON.parse(body) as WebhookEvent,
            verified,
          });
          if (hanging.has(path)) {
            const entry = {
              path,
              closedAt: undefined as number | undefined,
              end: () => response.end(),
            };
            response.on("close", () => {
              entry.closedAt = Date.now();
            });
            held.push(entry);
            return;
          }
          const status = scripted.get(path)?.shift() ?? 200;
          response.writeHead(status, { "content-type": "text/plain" }).end(`answered ${status}`);
        });
      });
      await new Promise<void>((resolve) => receiver.listen(port, "127.0.0.1", resolve));
      receiverUrl = `http://127.0.0.1:${port}`;
      env = await createTestRuntime(backend, { SHOTLIST_ALLOW_PRIVATE_NETWORKS: "1" });
      app = await buildApp(env.runtime);
      admin = await apiHeaders(env);
      // A tiny schedule and no 24 h floor, so retries take milliseconds, not a day; a receiver
      // that hangs is given up on after 2.5 s instead of 10 s.
      worker = env.runtime.startWorker({
        pollMs: 20,
        webhookRetrySchedule: { delaysMs: [30, 30, 30, 30, 30, 30, 30], minWindowMs: 0 },
        webhookTimeoutMs: 2_500,
      });
    });
    after(async () => {
      for (const entry of held) entry.end();
      await worker?.stop();
      await app?.close();
      receiver?.close();
      await env?.cleanup();
    });

    const createEndpoint = async (path: string, events: string[]) => {
      const response = await app.inject({
        method: "POST",
        url: "/v1/webhook-endpoints",
        headers: admin,
        payload: { url: `${receiverUrl}${path}`, events },
      });
      assert.equal(response.statusCode, 201, response.body);
      const created = response.json() as { id: number; secret: string };
      assert.match(created.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
      secrets.set(path, created.secret);
      return created;
    };
    const deliveries = async (query = "") => {
      const response = await app.inject({ url: `/v1/webhooks/deliveries${query}`, headers: admin });
      assert.equal(response.statusCode, 200, response.body);
      return response.json() as { deliveries: Delivery[]; nextCursor: string | null };
    };
    const deliveryOf = async (endpointId: number, predicate: (d: Delivery) => boolean) =>
      (await deliveries(`?endpoint=${endpointId}&limit=1000`)).deliveries.find(predicate);
    /** A job.failed event, written the way the worker writes it, for tests about delivery. */
    const emitJobFailed = (id: number) =>
      env.runtime.db.transaction((tx) =>
        env.runtime.webhooks.jobFailed(
          tx,
          { id, kind: "render", key: `render:test-${id}`, attempts: 5 } as ClaimedJob,
          "needs_review",
          `test failure ${id}`,
        ),
      );
    const allSettled = () =>
      waitFor(
        async () => (await countOpenJobs(env.runtime.db)) === 0,
        "every job to finish",
        240_000,
        100,
      );

    it("costs one query and writes nothing when no endpoint is configured", async () => {
      let queries = 0;
      const counting: Queryable = {
        query: (sql, params) => {
          queries++;
          return env.runtime.db.query(sql, params);
        },
        exec: (sql) => env.runtime.db.exec(sql),
      };
      const after = await env.runtime.webhooks.beforePublish(counting, {
        recipeHash: "no-such-recipe",
      });
      assert.equal(after, undefined);
      await env.runtime.webhooks.needsReview(counting, [{ sku: "X", slot: "hero" }], "why");
      await env.runtime.webhooks.jobFailed(
        counting,
        { id: 1, kind: "render", key: "render:x", attempts: 1 } as ClaimedJob,
        "needs_review",
        "why",
      );
      assert.equal(queries, 3, "one query per event source");
      const [row] = await env.runtime.db.query<{ count: number }>(
        "select count(*)::integer as count from webhook_deliveries",
      );
      assert.equal(row?.count, 0);
    });

    it("signs every event so the receiver verifies it: one asset.published per slot, one product.complete", async () => {
      const endpoint = await createEndpoint("/all", [
        "asset.published",
        "asset.needs_review",
        "product.complete",
        "job.failed",
      ]);
      const result = await submitProduct(env.runtime.intake, {
        sku: "MUG-HOOKS",
        title: "Stoneware Mug",
        category: "home",
        variants: [
          { sku: "MUG-HOOKS-WHITE", attributes: { color: "white", hex: "#f7f7f5" } },
          { sku: "MUG-HOOKS-SAGE", attributes: { color: "sage", hex: "#9caf88" } },
        ],
        referenceImages: photos.map((bytes) => ({ base64: bytes.toString("base64") })),
      });
      assert.ok(result.jobsCreated > 0);
      await allSettled();
      const slots = await env.runtime.db.query<{ slot: string; state: string }>(
        "select slot, state from product_slots where product_sku = 'MUG-HOOKS' order by position",
      );
      assert.ok(
        slots.every((row) => row.state === "published"),
        `every slot published: ${JSON.stringify(slots)}`,
      );
      const mine = received.filter((entry) => entry.path === "/all");
      assert.ok(mine.length > 0);
      for (const entry of mine) {
        assert.ok(entry.verified, `signature of ${entry.body.slice(0, 80)} verifies`);
        assert.match(String(entry.headers["webhook-id"]), /^msg_/);
        assert.match(String(entry.headers["webhook-signature"]), /^v1,[A-Za-z0-9+/]+=*$/);
        assert.equal(entry.headers["content-type"], "application/json");
        assert.ok(!Number.isNaN(Date.parse(entry.event.timestamp)));
      }
      const published = mine.filter((entry) => entry.event.type === "asset.published");
      assert.deepEqual(
        published.map((entry) => entry.event.data.slot).sort(),
        slots.map((row) => row.slot).sort(),
      );
      for (const entry of published) {
        const asset = entry.event.data.asset as { url: string; sha256: string };
        assert.equal(entry.event.data.sku, "MUG-HOOKS");
        assert.ok(asset.url.includes(`/a/${asset.sha256}.`), asset.url);
      }
      const complete = mine.filter((entry) => entry.event.type === "product.complete");
      assert.equal(complete.length, 1, "exactly one product.complete");
      assert.equal(complete[0]?.event.data.sku, "MUG-HOOKS");
      assert.equal((complete[0]?.event.data.slots as unknown[] | undefined)?.length, slots.length);
      // Each delivery is recorded with its one successful attempt, under the id that was sent.
      const log = (await deliveries(`?endpoint=${endpoint.id}&limit=1000`)).deliveries;
      assert.equal(log.length, mine.length);
      for (const delivery of log) {
        assert.equal(delivery.status, "succeeded");
        assert.deepEqual(
          delivery.attemptLog.map((attempt) => attempt.statusCode),
          [200],
        );
        assert.ok(mine.some((entry) => entry.headers["webhook-id"] === delivery.id));
      }
    });

    it("sends asset.needs_review and job.failed when slots go to review", async () => {
      // One reference photo: the three angles cannot be made locally and go to review.
      await submitProduct(env.runtime.intake, {
        sku: "MUG-REVIEW",
        title: "Stoneware Mug",
        category: "home",
        referenceImages: [{ base64: photos[0]?.toString("base64") ?? "" }],
      });
      await allSettled();
      const review = await env.runtime.db.query<{ slot: string }>(
        "select slot from product_slots where product_sku = 'MUG-REVIEW' and state = 'needs_review'",
      );
      assert.ok(review.length >= 3, `slots in review: ${review.length}`);
      const mine = received.filter((entry) => entry.path === "/all");
      const needsReview = mine.filter(
        (entry) =>
          entry.event.type === "asset.needs_review" && entry.event.data.sku === "MUG-REVIEW",
      );
      assert.deepEqual(
        needsReview.map((entry) => entry.event.data.slot).sort(),
        review.map((row) => row.slot).sort(),
      );
      assert.match(String(needsReview[0]?.event.data.reason), /cannot_make_locally/);
      const failed = mine.filter((entry) => entry.event.type === "job.failed");
      assert.ok(failed.length >= review.length, `${failed.length} job.failed`);
      for (const entry of failed) {
        assert.equal((entry.event.data.job as { kind: string }).kind, "render");
      }
      assert.ok(
        !mine.some(
          (entry) =>
            entry.event.type === "product.complete" && entry.event.data.sku === "MUG-REVIEW",
        ),
      );
      // Deleting the endpoint stops its events; its log stays readable.
      const endpoints = (
        (await app.inject({ url: "/v1/webhook-endpoints", headers: admin })).json() as {
          endpoints: { id: number; url: string }[];
        }
      ).endpoints;
      const all = endpoints.find((endpoint) => endpoint.url.endsWith("/all"));
      assert.ok(all);
      const gone = await app.inject({
        method: "DELETE",
        url: `/v1/webhook-endpoints/${all.id}`,
        headers: admin,
      });
      assert.equal(gone.statusCode, 204);
      const again = await app.inject({
        method: "DELETE",
        url: `/v1/webhook-endpoints/${all.id}`,
        headers: admin,
      });
      assert.equal(again.statusCode, 404);
      assert.match(String(again.headers["content-type"]), /^application\/problem\+json/);
      assert.ok((await deliveries(`?endpoint=${all.id}`)).deliveries.length > 0);
    });

    it("retries a failing receiver with the same webhook-id until it answers 2xx", async () => {
      const endpoint = await createEndpoint("/flaky", ["job.failed"]);
      scripted.set("/flaky", [500, 500]);
      await emitJobFailed(1);
      const delivery = await waitFor(
        () => deliveryOf(endpoint.id, (d) => d.status === "succeeded" && d.event === "job.failed"),
        "the flaky delivery to succeed",
        20_000,
      );
      assert.equal(delivery.attempts, 3);
      assert.deepEqual(
        delivery.attemptLog.map((attempt) => attempt.statusCode),
        [500, 500, 200],
      );
      assert.equal(delivery.lastStatusCode, 200);
      const sent = received.filter((entry) => entry.path === "/flaky");
      assert.equal(sent.length, 3);
      assert.deepEqual(
        sent.map((entry) => entry.headers["webhook-id"]),
        [delivery.id, delivery.id, delivery.id],
      );
      assert.ok(sent.every((entry) => entry.verified));
      assert.deepEqual(sent[0]?.event, delivery.payload);
    });

    it("redelivers on request: a new attempt under the same webhook-id", async () => {
      const [endpoint] = (
        (await app.inject({ url: "/v1/webhook-endpoints", headers: admin })).json() as {
          endpoints: { id: number; url: string }[];
        }
      ).endpoints.filter((row) => row.url.endsWith("/flaky"));
      assert.ok(endpoint);
      const delivery = await deliveryOf(endpoint.id, (d) => d.status === "succeeded");
      assert.ok(delivery);
      const writer = await apiHeaders(env, ["write"]);
      const response = await app.inject({
        method: "POST",
        url: `/v1/webhooks/deliveries/${delivery.id}/redeliver`,
        headers: writer,
      });
      assert.equal(response.statusCode, 202, response.body);
      const redelivered = await waitFor(
        () => deliveryOf(endpoint.id, (d) => d.id === delivery.id && d.attempts === 4),
        "the fourth attempt",
        20_000,
      );
      assert.equal(redelivered.status, "succeeded");
      const sent = received.filter((entry) => entry.path === "/flaky");
      assert.equal(sent.length, 4);
      assert.equal(sent[3]?.headers["webhook-id"], delivery.id);
      assert.ok(sent[3]?.verified);
      const unknown = await app.inject({
        method: "POST",
        url: "/v1/webhooks/deliveries/msg_nope/redeliver",
        headers: writer,
      });
      assert.equal(unknown.statusCode, 404);
      assert.match(String(unknown.headers["content-type"]), /^application\/problem\+json/);
    });

    it("disables an endpoint that answers 410 Gone, and sends it nothing more", async () => {
      const endpoint = await createEndpoint("/gone", ["job.failed"]);
      scripted.set("/gone", [410]);
      await emitJobFailed(2);
      const delivery = await waitFor(
        () => deliveryOf(endpoint.id, (d) => d.status === "failed"),
        "the delivery to the gone endpoint to fail",
        20_000,
      );
      assert.equal(delivery.attempts, 1);
      assert.equal(delivery.lastStatusCode, 410);
      const listed = (
        (await app.inject({ url: "/v1/webhook-endpoints", headers: admin })).json() as {
          endpoints: { id: number; disabledAt: string | null; disabledReason: string | null }[];
        }
      ).endpoints.find((row) => row.id === endpoint.id);
      assert.ok(listed?.disabledAt, "the endpoint is disabled");
      assert.match(listed?.disabledReason ?? "", /410/);
      // The delivery is marked failed by the attempt; its job gives up just after, in the worker.
      await waitFor(
        async () =>
          (
            await env.runtime.db.query<{ state: string }>("select state from jobs where key = $1", [
              `webhook:${delivery.id}`,
            ])
          )[0]?.state === "needs_review",
        "the gone endpoint's delivery job to give up",
        20_000,
      );
      await emitJobFailed(3);
      await allSettled();
      assert.equal(received.filter((entry) => entry.path === "/gone").length, 1);
      assert.equal((await deliveries(`?endpoint=${endpoint.id}`)).deliveries.length, 1);
      // Never a webhook about a webhook delivery.
      const about = await env.runtime.db.query(
        "select id from webhook_deliveries where payload->'data'->'job'->>'kind' = 'webhook-delivery'",
      );
      assert.equal(about.length, 0);
      const redeliver = await app.inject({
        method: "POST",
        url: `/v1/webhooks/deliveries/${delivery.id}/redeliver`,
        headers: admin,
      });
      assert.equal(redeliver.statusCode, 409);
    });

    it("keeps delivering to other endpoints and rendering while one receiver hangs, and retries it", async () => {
      const stuck = await createEndpoint("/hang", ["job.failed"]);
      const fine = await createEndpoint("/fine", ["job.failed"]);
      hanging.add("/hang");
      await emitJobFailed(20);
      await emitJobFailed(21);
      await waitFor(
        async () => held.filter((entry) => entry.closedAt === undefined).length >= 2,
        "both deliveries to the hanging receiver to be waiting on it",
        20_000,
      );
      const hung = held.filter((entry) => entry.closedAt === undefined);
      // A later event reaches the healthy endpoint while the first two still hang.
      await emitJobFailed(22);
      await waitFor(
        async () =>
          (await deliveries(`?endpoint=${fine.id}&limit=1000`)).deliveries.filter(
            (d) => d.status === "succeeded",
          ).length === 3,
        "the healthy endpoint's three deliveries",
        20_000,
      );
      assert.ok(
        hung.every((entry) => entry.closedAt === undefined),
        "the healthy endpoint was served while the hanging receiver still held its requests",
      );
      // Renders are not held up either: their worker never runs a delivery.
      const submitted = await submitProduct(env.runtime.intake, {
        sku: "MUG-BESIDE-HANG",
        title: "Stoneware Mug",
        category: "home",
        referenceImages: photos.map((bytes) => ({ base64: bytes.toString("base64") })),
      });
      const [first] = submitted.slots;
      assert.ok(first?.jobCreated);
      await waitFor(
        async () => {
          const [job] = await env.runtime.db.query<{ state: string }>(
            "select state from jobs where id = $1",
            [first.jobId],
          );
          return job?.state !== "queued";
        },
        "the render job to start",
        20_000,
      );
      assert.ok(
        hung.every((entry) => entry.closedAt === undefined),
        "the render started while the hanging receiver still held its requests",
      );
      await waitFor(
        async () =>
          (
            await env.runtime.db.query<{ state: string }>("select state from jobs where id = $1", [
              first.jobId,
            ])
          )[0]?.state === "succeeded",
        "the render job to succeed",
        60_000,
      );
      // The hanging receiver's delivery times out and is retried under the same id.
      const retried = await waitFor(
        () => deliveryOf(stuck.id, (d) => d.attempts >= 2),
        "a retry of the delivery to the hanging receiver",
        30_000,
      );
      assert.equal(retried.status, "pending");
      assert.equal(retried.attemptLog[0]?.statusCode, null);
      assert.match(retried.attemptLog[0]?.error ?? "", /no answer within 2500 ms/);
      const sent = received.filter((entry) => entry.path === "/hang");
      assert.ok(sent.some((entry) => entry.headers["webhook-id"] === retried.id));
      // Stop it: pending deliveries of a deleted endpoint fail on their next run, unsent.
      const gone = await app.inject({
        method: "DELETE",
        url: `/v1/webhook-endpoints/${stuck.id}`,
        headers: admin,
      });
      assert.equal(gone.statusCode, 204);
      hanging.delete("/hang");
      for (const entry of held) entry.end();
      await allSettled();
    });

    it("sends asset.published and one product.complete when a re-import's slots take over finished recipes", async () => {
      const endpoint = await createEndpoint("/again", ["asset.published", "product.complete"]);
      const product = (order: number[], colors: [string, string][]) => ({
        sku: "MUG-AGAIN",
        title: "Stoneware Mug",
        category: "home",
        variants: colors.map(([color, hex]) => ({
          sku: `MUG-AGAIN-${color.toUpperCase()}`,
          attributes: { color, hex },
        })),
        referenceImages: order.map((index) => ({
          base64: photos[index]?.toString("base64") ?? "",
        })),
      });
      const first = product(
        [0, 1, 2, 3],
        [
          ["white", "#f7f7f5"],
          ["sage", "#9caf88"],
        ],
      );
      // Every slot's recipe changes (other photo at each index, other colours), then back.
      const other = product(
        [3, 2, 1, 0],
        [
          ["white", "#f7f7f5"],
          ["navy", "#1f2a44"],
        ],
      );
      await submitProduct(env.runtime.intake, first);
      await allSettled();
      const shownFirst = async () =>
        env.runtime.db.query<{ slot: string; state: string; recipe_hash: string; sha256: string }>(
          `select ps.slot, ps.state, ps.recipe_hash, a.sha256
           from product_slots ps join assets a on a.id = ps.asset_id
           where ps.product_sku = 'MUG-AGAIN' order by ps.position`,
        );
      const before = await shownFirst();
      assert.ok(before.length > 0 && before.every((row) => row.state === "published"));
      const changed = await submitProduct(env.runtime.intake, other);
      assert.ok(changed.slots.every((slot) => slot.jobCreated));
      await allSettled();
      const renders = async () =>
        (
          await env.runtime.db.query<{ count: number }>(
            "select count(*)::integer as count from jobs where kind = 'render'",
          )
        )[0]?.count;
      const rendersBefore = await renders();
      const [mark] = await env.runtime.db.query<{ seq: string | null }>(
        "select max(seq)::text as seq from webhook_deliveries",
      );
      const back = await submitProduct(env.runtime.intake, first);
      assert.equal(back.jobsCreated, 0);
      assert.equal(await renders(), rendersBefore, "no render job");
      assert.ok(back.slots.every((slot) => slot.state === "published"));
      // Every slot shows its own recipe's asset again, not the one of the recipe in between.
      const slots = await shownFirst();
      assert.deepEqual(slots, before);
      const rows = await env.runtime.db.query<{ event_type: string; payload: WebhookEvent }>(
        `select event_type, payload from webhook_deliveries
         where endpoint_id = $1 and seq > $2::bigint order by seq`,
        [endpoint.id, mark?.seq ?? "0"],
      );
      const published = rows.filter((row) => row.event_type === "asset.published");
      assert.deepEqual(
        published.map((row) => row.payload.data.slot).sort(),
        slots.map((row) => row.slot).sort(),
      );
      for (const row of slots) {
        const event = published.find((entry) => entry.payload.data.slot === row.slot);
        assert.ok(event, `asset.published for ${row.slot}`);
        assert.equal(event.payload.data.sku, "MUG-AGAIN");
        assert.equal(event.payload.data.recipeHash, row.recipe_hash);
        assert.equal((event.payload.data.asset as { sha256: string }).sha256, row.sha256);
      }
      const complete = rows.filter((row) => row.event_type === "product.complete");
      assert.equal(complete.length, 1, "exactly one product.complete");
      assert.equal(complete[0]?.payload.data.sku, "MUG-AGAIN");
      assert.equal(
        (complete[0]?.payload.data.slots as unknown[] | undefined)?.length,
        slots.length,
      );
      // The same import again changes nothing and sends nothing.
      const sentSoFar = async () =>
        (
          await env.runtime.db.query<{ count: number }>(
            "select count(*)::integer as count from webhook_deliveries where endpoint_id = $1",
            [endpoint.id],
          )
        )[0]?.count;
      const countBefore = await sentSoFar();
      const again = await submitProduct(env.runtime.intake, first);
      assert.equal(again.changed, false);
      assert.equal(await sentSoFar(), countBefore);
      await allSettled();
      const delivered = await deliveries(`?endpoint=${endpoint.id}&limit=1000`);
      assert.ok(delivered.deliveries.every((d) => d.status === "succeeded"));
    });

    it("lists deliveries newest first, filtered by endpoint, event and status, page by page", async () => {
      const all = await deliveries("?limit=1000");
      assert.ok(all.deliveries.length >= 5);
      assert.equal(all.nextCursor, null);
      const seen: string[] = [];
      let cursor: string | null = "";
      let pages = 0;
      while (cursor !== null) {
        const page = await deliveries(`?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
        assert.ok(page.deliveries.length <= 2);
        seen.push(...page.deliveries.map((delivery) => delivery.id));
        cursor = page.nextCursor;
        pages++;
      }
      assert.deepEqual(
        seen,
        all.deliveries.map((delivery) => delivery.id),
      );
      assert.ok(pages >= 3);
      const failed = await deliveries("?status=failed");
      assert.ok(failed.deliveries.length >= 1);
      assert.ok(failed.deliveries.every((delivery) => delivery.status === "failed"));
      const published = await deliveries("?event=asset.published");
      assert.ok(published.deliveries.length >= 1);
      assert.ok(published.deliveries.every((delivery) => delivery.event === "asset.published"));
      const reader = await apiHeaders(env, ["read"]);
      const one = all.deliveries[0];
      assert.ok(one);
      const single = await app.inject({
        url: `/v1/webhooks/deliveries/${one.id}`,
        headers: reader,
      });
      assert.equal(single.statusCode, 200);
      assert.equal((single.json() as Delivery).id, one.id);
      for (const query of ["?status=lost", "?event=asset.deleted", "?cursor=abc", "?limit=0"]) {
        const bad = await app.inject({ url: `/v1/webhooks/deliveries${query}`, headers: reader });
        assert.equal(bad.statusCode, 400, query);
        assert.match(String(bad.headers["content-type"]), /^application\/problem\+json/);
      }
    });

    it("checks the connected address again at delivery time", async () => {
      // An endpoint that was allowed (or whose DNS changed since) but now points at loopback.
      const [endpoint] = await env.runtime.db.query<{ id: number }>(
        `insert into webhook_endpoints (url, events, secret) values ($1, '{job.failed}', $2)
         returning id`,
        [
          `http://localhost:${new URL(receiverUrl).port}/ssrf`,
          "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
        ],
      );
      // A delivery without a job, so the running worker leaves it to this test's handler.
      await env.runtime.db.query(
        "insert into webhook_deliveries (id, endpoint_id, event_type, payload) values ($1, $2, $3, $4)",
        ["msg_ssrf", endpoint?.id, "job.failed", JSON.stringify({ type: "job.failed", data: {} })],
      );
      const handler = createWebhookDeliveryHandler({
        db: env.runtime.db,
        allowPrivateNetworks: false,
      });
      const job = { id: 0, payload: { deliveryId: "msg_ssrf" }, attempts: 1 } as ClaimedJob;
      const context = {
        workerId: "test",
        signal: new AbortController().signal,
        log: env.runtime.log,
      };
      await assert.rejects(handler.run(job, context), (error: unknown) => {
        assert.ok(error instanceof ShotlistError);
        assert.equal(error.code, "webhook_delivery_failed");
        assert.match(error.message, /webhook_url_forbidden: localhost resolves to/);
        return true;
      });
      assert.equal(received.filter((entry) => entry.path === "/ssrf").length, 0);
      const [delivery] = (await deliveries(`?endpoint=${endpoint?.id}`)).deliveries;
      assert.equal(delivery?.attempts, 1);
      assert.equal(delivery?.attemptLog[0]?.statusCode, null);
      assert.match(delivery?.attemptLog[0]?.error ?? "", /private or reserved/);
    });

    it("refuses bad endpoints with 400 problem+json and writes nothing", async () => {
      // The same runtime, as a server without SHOTLIST_ALLOW_PRIVATE_NETWORKS.
      const strict = await buildApp({
        ...env.runtime,
        settings: { ...env.runtime.settings, allowPrivateNetworks: false },
      });
      const count = async () =>
        (
          await env.runtime.db.query<{ count: number }>(
            "select count(*)::integer as count from webhook_endpoints",
          )
        )[0]?.count;
      const before = await count();
      const cases: [string, unknown, string][] = [
        ["not a URL", { url: "not a url", events: ["job.failed"] }, "invalid_webhook_url"],
        ["ftp", { url: "ftp://example.com/hook", events: ["job.failed"] }, "invalid_webhook_url"],
        [
          "unknown event",
          { url: "https://example.com/hook", events: ["asset.deleted"] },
          "unknown_event",
        ],
        ["no events", { url: "https://example.com/hook", events: [] }, "invalid_request"],
        ["no url", { events: ["job.failed"] }, "invalid_request"],
        [
          "loopback",
          { url: `${receiverUrl}/all`, events: ["job.failed"] },
          "webhook_url_forbidden",
        ],
        [
          "metadata",
          { url: "http://169.254.169.254/latest/meta-data", events: ["job.failed"] },
          "webhook_url_forbidden",
        ],
        [
          "private",
          { url: "http://10.1.2.3/hook", events: ["job.failed"] },
          "webhook_url_forbidden",
        ],
        [
          "ipv6 loopback",
          { url: "http://[::1]/hook", events: ["job.failed"] },
          "webhook_url_forbidden",
        ],
        [
          "localhost",
          { url: "http://localhost:9/hook", events: ["job.failed"] },
          "webhook_url_forbidden",
        ],
      ];
      try {
        for (const [name, payload, code] of cases) {
          const response = await strict.inject({
            method: "POST",
            url: "/v1/webhook-endpoints",
            headers: admin,
            payload: payload as InjectOptions["payload"],
          });
          assert.equal(response.statusCode, 400, `${name}: ${response.body}`);
          assert.match(
            String(response.headers["content-type"]),
            /^application\/problem\+json/,
            name,
          );
          assert.equal((response.json() as { code: string }).code, code, name);
        }
        const missing = await strict.inject({
          method: "DELETE",
          url: "/v1/webhook-endpoints/999999",
          headers: admin,
        });
        assert.equal(missing.statusCode, 404);
      } finally {
        await strict.close();
      }
      assert.equal(await count(), before);
    });

    it("answers 403 to keys without the route's scope", async () => {
      const reader = await apiHeaders(env, ["read"]);
      const writer = await apiHeaders(env, ["write"]);
      const cases: [Record<string, string>, InjectOptions][] = [
        [reader, { method: "GET", url: "/v1/webhook-endpoints" }],
        [writer, { method: "GET", url: "/v1/webhook-endpoints" }],
        [
          writer,
          {
            method: "POST",
            url: "/v1/webhook-endpoints",
            payload: { url: `${receiverUrl}/x`, events: ["job.failed"] },
          },
        ],
        [writer, { method: "DELETE", url: "/v1/webhook-endpoints/1" }],
        [writer, { method: "GET", url: "/v1/webhooks/deliveries" }],
        [reader, { method: "POST", url: "/v1/webhooks/deliveries/msg_x/redeliver" }],
      ];
      for (const [headers, request] of cases) {
        const response = await app.inject({ ...request, headers });
        assert.equal(response.statusCode, 403, `${request.method} ${request.url}`);
        assert.equal((response.json() as { code: string }).code, "forbidden");
      }
      const anonymous = await app.inject({ url: "/v1/webhooks/deliveries" });
      assert.equal(anonymous.statusCode, 401);
    });
  });
}
