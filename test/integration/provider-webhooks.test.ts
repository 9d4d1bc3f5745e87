import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/http/app.js";
import { submitProduct } from "../../src/intake/submit.js";
import { encodeHandle } from "../../src/providers/async-handle.js";
import { signReplicateWebhook } from "../../src/providers/replicate/webhook.js";
import type { JobRow } from "../../src/store/jobs.js";
import { listCalls, markSubmitted, openCall } from "../../src/store/provider-calls.js";
import { listProviderWebhooks } from "../../src/store/provider-webhooks.js";
import { type FakeFal, startFakeFal } from "../fakes/fal.js";
import { type FakeReplicate, startFakeReplicate } from "../fakes/replicate.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { freePort } from "../helpers/net.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
const FLUX_VERSION = "c".repeat(64);
/**
 * Far longer than any test waits: a job that finishes is one a callback woke, not one whose
 * poll came round again.
 */
const POLL_INTERVAL_MS = 600_000;
const POLICY = `{ pollIntervalMs: ${POLL_INTERVAL_MS}, asyncTimeoutMs: 1200000, retries: 0 }`;

function shotListYaml(replicate: FakeReplicate, fal: FakeFal): string {
  const link = (provider: string, model: string) =>
    `      hero:\n        chain:\n          - { provider: ${provider}, model: ${model}, prompt: "{{title}} on white" }`;
  return `version: 1
defaults:
  output: { width: 256, height: 256, format: jpeg, quality: 85 }
providers:
  replicate:
    kind: replicate
    baseUrl: "${replicate.baseUrl}"
    apiKeyEnv: REPLICATE_API_TOKEN
    price: { perCallMicros: 25000 }
    policy: ${POLICY}
    options: { models: { flux-dev: { version: "${FLUX_VERSION}" } } }
  fal:
    kind: fal
    baseUrl: "${fal.url}"
    apiKeyEnv: FAL_KEY
    price: { perCallMicros: 25000 }
    policy: ${POLICY}
    options: { jwksUrl: "${fal.jwksUrl}", models: { flux: { endpoint: fal-ai/flux/dev } } }
slots:
  hero:
    source: { reference: 0 }
    chain:
      - { provider: local, model: sharp, steps: [{ op: cutout }, { op: crop }, { op: place, fill: 0.85, background: "#ffffff" }] }
    checks:
      notBlank: { minStdDev: 1 }
categories:
  via-replicate:
    slots: [hero]
    overrides:
${link("replicate", "flux-dev")}
  via-fal:
    slots: [hero]
    overrides:
${link("fal", "flux")}
`;
}

for (const backend of BACKENDS) {
  describe(`async providers' callbacks on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let configDir: string;
    let replicate: FakeReplicate;
    let fal: FakeFal;

    before(async () => {
      replicate = await startFakeReplicate({ versions: [FLUX_VERSION] });
      fal = await startFakeFal();
      // Only a callback finishes a prediction here; polls alone would take the 10-minute interval.
      replicate.processingMs = 300;
      fal.processingMs = 300;
      configDir = mkdtempSync(join(tmpdir(), "shotlist-callbacks-"));
      const configPath = join(configDir, "shotlist.yaml");
      writeFileSync(configPath, shotListYaml(replicate, fal));
      const port = await freePort();
      env = await createTestRuntime(backend, {
        SHOTLIST_CONFIG: configPath,
        SHOTLIST_PUBLIC_URL: `http://127.0.0.1:${port}`,
        // The fakes serve their output files on loopback.
        SHOTLIST_ALLOW_PRIVATE_NETWORKS: "1",
        REPLICATE_API_TOKEN: replicate.token,
        FAL_KEY: fal.key,
      });
      app = await buildApp(env.runtime);
      await app.listen({ host: "127.0.0.1", port });
    });
    after(async () => {
      await app?.close();
      await env?.cleanup();
      await replicate?.close();
      await fal?.close();
      if (configDir) rmSync(configDir, { recursive: true, force: true });
    });

    async function submit(sku: string, category: string): Promise<string> {
      await submitProduct(env.runtime.intake, {
        sku,
        title: `Stoneware mug ${sku}`,
        category,
        referenceImages: [{ base64: photo.toString("base64") }],
      });
      const [slot] = await env.runtime.db.query<{ recipe_hash: string }>(
        "select recipe_hash from product_slots where product_sku = $1 and slot = 'hero'",
        [sku],
      );
      assert.ok(slot, `no hero slot for ${sku}`);
      return slot.recipe_hash;
    }

    async function finishedJob(recipeHash: string): Promise<JobRow> {
      const worker = env.runtime.startWorker({ pollMs: 20, concurrency: 2 });
      try {
        return await waitFor(
          async () => {
            const [job] = await env.runtime.db.query<JobRow>("select * from jobs where key = $1", [
              `render:${recipeHash}`,
            ]);
            return job && (job.state === "succeeded" || job.state === "needs_review")
              ? job
              : undefined;
          },
          "the render job to finish on the provider's callback",
          30_000,
        );
      } finally {
        await worker.stop();
      }
    }

    const post = (name: string, headers: Record<string, string>, body: string) =>
      app.inject({ method: "POST", url: `/webhooks/providers/${name}`, headers, payload: body });

    it("finishes a Replicate job when its callback arrives, not at the next poll", async () => {
      const recipeHash = await submit("CB-REPLICATE-1", "via-replicate");
      const job = await finishedJob(recipeHash);
      assert.equal(job.state, "succeeded", job.last_error ?? "");
      const [call] = await listCalls(env.runtime.db, recipeHash);
      assert.equal(call?.state, "succeeded");
      const predictionId = call?.external_id?.split("|")[0] ?? "";
      const prediction = replicate.predictions.get(predictionId);
      assert.equal(prediction?.webhook, `${env.settings.publicUrl}/webhooks/providers/replicate`);
      assert.deepEqual(prediction?.webhookEvents, ["completed"]);
      const delivery = replicate.webhookDeliveries.find((d) => d.predictionId === predictionId);
      assert.equal(delivery?.answeredStatus, 200);
      const recorded = await listProviderWebhooks(env.runtime.db, "replicate");
      assert.ok(recorded.some((row) => row.callId === call?.id && row.status === "succeeded"));
    });

    it("finishes a fal job when its signed callback arrives (keys from its JWKS)", async () => {
      const recipeHash = await submit("CB-FAL-1", "via-fal");
      const job = await finishedJob(recipeHash);
      assert.equal(job.state, "succeeded", job.last_error ?? "");
      const [call] = await listCalls(env.runtime.db, recipeHash);
      assert.equal(call?.state, "succeeded");
      const requestId = call?.external_id?.split("|")[0] ?? "";
      assert.equal(
        fal.requests.get(requestId)?.webhook,
        `${env.settings.publicUrl}/webhooks/providers/fal`,
      );
      const delivery = fal.webhookDeliveries.find((d) => d.requestId === requestId);
      assert.equal(delivery?.answeredStatus, 200);
      assert.equal(fal.calls.jwks, 1);
    });

    it("answers a replayed callback 200 duplicate and changes nothing", async () => {
      const delivery = replicate.webhookDeliveries.find((d) => d.status === "succeeded");
      assert.ok(delivery, "no delivery to replay");
      const before = await listProviderWebhooks(env.runtime.db, "replicate");
      const replay = await post("replicate", delivery.headers, delivery.body);
      assert.equal(replay.statusCode, 200, replay.body);
      assert.equal(replay.json().status, "duplicate");
      assert.deepEqual(await listProviderWebhooks(env.runtime.db, "replicate"), before);
    });

    it("refuses a callback with a bad signature with 401 and records nothing", async () => {
      const delivery = replicate.webhookDeliveries.find((d) => d.status === "succeeded");
      assert.ok(delivery);
      const before = await listProviderWebhooks(env.runtime.db, "replicate");
      const forgedSecret = `whsec_${Buffer.from("not the account's secret").toString("base64")}`;
      const id = "msg_forged";
      const timestamp = Math.floor(Date.now() / 1000);
      const headers = {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signReplicateWebhook(forgedSecret, id, timestamp, delivery.body),
      };
      const answer = await post("replicate", headers, delivery.body);
      assert.equal(answer.statusCode, 401);
      assert.equal(answer.headers["content-type"], "application/problem+json; charset=utf-8");
      assert.equal(answer.json().code, "invalid_signature");
      // A body changed after signing is refused the same way.
      const tampered = await post("replicate", delivery.headers, `${delivery.body} `);
      assert.equal(tampered.statusCode, 401);
      const falDelivery = fal.webhookDeliveries[0];
      assert.ok(falDelivery);
      const badFal = await post(
        "fal",
        { ...falDelivery.headers, "x-fal-webhook-signature": "ab".repeat(64) },
        falDelivery.body,
      );
      assert.equal(badFal.statusCode, 401);
      assert.equal(badFal.json().code, "invalid_signature");
      assert.deepEqual(await listProviderWebhooks(env.runtime.db, "replicate"), before);
    });

    it("answers a signed callback for an unknown prediction with 404 and records it", async () => {
      const body = JSON.stringify({ id: "notourprediction000000000", status: "succeeded" });
      const id = "msg_unknown_prediction";
      const timestamp = Math.floor(Date.now() / 1000);
      const headers = {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signReplicateWebhook(replicate.webhookSecret, id, timestamp, body),
      };
      const answer = await post("replicate", headers, body);
      assert.equal(answer.statusCode, 404, answer.body);
      assert.equal(answer.json().code, "unknown_prediction");
      const recorded = await listProviderWebhooks(env.runtime.db, "replicate");
      const row = recorded.find((r) => r.deliveryId === id);
      assert.equal(row?.callId, null);
      assert.equal(row?.providerId, "notourprediction000000000");
      // The server still answers the next one.
      const health = await app.inject({ method: "GET", url: "/healthz" });
      assert.equal(health.statusCode, 200);
    });

    it("answers 404 for a provider that is not configured, and for one that sends no callbacks", async () => {
      const unknown = await post("nope", { "content-type": "application/json" }, "{}");
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json().code, "not_found");
      const local = await post("local", { "content-type": "application/json" }, "{}");
      assert.equal(local.statusCode, 404);
      assert.equal(local.json().code, "webhook_not_configured");
    });

    it("makes a job that waits between attempts due at once when its call's callback arrives", async () => {
      const recipeHash = await submit("CB-WAITING-1", "via-replicate");
      const [job] = await env.runtime.db.query<JobRow>("select * from jobs where key = $1", [
        `render:${recipeHash}`,
      ]);
      assert.ok(job);
      // As after failed polls: the job sleeps for an hour, its call submitted at the provider.
      await env.runtime.db.query(
        "update jobs set state = 'retrying', run_at = now() + interval '1 hour' where id = $1",
        [job.id],
      );
      const opened = await openCall(env.runtime.db, {
        recipeHash,
        provider: "replicate",
        model: "flux-dev",
        jobId: job.id,
        estimatedCostMicros: 25_000,
        holdMs: 60_000,
        dailyBudgetMicros: null,
      });
      assert.equal(opened.kind, "opened");
      if (opened.kind !== "opened") return;
      const predictionId = "waitingprediction00000000";
      await markSubmitted(
        env.runtime.db,
        opened.call.id,
        encodeHandle({
          providerId: predictionId,
          model: "flux-dev",
          output: { width: 256, height: 256, format: "jpeg", quality: 85 },
          recipeHash,
          composite: false,
        }),
      );
      const body = JSON.stringify({ id: predictionId, status: "succeeded" });
      const id = "msg_waiting_job";
      const timestamp = Math.floor(Date.now() / 1000);
      const answer = await post(
        "replicate",
        {
          "content-type": "application/json",
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signReplicateWebhook(replicate.webhookSecret, id, timestamp, body),
        },
        body,
      );
      assert.equal(answer.statusCode, 200, answer.body);
      assert.deepEqual(answer.json(), { status: "accepted", callId: opened.call.id });
      const [due] = await env.runtime.db.query<{ due: boolean; state: string }>(
        "select run_at <= now() as due, state from jobs where id = $1",
        [job.id],
      );
      assert.deepEqual(due, { due: true, state: "retrying" });
      // The callback wrote no outcome: the ledger row waits for the worker's poll.
      const [call] = await listCalls(env.runtime.db, recipeHash);
      assert.equal(call?.state, "submitted");
    });
  });
}
