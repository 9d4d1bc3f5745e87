import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { ShotlistError } from "../../src/domain/errors.js";
import { createOpenAIProvider, requestSize } from "../../src/providers/openai/index.js";
import { ProviderCallError } from "../../src/providers/provider.js";
import { startFakeOpenAI } from "../fakes/openai.js";
import { drawProductPhoto, paidRequest } from "../fixtures/providers/requests.js";
import { CONTRACT_TIMEOUT_MS, describeProviderContract } from "./provider.contract.js";

const PRICES = { "gpt-image-1.5": 133_000, "gpt-image-2": 170_000 };
const PROMPT = "A terracotta mug on a seamless white studio backdrop, soft daylight, product photo";

async function generateRequest() {
  return paidRequest({
    provider: "openai",
    model: "gpt-image-1.5",
    prompt: PROMPT,
    output: { width: 800, height: 800, format: "jpeg" },
  });
}

async function editRequest() {
  return paidRequest({
    provider: "openai",
    model: "gpt-image-2",
    prompt:
      "Place this mug on a walnut kitchen shelf, morning light, keep the mug exactly as it is",
    references: [await drawProductPhoto(), await drawProductPhoto(600, 600)],
    output: { width: 800, height: 1000, format: "webp" },
  });
}

for (const [operation, makeRequest, model] of [
  ["generate", generateRequest, "gpt-image-1.5"],
  ["edit", editRequest, "gpt-image-2"],
] as const) {
  describeProviderContract(`openai ${operation}`, "sync", async () => {
    const fake = await startFakeOpenAI();
    return {
      provider: createOpenAIProvider({
        baseUrl: `${fake.url}/v1`,
        apiKey: fake.apiKey,
        prices: PRICES,
        timeoutMs: CONTRACT_TIMEOUT_MS,
      }),
      fake,
      request: await makeRequest(),
      expectedName: "openai",
      expectedOperations: ["generate", "edit"],
      expectedCostMicros: PRICES[model],
      sendsIdempotencyKey: false,
      providesRequestId: true,
    };
  });
}

describe("openai adapter", () => {
  const context = () => ({ signal: new AbortController().signal, callId: "call-1" });

  it("generates with the recipe's model, prompt, one image at the closest standard size, as PNG", async () => {
    const fake = await startFakeOpenAI();
    try {
      const provider = createOpenAIProvider({
        baseUrl: `${fake.url}/v1`,
        apiKey: fake.apiKey,
        prices: PRICES,
      });
      const request = await generateRequest();
      const result = await provider.run(request, context());
      assert.deepEqual(
        fake.calls.map((call) => call.path),
        ["/v1/images/generations"],
      );
      const { params } = fake.requests[0]!;
      assert.equal(params.model, "gpt-image-1.5");
      assert.equal(params.prompt, PROMPT);
      assert.equal(params.n, 1);
      assert.equal(params.size, "1024x1024");
      assert.equal(params.quality, "high");
      assert.equal(params.output_format, "png");
      assert.match(result.providerRequestId ?? "", /^req_/);
      assert.deepEqual([result.format, result.width, result.height], ["jpeg", 800, 800]);
      const xmp = (await sharp(result.bytes).metadata()).xmp?.toString() ?? "";
      assert.match(xmp, /digitalsourcetype\/trainedAlgorithmicMedia/);
    } finally {
      await fake.close();
    }
  });

  it("edits with every reference photo as image[] in recipe order, at a gpt-image-2 custom size", async () => {
    const fake = await startFakeOpenAI();
    try {
      const provider = createOpenAIProvider({
        baseUrl: `${fake.url}/v1`,
        apiKey: fake.apiKey,
        prices: PRICES,
        inputFidelity: "high",
      });
      const result = await provider.run(await editRequest(), context());
      assert.deepEqual(
        fake.calls.map((call) => call.path),
        ["/v1/images/edits"],
      );
      const sent = fake.requests[0]!;
      assert.deepEqual(
        sent.images.map((image) => [image.field, image.type, image.width, image.height]),
        [
          ["image[]", "image/png", 900, 700],
          ["image[]", "image/png", 600, 600],
        ],
      );
      assert.equal(sent.params.size, "800x1008");
      assert.equal(sent.params.input_fidelity, "high");
      assert.deepEqual([result.format, result.width, result.height], ["webp", 800, 1000]);
      const xmp = (await sharp(result.bytes).metadata()).xmp?.toString() ?? "";
      assert.match(xmp, /compositeWithTrainedAlgorithmicMedia/);
    } finally {
      await fake.close();
    }
  });

  it("picks the size to ask for from the model and the output's aspect ratio", () => {
    assert.deepEqual(requestSize("gpt-image-1", { width: 1600, height: 900 }), {
      width: 1536,
      height: 1024,
    });
    assert.deepEqual(requestSize("gpt-image-1", { width: 600, height: 1000 }), {
      width: 1024,
      height: 1536,
    });
    assert.deepEqual(requestSize("gpt-image-1-mini", { width: 500, height: 500 }), {
      width: 1024,
      height: 1024,
    });
    assert.deepEqual(requestSize("gpt-image-2", { width: 1000, height: 1000 }), {
      width: 1008,
      height: 1008,
    });
    assert.deepEqual(requestSize("gpt-image-2", { width: 6000, height: 4000 }), {
      width: 3520,
      height: 2336,
    });
    for (const output of [
      { width: 3000, height: 500 },
      { width: 2990, height: 997 },
      { width: 100, height: 5000 },
      { width: 7000, height: 7000 },
    ]) {
      const size = requestSize("gpt-image-2", output);
      const label = JSON.stringify({ output, size });
      assert.ok(size.width % 16 === 0 && size.height % 16 === 0, label);
      assert.ok(size.width <= 3 * size.height && size.height <= 3 * size.width, label);
      assert.ok(Math.max(size.width, size.height) <= 3840, label);
      assert.ok(size.width * size.height <= 3840 * 2160, label);
    }
  });

  it("refuses a reference photo that does not decode before calling OpenAI", async () => {
    const fake = await startFakeOpenAI();
    try {
      const provider = createOpenAIProvider({
        baseUrl: `${fake.url}/v1`,
        apiKey: fake.apiKey,
        prices: PRICES,
      });
      const request = paidRequest({
        provider: "openai",
        model: "gpt-image-2",
        prompt: PROMPT,
        references: [Buffer.from("<html>not a photo</html>")],
      });
      await assert.rejects(
        provider.run(request, context()),
        (error: unknown) =>
          error instanceof ShotlistError && error.code === "reference_image_undecodable",
      );
      assert.equal(fake.calls.length, 0);
    } finally {
      await fake.close();
    }
  });

  it("refuses a recipe without a prompt before calling OpenAI", async () => {
    const fake = await startFakeOpenAI();
    try {
      const provider = createOpenAIProvider({
        baseUrl: `${fake.url}/v1`,
        apiKey: fake.apiKey,
        prices: PRICES,
      });
      const request = paidRequest({ provider: "openai", model: "gpt-image-1.5", prompt: null });
      await assert.rejects(
        provider.run(request, context()),
        (error: unknown) => error instanceof ProviderCallError && error.kind === "invalid_request",
      );
      assert.equal(fake.calls.length, 0);
    } finally {
      await fake.close();
    }
  });

  it("maps OpenAI's 400 for a bad parameter to invalid_request, keeping its code and request id", async () => {
    const fake = await startFakeOpenAI();
    try {
      const provider = createOpenAIProvider({
        baseUrl: `${fake.url}/v1`,
        apiKey: fake.apiKey,
        perCallMicros: 1,
      });
      const request = paidRequest({ provider: "openai", model: "dall-e-3", prompt: PROMPT });
      const error = await provider.run(request, context()).then(
        () => assert.fail("the fake accepted a model it does not serve"),
        (thrown: unknown) => thrown,
      );
      assert.ok(error instanceof ProviderCallError);
      assert.equal(error.kind, "invalid_request");
      assert.equal(error.httpStatus, 400);
      assert.equal(error.retryable, false);
      assert.match(error.message, /invalid_value/);
      assert.match(error.message, /request req_/);
    } finally {
      await fake.close();
    }
  });

  it("tells a spent quota (429 insufficient_quota) from a rate limit: permanent, no Retry-After", async () => {
    const fake = await startFakeOpenAI();
    try {
      const provider = createOpenAIProvider({
        baseUrl: `${fake.url}/v1`,
        apiKey: fake.apiKey,
        prices: PRICES,
      });
      fake.failNext("insufficient_credits");
      const error = await provider.run(await generateRequest(), context()).then(
        () => assert.fail("succeeded"),
        (thrown: unknown) => thrown,
      );
      assert.ok(error instanceof ProviderCallError);
      assert.equal(error.kind, "insufficient_credits");
      assert.equal(error.httpStatus, 429);
      assert.equal(error.retryable, false);
      assert.equal(error.retryAfterMs, undefined);
    } finally {
      await fake.close();
    }
  });
});
