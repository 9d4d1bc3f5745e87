import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import type { OutputFormat } from "../../src/domain/recipe.js";
import { measureSubjectFill, runChecks } from "../../src/pipeline/checks.js";
import { cropToSubject } from "../../src/pipeline/crop.js";
import { cutout } from "../../src/pipeline/cutout.js";
import { DEFAULT_MAX_PIXELS } from "../../src/pipeline/decode.js";
import { flattenFrame, placeSubject } from "../../src/pipeline/place.js";
import { renderRecipe } from "../../src/pipeline/render.js";
import {
  buildXmp,
  readDigitalSourceTypeFromXmp,
  readRecipeHashFromXmp,
} from "../../src/pipeline/xmp.js";
import { HERO_STEPS, localRecipe, sha256 } from "../fixtures/pipeline/recipes.js";
import { drawSyntheticStudioPhoto, studioCases } from "../fixtures/pipeline/synthetic.js";

const RECIPE_HASH = "ab".repeat(32);

async function studioJpeg(caseIndex = 1): Promise<Buffer> {
  const photo = await drawSyntheticStudioPhoto(Object.values(studioCases(600))[caseIndex]!);
  return sharp(photo.rgb, { raw: { width: photo.width, height: photo.height, channels: 3 } })
    .jpeg({ quality: 92 })
    .toBuffer();
}

async function xmpOf(bytes: Buffer): Promise<string> {
  const metadata = await sharp(bytes).metadata();
  return metadata.xmpAsString ?? metadata.xmp?.toString("utf8") ?? "";
}

describe("place", () => {
  for (const [caseIndex, fill] of [
    [0, 0.85],
    [1, 0.6],
    [3, 0.9],
  ] as const) {
    it(`places case ${caseIndex} so the measured fill is within 0.02 of ${fill}`, async () => {
      const photo = await drawSyntheticStudioPhoto(Object.values(studioCases(600))[caseIndex]!);
      const cut = cutout({
        data: photo.rgb,
        width: photo.width,
        height: photo.height,
        channels: 3,
      });
      const frame = await placeSubject(cropToSubject(cut), {
        width: 1000,
        height: 800,
        fill,
        background: { r: 255, g: 255, b: 255 },
      });
      const measured = measureSubjectFill(await flattenFrame(frame)).fill;
      assert.ok(Math.abs(measured - fill) <= 0.02, `measured fill ${measured}, target ${fill}`);
    });
  }
});

describe("renderRecipe", () => {
  it("renders a hero that passes the white-border and fill checks", async () => {
    const reference = await studioJpeg();
    const hash = sha256(reference);
    const recipe = localRecipe({ steps: HERO_STEPS, references: [hash] });
    const result = await renderRecipe(recipe, new Map([[hash, reference]]), {
      maxPixels: DEFAULT_MAX_PIXELS,
      recipeHash: RECIPE_HASH,
      measureFill: true,
    });
    const checks = await runChecks(
      result.bytes,
      {
        whiteBorder: { minValue: 250 },
        fill: { min: 0.8, max: 0.92 },
        notBlank: { minStdDev: 4 },
        notInput: true,
      },
      { width: 800, height: 800, format: "jpeg" },
      reference,
    );
    for (const check of checks) assert.ok(check.passed, `${check.name}: ${check.detail}`);
    assert.ok(result.subjectFill !== undefined && Math.abs(result.subjectFill - 0.85) <= 0.03);
  });

  it("gives byte-identical output for the same recipe and reference bytes", async () => {
    const reference = await studioJpeg(2);
    const hash = sha256(reference);
    const recipe = localRecipe({
      steps: HERO_STEPS,
      references: [hash],
      output: { format: "webp" },
    });
    const references = new Map([[hash, reference]]);
    const options = { maxPixels: DEFAULT_MAX_PIXELS, recipeHash: RECIPE_HASH };
    const first = await renderRecipe(recipe, references, options);
    const second = await renderRecipe(recipe, references, options);
    assert.ok(first.bytes.equals(second.bytes));
  });

  for (const format of ["jpeg", "webp", "avif", "png"] as const satisfies readonly OutputFormat[]) {
    it(`encodes ${format} at the output size with the recipe hash in XMP and no AI claim`, async () => {
      const reference = await studioJpeg(0);
      const hash = sha256(reference);
      const recipe = localRecipe({
        steps: HERO_STEPS,
        references: [hash],
        output: { width: 320, height: 240, format, quality: 70 },
      });
      const result = await renderRecipe(recipe, new Map([[hash, reference]]), {
        maxPixels: DEFAULT_MAX_PIXELS,
        recipeHash: RECIPE_HASH,
      });
      const [decodes, size] = await runChecks(
        result.bytes,
        {},
        { width: 320, height: 240, format },
      );
      assert.ok(decodes?.passed && size?.passed, `${decodes?.detail}; ${size?.detail}`);
      const xmp = await xmpOf(result.bytes);
      assert.equal(readRecipeHashFromXmp(xmp), RECIPE_HASH);
      assert.equal(readDigitalSourceTypeFromXmp(xmp), undefined);
      assert.doesNotMatch(xmp, /DigitalSourceType/);
    });
  }

  it("writes the IPTC digital source type into XMP when one is given", async () => {
    const reference = await studioJpeg(0);
    const hash = sha256(reference);
    const recipe = localRecipe({
      steps: HERO_STEPS,
      references: [hash],
      output: { width: 200, height: 200 },
    });
    const result = await renderRecipe(recipe, new Map([[hash, reference]]), {
      maxPixels: DEFAULT_MAX_PIXELS,
      recipeHash: RECIPE_HASH,
      digitalSourceType: "compositeWithTrainedAlgorithmicMedia",
    });
    assert.equal(
      readDigitalSourceTypeFromXmp(await xmpOf(result.bytes)),
      "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
    );
  });

  it("composes a lifestyle scene at the output size, deterministically", async () => {
    const reference = await studioJpeg(1);
    const hash = sha256(reference);
    const recipe = localRecipe({
      slot: "lifestyle",
      steps: [{ op: "cutout" }, { op: "crop" }, { op: "scene", scene: "living-room", fill: 0.6 }],
      references: [hash],
      output: { width: 640, height: 480 },
    });
    const options = { maxPixels: DEFAULT_MAX_PIXELS, recipeHash: RECIPE_HASH, measureFill: true };
    const first = await renderRecipe(recipe, new Map([[hash, reference]]), options);
    const second = await renderRecipe(recipe, new Map([[hash, reference]]), options);
    assert.ok(first.bytes.equals(second.bytes));
    const checks = await runChecks(
      first.bytes,
      { notBlank: { minStdDev: 4 } },
      { width: 640, height: 480, format: "jpeg" },
    );
    for (const check of checks) assert.ok(check.passed, `${check.name}: ${check.detail}`);
    assert.ok(first.subjectFill !== undefined && first.subjectFill <= 0.9);
  });

  it("draws a swatch grid from the variants", async () => {
    const recipe = localRecipe({
      slot: "swatch-grid",
      source: { kind: "variants" },
      steps: [{ op: "swatch-grid", columns: 3 }],
      swatches: [
        { label: "Red", color: "#c0392b" },
        { label: "Navy <&>", color: "#1c2540" },
        { label: "Snow", color: "#ffffff" },
        { label: "Mustard", color: "#e8c547" },
      ],
      output: { width: 600, height: 400, format: "png" },
    });
    const result = await renderRecipe(recipe, new Map(), {
      maxPixels: DEFAULT_MAX_PIXELS,
      recipeHash: RECIPE_HASH,
    });
    const checks = await runChecks(
      result.bytes,
      { whiteBorder: { minValue: 250 }, notBlank: { minStdDev: 4 } },
      { width: 600, height: 400, format: "png" },
    );
    for (const check of checks) assert.ok(check.passed, `${check.name}: ${check.detail}`);
  });

  it("refuses with cannot_make_locally when the product lacks the slot's reference photo", async () => {
    const recipe = localRecipe({
      slot: "angle-3",
      steps: HERO_STEPS,
      source: { kind: "reference", index: 3 },
    });
    await assert.rejects(
      renderRecipe(recipe, new Map(), { maxPixels: DEFAULT_MAX_PIXELS, recipeHash: RECIPE_HASH }),
      (error: Error & { code?: string; status?: number }) =>
        error.code === "cannot_make_locally" &&
        error.status === 422 &&
        /angle-3.*#4/.test(error.message),
    );
  });

  it("refuses with cannot_make_locally when the named reference bytes are missing", async () => {
    const recipe = localRecipe({ steps: HERO_STEPS, references: ["cd".repeat(32)] });
    await assert.rejects(
      renderRecipe(recipe, new Map(), { maxPixels: DEFAULT_MAX_PIXELS, recipeHash: RECIPE_HASH }),
      { code: "cannot_make_locally" },
    );
  });

  it("refuses with cannot_make_locally a swatch grid without variant colours", async () => {
    const recipe = localRecipe({
      slot: "swatch-grid",
      source: { kind: "variants" },
      steps: [{ op: "swatch-grid", columns: 3 }],
    });
    await assert.rejects(
      renderRecipe(recipe, new Map(), { maxPixels: DEFAULT_MAX_PIXELS, recipeHash: RECIPE_HASH }),
      { code: "cannot_make_locally" },
    );
  });
});

describe("buildXmp", () => {
  it("carries the recipe hash and only the digital source type it is given", () => {
    const plain = buildXmp({ recipeHash: RECIPE_HASH });
    assert.equal(readRecipeHashFromXmp(plain), RECIPE_HASH);
    assert.doesNotMatch(plain, /Iptc4xmpExt/);
    const disclosed = buildXmp({
      recipeHash: RECIPE_HASH,
      digitalSourceType: "trainedAlgorithmicMedia",
    });
    assert.equal(
      readDigitalSourceTypeFromXmp(disclosed),
      "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
    );
    assert.match(disclosed, /^<\?xpacket begin=/);
    assert.match(disclosed, /<\?xpacket end="w"\?>$/);
  });
});
