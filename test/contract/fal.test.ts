import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ShotlistError } from "../../src/domain/errors.js";
import { providerIdOf } from "../../src/providers/async-handle.js";
import { createFalProvider, type FalProviderOptions } from "../../src/providers/fal/index.js";
import { verifyFalWebhook } from "../../src/providers/fal/webhook.js";
import { type FakeFal, startFakeFal } from "../fakes/fal.js";
import { readBody } from "../fakes/provider-faults.js";
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

function decodeDataUri(value: unknown): Buffer | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^data:[^;]+;base64,(.*)$/.exec(value);
  return match?.[1] === undefined ? undefined : Buffer.from(match[1], "base64");
}

function options(fake: FakeFal, extra: Partial<FalProviderOptions> = {}) {
  return {
    baseUrl: fake.url,
    apiKey: fake.key,
    jwksUrl: fake.jwksUrl,
    models: {
      "fal-ai/flux/dev": {},
      "fal-ai/flux-pro/kontext": { operations: ["edit" as const], imageInput: "image_url" },
    },
    prices: { "fal-ai/flux/dev": 25_000, "fal-ai/flux-pro/kontext": 40_000 },
    timeoutMs: 1_000,
    pollIntervalMs: 5,
    ...extra,
  } satisfies FalProviderOptions;
}

async function requests() {
  const generate = await requestFor({
    provider: "fal",
    model: "fal-ai/flux/dev",
    modelVersion: "fal-ai/flux/dev@unversioned",
  });
  const edit = await requestFor({
    provider: "fal",
    model: "fal-ai/flux-pro/kontext",
    modelVersion: "fal-ai/flux-pro/kontext@unversioned",
    output: { format: "png", width: 32, height: 32 },
    references: [await referencePhoto()],
  });
  return { generate, edit };
}

describeProviderContract("fal", "async", async () => {
  const fake = await startFakeFal();
  return {
    provider: createFalProvider(options(fake, { timeoutMs: CONTRACT_TIMEOUT_MS })),
    fake: sharedSuiteFake({
      url: fake.url,
      apiKey: fake.key,
      log: fake.log,
      failRequests: (fault, count, retryAfter) => fake.failRequests(fault, count, retryAfter),
      failNextJob: (fault) => fake.failNextRequest(fault),
      close: () => fake.close(),
    }),
    request: (await requests()).generate,
    expectedName: "fal",
    expectedOperations: ["generate", "edit"],
    expectedCostMicros: 25_000,
    // fal documents no idempotency header: the ledger's stored request id is the guard.
    sendsIdempotencyKey: false,
    providesRequestId: true,
    // A platform failure (runner_disconnected, 503) after fal's own retries; fal bills no 5xx.
    failedPredictionKind: "unavailable",
  };
});

asyncProviderContract("fal", async ({ timeoutMs }) => {
  const fake = await startFakeFal();
  const provider = createFalProvider(options(fake, { timeoutMs }));
  return {
    provider,
    ...(await requests()),
    priceMicros: { generate: 25_000, edit: 40_000 },
    fake: {
      failRequests: (fault, count, retryAfter) => fake.failRequests(fault, count, retryAfter),
      failNextJob: (fault) => fake.failNextRequest(fault),
      submits: () => fake.calls.submit,
      polls: () => fake.calls.status + fake.calls.result,
      lastInputImage: () => decodeDataUri([...fake.requests.values()].at(-1)?.input.image_url),
      close: () => fake.close(),
    },
  };
});

describe("fal adapter", () => {
  let fake: FakeFal;
  before(async () => {
    fake = await startFakeFal();
  });
  after(async () => {
    await fake.close();
  });

  it("queues the recipe's prompt, seed, size and format on the endpoint's queue URL", async () => {
    const provider = createFalProvider(options(fake));
    const { generate } = await requests();
    const { externalId } = await provider.submit(generate, callContext());
    const queued = fake.requests.get(providerIdOf(externalId) ?? "");
    assert.ok(queued);
    assert.equal(queued.endpoint, "fal-ai/flux/dev");
    assert.deepEqual(queued.input.image_size, { width: 64, height: 48 });
    assert.deepEqual(
      [queued.input.prompt, queued.input.seed, queued.input.output_format, queued.input.num_images],
      [generate.recipe.prompt, generate.recipe.seed, "webp", 1],
    );
    assert.equal(queued.webhook, undefined);
  });

  it("resumes polling from the external id alone in a fresh adapter (a restarted worker)", async () => {
    const { generate } = await requests();
    const { externalId } = await createFalProvider(options(fake)).submit(generate, callContext());
    const submits = fake.calls.submit;
    const done = await pollToEnd(createFalProvider(options(fake)), externalId);
    assert.equal(fake.calls.submit, submits);
    assert.equal(done.status, "succeeded");
    if (done.status === "succeeded") {
      assert.equal(done.result.providerRequestId, providerIdOf(externalId));
    }
  });

  it("ends a request the model refused for a missing input (422) as failed: invalid_request", async () => {
    const provider = createFalProvider(options(fake));
    const { generate } = await requests();
    const noPrompt = { ...generate, recipe: { ...generate.recipe, prompt: null } };
    const { externalId } = await provider.submit(noPrompt, callContext());
    const done = await pollToEnd(provider, externalId);
    assert.equal(done.status, "failed");
    if (done.status === "failed") {
      assert.equal(done.error.kind, "invalid_request");
      assert.match(done.error.message, /body\.prompt: Field required/);
    }
  });

  it("ends a request whose image the safety checker flagged as failed: content_policy", async () => {
    const provider = createFalProvider(options(fake));
    const { generate } = await requests();
    fake.flagNextAsNsfw();
    const { externalId } = await provider.submit(generate, callContext());
    const done = await pollToEnd(provider, externalId);
    assert.equal(done.status, "failed");
    if (done.status === "failed") assert.equal(done.error.kind, "content_policy");
  });

  it("maps fal's 'Exhausted balance' 403 to insufficient_credits, not unauthorized", async () => {
    const provider = createFalProvider(options(fake));
    const { generate } = await requests();
    fake.failRequests("insufficient_credits");
    const error = await rejectsWithKind(
      provider.submit(generate, callContext()),
      "insufficient_credits",
      false,
    );
    assert.equal(error.httpStatus, 403);
  });

  it("refuses a wrong API key with unauthorized", async () => {
    const provider = createFalProvider(options(fake, { apiKey: "wrong:key" }));
    const { generate } = await requests();
    await rejectsWithKind(provider.submit(generate, callContext()), "unauthorized", false);
  });

  it("maps a connection refused to unavailable, retryable", async () => {
    const closed = await startFakeFal();
    await closed.close();
    const provider = createFalProvider(options(closed));
    const { generate } = await requests();
    await rejectsWithKind(provider.submit(generate, callContext()), "unavailable", true);
  });

  it("refuses an external id that is not one of its own", async () => {
    const provider = createFalProvider(options(fake));
    await rejectsWithKind(provider.poll("not-an-id", callContext()), "invalid_request", false);
  });

  it("rejects a configuration whose model is not an endpoint id", () => {
    assert.throws(
      () => createFalProvider(options(fake, { models: { flux: {} }, perCallMicros: 1 })),
      (error: unknown) => error instanceof ShotlistError && error.code === "invalid_config",
    );
  });

  it("rejects an empty key, a base URL that is not http(s) and an edit model without imageInput", () => {
    for (const bad of [
      { apiKey: "" },
      { baseUrl: "ftp://queue.example" },
      { models: { "fal-ai/flux-pro/kontext": { operations: ["edit" as const] } } },
    ]) {
      assert.throws(
        () => createFalProvider(options(fake, { perCallMicros: 1, ...bad })),
        (error: unknown) => error instanceof ShotlistError && error.code === "invalid_config",
      );
    }
  });

  it("reads fal's webhook signing keys from the JWKS URL", async () => {
    const keys = await createFalProvider(options(fake)).webhookKeys(callContext());
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.crv, "Ed25519");
  });

  it("asks for a webhook when reachable; the signed callback verifies", async () => {
    const received: { headers: IncomingMessage["headers"]; body: Buffer }[] = [];
    const receiver = createServer((request, response) => {
      void readBody(request).then((body) => {
        received.push({ headers: request.headers, body });
        response.writeHead(200).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/fal`;
    try {
      const provider = createFalProvider(options(fake, { webhookUrl }));
      const { generate } = await requests();
      const { externalId } = await provider.submit(generate, callContext());
      const requestId = providerIdOf(externalId);
      assert.equal(fake.requests.get(requestId ?? "")?.webhook, webhookUrl);
      await waitFor(async () => received.length === 1, "the fal callback", 5_000);
      const [callback] = received;
      assert.ok(callback);
      const keys = await provider.webhookKeys(callContext());
      const event = await verifyFalWebhook({
        headers: callback.headers,
        rawBody: callback.body,
        keys,
        isKnownRequest: (id) => id === requestId,
      });
      assert.deepEqual([event.requestId, event.status], [requestId, "succeeded"]);
      const done = await pollToEnd(provider, externalId);
      assert.equal(done.status, "succeeded");
      await assert.rejects(
        verifyFalWebhook({
          headers: callback.headers,
          rawBody: Buffer.from(callback.body.toString("utf8").replace('"OK"', '"ERROR"')),
          keys,
          isKnownRequest: () => true,
        }),
        (error: unknown) => error instanceof ShotlistError && error.code === "invalid_signature",
      );
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});
