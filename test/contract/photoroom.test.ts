import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Step } from "../../src/domain/recipe.js";
import { createPhotoroomProvider, paddingFor } from "../../src/providers/photoroom/index.js";
import { ProviderCallError } from "../../src/providers/provider.js";
import { startFakePhotoroom } from "../fakes/photoroom.js";
import { drawProductPhoto, paidRequest } from "../fixtures/providers/requests.js";
import { CONTRACT_TIMEOUT_MS, describeProviderContract } from "./provider.contract.js";

const PRICES = { segment: 20_000, studio: 100_000 };
const STUDIO_STEPS: Step[] = [
  { op: "cutout" },
  { op: "place", fill: 0.85, background: "#ffffff" },
  { op: "shadow", opacity: 0.25, blur: 12 },
];

async function photoroomRequest(model: "segment" | "studio") {
  return paidRequest({
    provider: "photoroom",
    model,
    references: [await drawProductPhoto()],
    steps: model === "studio" ? STUDIO_STEPS : [],
    output: { width: 720, height: 960, format: model === "studio" ? "jpeg" : "png" },
  });
}

for (const model of ["segment", "studio"] as const) {
  describeProviderContract(
    `photoroom ${model}`,
    "sync",
    async () => {
      const fake = await startFakePhotoroom();
      return {
        provider: createPhotoroomProvider({
          baseUrl: fake.url,
          editBaseUrl: fake.url,
          apiKey: fake.apiKey,
          prices: PRICES,
          timeoutMs: CONTRACT_TIMEOUT_MS,
        }),
        fake,
        request: await photoroomRequest(model),
        expectedName: "photoroom",
        expectedOperations: ["remove-background", "edit"],
        expectedCostMicros: PRICES[model],
        sendsIdempotencyKey: false,
        providesRequestId: false,
      };
    },
    // Photoroom documents no content-policy refusal for segment or a plain studio edit.
    { undocumentedFaults: ["content_policy"] },
  );
}

describe("photoroom adapter", () => {
  const context = () => ({ signal: new AbortController().signal, callId: "call-1" });

  it("makes a studio shot with v2/edit: output size, padding from the place fill, backdrop, soft shadow", async () => {
    const fake = await startFakePhotoroom();
    try {
      const provider = createPhotoroomProvider({
        baseUrl: fake.url,
        editBaseUrl: fake.url,
        apiKey: fake.apiKey,
        prices: PRICES,
      });
      const result = await provider.run(await photoroomRequest("studio"), context());
      assert.deepEqual(
        fake.calls.map((call) => call.path),
        ["/v2/edit"],
      );
      const sent = fake.requests[0]!;
      assert.equal(sent.endpoint, "edit");
      assert.equal(sent.fields.removeBackground, "true");
      assert.equal(sent.fields.outputSize, "720x960");
      assert.equal(sent.fields.padding, "0.075");
      assert.equal(sent.fields["background.color"], "FFFFFF");
      assert.equal(sent.fields["shadow.mode"], "ai.soft");
      assert.equal(sent.fields["export.format"], "png");
      assert.equal(result.format, "jpeg");
      assert.deepEqual([result.width, result.height], [720, 960]);
      assert.equal(result.costMicros, PRICES.studio);
    } finally {
      await fake.close();
    }
  });

  it("removes a background with v1/segment at full size", async () => {
    const fake = await startFakePhotoroom();
    try {
      const provider = createPhotoroomProvider({
        baseUrl: fake.url,
        editBaseUrl: fake.url,
        apiKey: fake.apiKey,
        prices: PRICES,
      });
      await provider.run(await photoroomRequest("segment"), context());
      const sent = fake.requests[0]!;
      assert.equal(sent.endpoint, "segment");
      assert.equal(sent.fields.size, "full");
      assert.equal(sent.fields.format, "png");
      assert.equal(sent.fields.channels, "rgba");
      assert.equal(sent.fields.crop, "false");
    } finally {
      await fake.close();
    }
  });

  it("keeps Photoroom's own words for exhausted credits", async () => {
    const fake = await startFakePhotoroom();
    try {
      const provider = createPhotoroomProvider({
        baseUrl: fake.url,
        editBaseUrl: fake.url,
        apiKey: fake.apiKey,
        prices: PRICES,
      });
      fake.failNext("insufficient_credits");
      await assert.rejects(
        provider.run(await photoroomRequest("studio"), context()),
        (error: unknown) =>
          error instanceof ProviderCallError &&
          error.kind === "insufficient_credits" &&
          error.httpStatus === 402 &&
          /API credits exhausted/.test(error.message),
      );
    } finally {
      await fake.close();
    }
  });

  it("refuses an unknown model before calling Photoroom", async () => {
    const fake = await startFakePhotoroom();
    try {
      const provider = createPhotoroomProvider({
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        perCallMicros: 20_000,
      });
      const request = paidRequest({
        provider: "photoroom",
        model: "ghost-mannequin",
        references: [await drawProductPhoto()],
      });
      assert.throws(() => provider.estimateCostMicros(request), /unknown model/);
      await assert.rejects(
        provider.run(request, context()),
        (error: unknown) => error instanceof ProviderCallError && error.kind === "invalid_request",
      );
      assert.equal(fake.calls.length, 0);
    } finally {
      await fake.close();
    }
  });

  it("turns the place step's fill into Photoroom padding within its 0–0.49 range", () => {
    const recipe = (steps: Step[]) =>
      paidRequest({ provider: "photoroom", model: "studio", steps }).recipe;
    assert.equal(paddingFor(recipe([])), 0.1);
    assert.equal(paddingFor(recipe([{ op: "place", fill: 0.8, background: "#ffffff" }])), 0.1);
    assert.equal(paddingFor(recipe([{ op: "place", fill: 1, background: "#ffffff" }])), 0);
    assert.equal(paddingFor(recipe([{ op: "place", fill: 0.01, background: "#ffffff" }])), 0.49);
  });
});
