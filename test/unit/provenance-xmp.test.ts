import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import exifr from "exifr";
import { sha256Hex } from "../../src/domain/canonical.js";
import { createLocalProvider } from "../../src/providers/local/index.js";
import { createOpenAIProvider } from "../../src/providers/openai/index.js";
import type { ProviderRequest, SyncPaidProvider } from "../../src/providers/provider.js";
import { createTemplateProvider } from "../../src/providers/template/index.js";
import { type FakeOpenAI, startFakeOpenAI } from "../fakes/openai.js";
import { drawProductPhoto, paidRequest } from "../fixtures/providers/requests.js";

const IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/";

/**
 * The XMP as a separate, well-kept metadata library reads it (issue 5 §3): exifr, not our own
 * reader. Namespaces are kept apart so the IPTC property is found under its own prefix.
 */
async function readXmp(bytes: Buffer): Promise<Record<string, Record<string, unknown>>> {
  const parsed = (await exifr.parse(bytes, {
    xmp: true,
    tiff: false,
    exif: false,
    gps: false,
    iptc: false,
    icc: false,
    jfif: false,
    mergeOutput: false,
  })) as Record<string, Record<string, unknown>> | undefined;
  assert.ok(parsed, "exifr found metadata");
  return parsed;
}

const signal = () => AbortSignal.timeout(60_000);

describe("provenance in the files: IPTC DigitalSourceType and reproducible recipes", () => {
  let fake: FakeOpenAI;
  let openai: SyncPaidProvider;
  let photo: Buffer;
  const local = createLocalProvider();
  const template = createTemplateProvider();

  before(async () => {
    fake = await startFakeOpenAI();
    openai = createOpenAIProvider({
      baseUrl: `${fake.url}/v1`,
      apiKey: fake.apiKey,
      prices: { "gpt-image-1.5": 133_000, "gpt-image-2": 170_000 },
      timeoutMs: 30_000,
    });
    photo = await drawProductPhoto();
  });
  after(async () => {
    await fake.close();
  });

  const generate = (): ProviderRequest =>
    paidRequest({
      provider: "openai",
      model: "gpt-image-1.5",
      prompt: "A terracotta mug on a seamless white backdrop",
      output: { width: 800, height: 800, format: "jpeg" },
    });
  const edit = (): ProviderRequest =>
    paidRequest({
      provider: "openai",
      model: "gpt-image-2",
      prompt: "Place this mug on a walnut shelf",
      references: [photo],
      output: { width: 800, height: 800, format: "jpeg" },
    });
  const localRequest = (): ProviderRequest =>
    paidRequest({
      provider: "local",
      model: "sharp",
      references: [photo],
      steps: [{ op: "cutout" }, { op: "crop" }, { op: "place", fill: 0.85, background: "#ffffff" }],
      output: { width: 800, height: 800, format: "jpeg" },
    });
  const templateRequest = (): ProviderRequest =>
    paidRequest({
      provider: "template",
      model: "neutral-gradient",
      references: [photo],
      output: { width: 800, height: 800, format: "jpeg" },
    });

  it("labels a paid fake's generated image trainedAlgorithmicMedia, as exifr reads it", async () => {
    const request = generate();
    const result = await openai.run(request, { signal: signal(), callId: "xmp-generate" });
    const xmp = await readXmp(result.bytes);
    assert.equal(xmp.Iptc4xmpExt?.DigitalSourceType, `${IPTC_PREFIX}trainedAlgorithmicMedia`);
    assert.equal(xmp.shotlist?.RecipeHash, request.recipeHash);
  });

  it("labels an edit of a reference photo compositeWithTrainedAlgorithmicMedia", async () => {
    const request = edit();
    const result = await openai.run(request, { signal: signal(), callId: "xmp-edit" });
    const xmp = await readXmp(result.bytes);
    assert.equal(
      xmp.Iptc4xmpExt?.DigitalSourceType,
      `${IPTC_PREFIX}compositeWithTrainedAlgorithmicMedia`,
    );
  });

  it("claims no digital source type on local and template output, but names the recipe", async () => {
    for (const [provider, request] of [
      [local, localRequest()],
      [template, templateRequest()],
    ] as const) {
      const result = await provider.run(request, { signal: signal() });
      const xmp = await readXmp(result.bytes);
      assert.equal(xmp.shotlist?.RecipeHash, request.recipeHash, `${provider.name}: XMP read`);
      assert.equal(xmp.Iptc4xmpExt, undefined, `${provider.name}: no IPTC extension claim`);
      const flat = JSON.stringify(xmp);
      assert.ok(!flat.includes("DigitalSourceType"), `${provider.name}: ${flat}`);
    }
  });

  it("regenerates byte-identical output from a recipe: local, template and a paid fake", async () => {
    for (const [provider, makeRequest] of [
      [local, localRequest],
      [template, templateRequest],
    ] as const) {
      const first = await provider.run(makeRequest(), { signal: signal() });
      const again = await provider.run(makeRequest(), { signal: signal() });
      assert.equal(sha256Hex(again.bytes), sha256Hex(first.bytes), `${provider.name} reproduces`);
    }
    // A new call (another ledger id, billed again) with the same recipe: the fake is deterministic
    // by seed and the adapter's re-encode is too, so the asset's bytes come back exactly.
    const first = await openai.run(edit(), { signal: signal(), callId: "reproduce-1" });
    const again = await openai.run(edit(), { signal: signal(), callId: "reproduce-2" });
    assert.equal(sha256Hex(again.bytes), sha256Hex(first.bytes), "openai fake reproduces");
  });
});
