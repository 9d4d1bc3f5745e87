import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { runChecks } from "../../src/pipeline/checks.js";
import { PIPELINE_VERSION } from "../../src/pipeline/render.js";
import { readRecipeHashFromXmp } from "../../src/pipeline/xmp.js";
import { createLocalProvider } from "../../src/providers/local/index.js";
import { HERO_STEPS, localRecipe, sha256 } from "../fixtures/pipeline/recipes.js";
import { drawSyntheticStudioPhoto, studioCases } from "../fixtures/pipeline/synthetic.js";

async function heroRequest() {
  const photo = await drawSyntheticStudioPhoto(Object.values(studioCases(400))[0]!);
  const reference = await sharp(photo.rgb, {
    raw: { width: photo.width, height: photo.height, channels: 3 },
  })
    .jpeg({ quality: 92 })
    .toBuffer();
  const hash = sha256(reference);
  return {
    recipe: localRecipe({
      steps: HERO_STEPS,
      references: [hash],
      output: { width: 500, height: 500 },
    }),
    recipeHash: "ef".repeat(32),
    references: new Map([[hash, reference]]),
  };
}

describe("local provider", () => {
  it("describes itself as a free sharp provider that composes and removes backgrounds", async () => {
    const provider = createLocalProvider();
    assert.equal(provider.name, "local");
    assert.deepEqual([...provider.operations], ["compose", "remove-background"]);
    assert.equal(
      provider.modelVersion("pipeline"),
      `sharp ${sharp.versions.sharp} / vips ${sharp.versions.vips} / pipeline ${PIPELINE_VERSION}`,
    );
    assert.equal(provider.estimateCostMicros(await heroRequest()), 0);
  });

  it("renders a hero at no cost that fills 0.85 ± 0.03 and carries its recipe hash", async () => {
    const request = await heroRequest();
    const result = await createLocalProvider().run(request, {
      signal: new AbortController().signal,
    });
    assert.equal(result.costMicros, 0);
    assert.equal(result.format, "jpeg");
    assert.deepEqual([result.width, result.height], [500, 500]);
    const [fill] = (
      await runChecks(result.bytes, { fill: { min: 0.82, max: 0.88 } }, result)
    ).filter((check) => check.name === "fill");
    assert.equal(fill?.passed, true, fill?.detail);
    const metadata = await sharp(result.bytes).metadata();
    assert.equal(readRecipeHashFromXmp(metadata.xmpAsString ?? ""), request.recipeHash);
  });

  it("stops when the job's signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("lease lost"));
    await assert.rejects(
      createLocalProvider().run(await heroRequest(), { signal: controller.signal }),
      /lease lost/,
    );
  });

  it("applies its pixel limit to reference photos", async () => {
    const provider = createLocalProvider({ maxPixels: 1000 });
    await assert.rejects(
      provider.run(await heroRequest(), { signal: new AbortController().signal }),
      {
        code: "image_too_large",
      },
    );
  });
});
