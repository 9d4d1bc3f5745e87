import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { ShotlistError } from "../../src/domain/errors.js";
import { readRecipeHashFromXmp } from "../../src/pipeline/xmp.js";
import { ProviderCallError } from "../../src/providers/provider.js";
import { createRemoveBgProvider } from "../../src/providers/removebg/index.js";
import { truncate } from "../fakes/provider-fake.js";
import { startFakeRemoveBg } from "../fakes/removebg.js";
import { drawProductPhoto, paidRequest } from "../fixtures/providers/requests.js";
import { freePort } from "../helpers/net.js";
import { CONTRACT_TIMEOUT_MS, describeProviderContract } from "./provider.contract.js";

const PRICE_MICROS = 200_000;

async function removeBgRequest() {
  return paidRequest({
    provider: "removebg",
    model: "removebg",
    references: [await drawProductPhoto()],
    steps: [{ op: "place", fill: 0.85, background: "#ffffff" }],
    output: { width: 640, height: 640, format: "webp" },
  });
}

describeProviderContract(
  "removebg",
  "sync",
  async () => {
    const fake = await startFakeRemoveBg();
    return {
      provider: createRemoveBgProvider({
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        prices: { removebg: PRICE_MICROS },
        timeoutMs: CONTRACT_TIMEOUT_MS,
      }),
      fake,
      request: await removeBgRequest(),
      expectedName: "removebg",
      expectedOperations: ["remove-background"],
      expectedCostMicros: PRICE_MICROS,
      sendsIdempotencyKey: false,
      providesRequestId: false,
    };
  },
  // remove.bg documents no content-policy refusal: its 400s are about the image or parameters.
  { undocumentedFaults: ["content_policy"] },
);

describe("removebg adapter", () => {
  it("uploads the reference as image_file with size=full, type=product and the place step's backdrop", async () => {
    const fake = await startFakeRemoveBg();
    try {
      const provider = createRemoveBgProvider({
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        prices: { removebg: PRICE_MICROS },
      });
      const request = await removeBgRequest();
      const result = await provider.run(request, {
        signal: new AbortController().signal,
        callId: "c1",
      });
      assert.equal(fake.requests.length, 1);
      const sent = fake.requests[0]!;
      assert.equal(sent.fields.size, "full");
      assert.equal(sent.fields.type, "product");
      assert.equal(sent.fields.format, "png");
      assert.equal(sent.fields.bg_color, "FFFFFF");
      assert.deepEqual(
        [sent.imageWidth, sent.imageHeight],
        [640, 640],
        "fitted to the output size",
      );
      assert.equal(result.format, "webp");
      const metadata = await sharp(result.bytes).metadata();
      assert.ok(metadata.xmp, "the output carries XMP provenance");
      assert.equal(readRecipeHashFromXmp(metadata.xmp.toString()), request.recipeHash);
      assert.match(metadata.xmp.toString(), /compositeWithTrainedAlgorithmicMedia/);
    } finally {
      await fake.close();
    }
  });

  it("maps a wrong API key to unauthorized with remove.bg's own error title", async () => {
    const fake = await startFakeRemoveBg();
    try {
      const provider = createRemoveBgProvider({
        baseUrl: fake.url,
        apiKey: "not-the-key",
        perCallMicros: PRICE_MICROS,
      });
      const error = await provider
        .run(await removeBgRequest(), { signal: new AbortController().signal, callId: "c2" })
        .then(
          () => assert.fail("succeeded with a wrong key"),
          (thrown: unknown) => thrown,
        );
      assert.ok(error instanceof ProviderCallError);
      assert.equal(error.kind, "unauthorized");
      assert.equal(error.httpStatus, 403);
      assert.equal(error.retryable, false);
      assert.match(error.message, /API Key invalid/);
    } finally {
      await fake.close();
    }
  });

  it("maps a refused connection to unavailable (retryable)", async () => {
    const port = await freePort();
    const provider = createRemoveBgProvider({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: "k",
      perCallMicros: PRICE_MICROS,
    });
    const error = await provider
      .run(await removeBgRequest(), { signal: new AbortController().signal, callId: "c3" })
      .then(
        () => assert.fail("succeeded without a server"),
        (thrown: unknown) => thrown,
      );
    assert.ok(error instanceof ProviderCallError);
    assert.equal(error.kind, "unavailable");
    assert.equal(error.retryable, true);
  });

  it("refuses a recipe without a reference photo before calling remove.bg", async () => {
    const fake = await startFakeRemoveBg();
    try {
      const provider = createRemoveBgProvider({
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        perCallMicros: PRICE_MICROS,
      });
      const request = paidRequest({ provider: "removebg", model: "removebg" });
      await assert.rejects(
        provider.run(request, { signal: new AbortController().signal, callId: "c4" }),
        (error: unknown) => error instanceof ProviderCallError && error.kind === "invalid_request",
      );
      assert.equal(fake.calls.length, 0);
    } finally {
      await fake.close();
    }
  });

  it("refuses a reference photo that does not decode before calling remove.bg", async () => {
    const fake = await startFakeRemoveBg();
    try {
      const provider = createRemoveBgProvider({
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        perCallMicros: PRICE_MICROS,
      });
      const request = paidRequest({
        provider: "removebg",
        model: "removebg",
        references: [truncate(await drawProductPhoto())],
      });
      await assert.rejects(
        provider.run(request, { signal: new AbortController().signal, callId: "c6" }),
        (error: unknown) =>
          error instanceof ShotlistError && error.code === "reference_image_undecodable",
      );
      assert.equal(fake.calls.length, 0);
    } finally {
      await fake.close();
    }
  });

  it("refuses a model that has no price, before any spend", async () => {
    const fake = await startFakeRemoveBg();
    try {
      const provider = createRemoveBgProvider({
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        prices: { "removebg-hd": 250_000 },
      });
      const request = await removeBgRequest();
      assert.throws(() => provider.estimateCostMicros(request), /no price/);
      await assert.rejects(
        provider.run(request, { signal: new AbortController().signal, callId: "c5" }),
        (error: unknown) => error instanceof ProviderCallError && error.kind === "invalid_request",
      );
      assert.equal(fake.calls.length, 0);
    } finally {
      await fake.close();
    }
  });

  it("rejects bad options at construction with invalid_config", () => {
    const cases = [
      { apiKey: "k" },
      { apiKey: "k", prices: { removebg: -1 } },
      { apiKey: "k", perCallMicros: 1.5 },
      { apiKey: "k", perCallMicros: 1, timeoutMs: 0 },
      { apiKey: "k", perCallMicros: 1, baseUrl: "ftp://example.com" },
      { apiKey: "", perCallMicros: 1 },
    ];
    for (const options of cases) {
      assert.throws(
        () => createRemoveBgProvider(options),
        (error: unknown) => error instanceof ShotlistError && error.code === "invalid_config",
        JSON.stringify(options),
      );
    }
  });
});
