import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import sharp from "sharp";
import { runChecks } from "../../src/pipeline/checks.js";

const SQUARE = { width: 400, height: 400, format: "png" } as const;

/** A dark square of `sidePx` centred on white, as PNG. */
function productOnWhite(sidePx: number, background = "#ffffff"): Promise<Buffer> {
  const offset = (400 - sidePx) / 2;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400"><rect width="400" height="400" fill="${background}"/><rect x="${offset}" y="${offset}" width="${sidePx}" height="${sidePx}" fill="#203060"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

describe("runChecks", () => {
  it("passes a product on white that fills 85% of the frame", async () => {
    const results = await runChecks(
      await productOnWhite(340),
      { whiteBorder: { minValue: 250 }, fill: { min: 0.8, max: 0.9 }, notBlank: { minStdDev: 4 } },
      SQUARE,
    );
    for (const result of results) assert.ok(result.passed, `${result.name}: ${result.detail}`);
    assert.equal(results.find((result) => result.name === "fill")?.value, 0.85);
  });

  it("fails the white border on a light grey backdrop and names the darkest value", async () => {
    const results = await runChecks(
      await productOnWhite(300, "#f0f0f0"),
      { whiteBorder: { minValue: 250 } },
      SQUARE,
    );
    const border = results.find((result) => result.name === "whiteBorder");
    assert.equal(border?.passed, false);
    assert.equal(border?.value, 240);
  });

  it("fails fill when the subject is too small", async () => {
    const results = await runChecks(
      await productOnWhite(200),
      { fill: { min: 0.8, max: 0.95 } },
      SQUARE,
    );
    const fill = results.find((result) => result.name === "fill");
    assert.equal(fill?.passed, false);
    assert.equal(fill?.value, 0.5);
  });

  it("fails notBlank for a flat image", async () => {
    const blank = await sharp({
      create: { width: 400, height: 400, channels: 3, background: "#808080" },
    })
      .png()
      .toBuffer();
    const results = await runChecks(blank, { notBlank: { minStdDev: 4 } }, SQUARE);
    assert.equal(results.find((result) => result.name === "notBlank")?.passed, false);
  });

  it("fails notInput for an output byte-identical to its input", async () => {
    const image = await productOnWhite(300);
    const results = await runChecks(image, { notInput: true }, SQUARE, image);
    const notInput = results.find((result) => result.name === "notInput");
    assert.equal(notInput?.passed, false);
    assert.match(notInput?.detail ?? "", /byte-identical/);
  });

  it("fails notInput for a plain resize of the input", async () => {
    const input = await sharp(await productOnWhite(300))
      .resize(800, 800)
      .jpeg({ quality: 95 })
      .toBuffer();
    const results = await runChecks(await productOnWhite(300), { notInput: true }, SQUARE, input);
    assert.equal(results.find((result) => result.name === "notInput")?.passed, false);
  });

  it("fails notInput for re-encodes of a sample photo, and passes its mirror image", async () => {
    const photo = readFileSync(
      new URL("../../examples/catalogue/images/BACKPACK-DAYPACK-0.jpg", import.meta.url),
    );
    const sameGrid = async (bytes: Buffer) => {
      const { width, height, format } = await sharp(bytes).metadata();
      const results = await runChecks(
        bytes,
        { notInput: true },
        { width: width ?? 0, height: height ?? 0, format: format as "jpeg" },
        photo,
      );
      return results.find((result) => result.name === "notInput");
    };
    // The output's grid comes from the check's own scan of the decoded output, the input's
    // from a small decode of the file: the same picture must still measure well under 2.
    for (const copy of [
      await sharp(photo).jpeg({ quality: 70 }).toBuffer(),
      await sharp(photo).resize(800).webp({ quality: 80 }).toBuffer(),
      await sharp(photo).resize(1600).jpeg({ quality: 86, mozjpeg: true }).toBuffer(),
      await sharp(photo).ensureAlpha(0.999).png().toBuffer(),
    ]) {
      const notInput = await sameGrid(copy);
      assert.equal(notInput?.passed, false, notInput?.detail);
      assert.ok((notInput?.value ?? 99) < 1, notInput?.detail);
    }
    const mirrored = await sameGrid(await sharp(photo).flop().jpeg().toBuffer());
    assert.equal(mirrored?.passed, true, mirrored?.detail);
  });

  it("passes notInput when the output is a different picture", async () => {
    const results = await runChecks(
      await productOnWhite(340),
      { notInput: true },
      SQUARE,
      await productOnWhite(150),
    );
    assert.equal(results.find((result) => result.name === "notInput")?.passed, true);
  });

  it("fails size on the wrong dimensions or format", async () => {
    const results = await runChecks(
      await productOnWhite(300),
      {},
      { width: 400, height: 300, format: "jpeg" },
    );
    assert.equal(results.find((result) => result.name === "size")?.passed, false);
  });

  it("fails decodes for garbage and measures nothing else, without throwing", async () => {
    const results = await runChecks(
      Buffer.from("not an image"),
      { whiteBorder: { minValue: 250 }, fill: { min: 0.8, max: 0.9 }, notBlank: { minStdDev: 4 } },
      SQUARE,
    );
    assert.deepEqual(
      results.map((result) => [result.name, result.passed]),
      [["decodes", false]],
    );
  });
});
