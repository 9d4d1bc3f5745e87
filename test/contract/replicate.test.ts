import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ShotlistError } from "../../src/domain/errors.js";
import { providerIdOf } from "../../src/providers/async-handle.js";
import {
  createReplicateProvider,
  type ReplicateProviderOptions,
} from "../../src/providers/replicate/index.js";
import { verifyReplicateWebhook } from "../../src/providers/replicate/webhook.js";
import { readBody } from "../fakes/provider-faults.js";
import { type FakeReplicate, startFakeReplicate } from "../fakes/replicate.js";
import { waitFor } from "../helpers/backends.js";
import {
  asyncProviderContract,
  callContext,
  pollToEnd,
  referencePhoto,
  rejectsWithKind,
  requestFor,
  sharedSuiteFake,
} from "./async.contract.js";
import { CONTRACT_TIMEOUT_MS, describeProviderContract } from "./provider.contract.js";

const FLUX_DEV = "a".repeat(64);
const KONTEXT = "b".repeat(64);

function decodeDataUri(value: unknown): Buffer | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^data:[^;]+;base64,(.*)$/.exec(value);
  return match?.[1] === undefined ? undefined : Buffer.from(match[1], "base64");
}

function options(fake: FakeReplicate, extra: Partial<ReplicateProviderOptions> = {}) {
  return {
    baseUrl: fake.baseUrl,
    apiKey: fake.token,
    models: {
      "black-forest-labs/flux-dev": { version: FLUX_DEV },
      "black-forest-labs/flux-kontext-pro": {
        version: KONTEXT,
        operations: ["edit" as const],
        imageInput: "input_image",
      },
    },
    prices: {
      "black-forest-labs/flux-dev": 25_000,
      "black-forest-labs/flux-kontext-pro": 40_000,
    },
    timeoutMs: 1_000,
    pollIntervalMs: 5,
    ...extra,
  } satisfies ReplicateProviderOptions;
}

async function requests(provider = "replicate") {
  const generate = await requestFor({
    provider,
    model: "black-forest-labs/flux-dev",
    modelVersion: FLUX_DEV,
  });
  const edit = await requestFor({
    provider,
    model: "black-forest-labs/flux-kontext-pro",
    modelVersion: KONTEXT,
    output: { format: "png", width: 32, height: 32 },
    references: [await referencePhoto()],
  });
  return { generate, edit };
}

describeProviderContract("replicate", "async", async () => {
  const fake = await startFakeReplicate({ versions: [FLUX_DEV, KONTEXT] });
  return {
    provider: createReplicateProvider(options(fake, { timeoutMs: CONTRACT_TIMEOUT_MS })),
    fake: sharedSuiteFake({
      url: fake.baseUrl,
      apiKey: fake.token,
      log: fake.log,
      failRequests: (fault, count, retryAfter) => fake.failRequests(fault, count, retryAfter),
      failNextJob: (fault) => fake.failNextPrediction(fault),
      close: () => fake.close(),
    }),
    request: (await requests()).generate,
    expectedName: "replicate",
    expectedOperations: ["generate", "edit"],
    expectedCostMicros: 25_000,
    // Replicate documents no idempotency header: the ledger's stored prediction id is the guard.
    sendsIdempotencyKey: false,
    providesRequestId: true,
    // A model error (not a refusal) is billed and usually repeats: permanent, down the chain.
    failedPredictionKind: "invalid_request",
  };
});

asyncProviderContract("replicate", async ({ timeoutMs }) => {
  const fake = await startFakeReplicate({ versions: [FLUX_DEV, KONTEXT] });
  const provider = createReplicateProvider(options(fake, { timeoutMs }));
  return {
    provider,
    ...(await requests()),
    priceMicros: { generate: 25_000, edit: 40_000 },
    fake: {
      failRequests: (fault, count, retryAfter) => fake.failRequests(fault, count, retryAfter),
      failNextJob: (fault) => fake.failNextPrediction(fault),
      submits: () => fake.calls.create,
      polls: () => fake.calls.get,
      lastInputImage: () => {
        const last = [...fake.predictions.values()].at(-1);
        return decodeDataUri(last?.input.input_image);
      },
      close: () => fake.close(),
    },
  };
});

describe("replicate adapter", () => {
  let fake: FakeReplicate;
  before(async () => {
    fake = await startFakeReplicate({ versions: [FLUX_DEV, KONTEXT] });
  });
  after(async () => {
    await fake.close();
  });

  it("creates predictions by version id with the recipe's prompt, seed, size and format", async () => {
    const provider = createReplicateProvider(options(fake));
    const { generate } = await requests();
    const { externalId } = await provider.submit(generate, callContext());
    const prediction = fake.predictions.get(providerIdOf(externalId) ?? "");
    assert.ok(prediction);
    assert.equal(prediction.version, FLUX_DEV);
    assert.deepEqual(
      [prediction.input.prompt, prediction.input.seed, prediction.input.width],
      [generate.recipe.prompt, generate.recipe.seed, 64],
    );
    assert.equal(prediction.input.height, 48);
    assert.equal(prediction.input.output_format, "webp");
    assert.equal(prediction.webhook, undefined);
  });

  it("resumes polling from the prediction id alone in a fresh adapter (a restarted worker)", async () => {
    const { generate } = await requests();
    const { externalId } = await createReplicateProvider(options(fake)).submit(
      generate,
      callContext(),
    );
    const restarted = createReplicateProvider(options(fake));
    const creates = fake.calls.create;
    const done = await pollToEnd(restarted, externalId);
    assert.equal(done.status, "succeeded");
    assert.equal(fake.calls.create, creates);
    if (done.status === "succeeded") {
      assert.deepEqual([done.result.width, done.result.height], [64, 48]);
      assert.equal(done.result.providerRequestId, providerIdOf(externalId));
    }
  });

  it("maps a version the account cannot run (422) to invalid_request, permanent", async () => {
    const provider = createReplicateProvider(
      options(fake, {
        models: { "someone/else": { version: "c".repeat(64) } },
        perCallMicros: 1_000,
      }),
    );
    const request = await requestFor({
      provider: "replicate",
      model: "someone/else",
      modelVersion: "c".repeat(64),
    });
    const error = await rejectsWithKind(
      provider.submit(request, callContext()),
      "invalid_request",
      false,
    );
    assert.match(error.message, /422/);
    assert.match(error.message, /version does not exist/);
  });

  it("refuses a recipe pinned to another version than the configured one", async () => {
    const provider = createReplicateProvider(options(fake));
    const stale = await requestFor({
      provider: "replicate",
      model: "black-forest-labs/flux-dev",
      modelVersion: "d".repeat(64),
    });
    const creates = fake.calls.create;
    await rejectsWithKind(provider.submit(stale, callContext()), "invalid_request", false);
    assert.equal(fake.calls.create, creates);
  });

  it("refuses a wrong API token with unauthorized", async () => {
    const provider = createReplicateProvider(options(fake, { apiKey: "r8_wrong" }));
    const { generate } = await requests();
    await rejectsWithKind(provider.submit(generate, callContext()), "unauthorized", false);
  });

  it("maps a connection refused to unavailable, retryable", async () => {
    const closed = await startFakeReplicate();
    await closed.close();
    const provider = createReplicateProvider(options(closed));
    const { generate } = await requests();
    await rejectsWithKind(provider.submit(generate, callContext()), "unavailable", true);
  });

  it("maps an output file that expired (404) to bad_output", async () => {
    const provider = createReplicateProvider(options(fake));
    const { generate } = await requests();
    const { externalId } = await provider.submit(generate, callContext());
    await pollToEnd(provider, externalId);
    const predictionId = providerIdOf(externalId) ?? "";
    const prediction = fake.predictions.get(predictionId);
    assert.ok(prediction?.output);
    prediction.output = [`${fake.url}/delivery/${predictionId}/gone.webp`];
    await rejectsWithKind(provider.poll(externalId, callContext()), "bad_output", false);
  });

  it("rejects a configuration with a model version that is not a version id", () => {
    assert.throws(
      () =>
        createReplicateProvider(
          options(fake, { models: { "black-forest-labs/flux-dev": { version: "latest" } } }),
        ),
      (error: unknown) => error instanceof ShotlistError && error.code === "invalid_config",
    );
  });

  it("rejects an empty token, a zero timeout and an edit model without imageInput", () => {
    for (const bad of [
      { apiKey: " " },
      { timeoutMs: 0 },
      { models: { "x/edit": { version: FLUX_DEV, operations: ["edit" as const] } } },
    ]) {
      assert.throws(
        () => createReplicateProvider(options(fake, { perCallMicros: 1, ...bad })),
        (error: unknown) => error instanceof ShotlistError && error.code === "invalid_config",
      );
    }
  });

  it("rejects a configuration without a price for a model", () => {
    assert.throws(
      () => createReplicateProvider(options(fake, { prices: { "black-forest-labs/flux-dev": 1 } })),
      (error: unknown) => error instanceof ShotlistError && error.code === "invalid_config",
    );
  });

  it("reads the account's webhook signing secret", async () => {
    const provider = createReplicateProvider(options(fake));
    assert.equal(await provider.webhookSecret(callContext()), fake.webhookSecret);
  });

  it("asks for a completed webhook when reachable; the signed callback verifies", async () => {
    const received: { headers: IncomingMessage["headers"]; body: Buffer }[] = [];
    const receiver = createServer((request, response) => {
      void readBody(request).then((body) => {
        received.push({ headers: request.headers, body });
        response.writeHead(204).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/replicate`;
    try {
      const provider = createReplicateProvider(options(fake, { webhookUrl }));
      const { generate } = await requests();
      const { externalId } = await provider.submit(generate, callContext());
      const predictionId = providerIdOf(externalId);
      assert.deepEqual(fake.predictions.get(predictionId ?? "")?.webhookEvents, ["completed"]);
      await waitFor(async () => received.length === 1, "the completed callback", 5_000);
      const [callback] = received;
      assert.ok(callback);
      const secret = await provider.webhookSecret(callContext());
      const event = await verifyReplicateWebhook({
        headers: callback.headers,
        rawBody: callback.body,
        secrets: secret,
        isKnownPrediction: (id) => id === predictionId,
      });
      assert.deepEqual(
        [event.predictionId, event.status, event.terminal],
        [predictionId, "succeeded", true],
      );
      // The callback says it is done; the image still comes from one poll (never from the body).
      const polled = await provider.poll(externalId, callContext());
      assert.equal(polled.status, "succeeded");
      const tampered = Buffer.from(callback.body.toString("utf8").replace("succeeded", "failed"));
      await assert.rejects(
        verifyReplicateWebhook({
          headers: callback.headers,
          rawBody: tampered,
          secrets: secret,
          isKnownPrediction: () => true,
        }),
        (error: unknown) => error instanceof ShotlistError && error.code === "invalid_signature",
      );
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});
