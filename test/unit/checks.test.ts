import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import sharp from "sharp";
import { luminanceGrid, measureBlur, runChecks } from "../../src/pipeline/checks.js";
import { DEFAULT_MAX_PIXELS, decodeImage } from "../../src/pipeline/decode.js";

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

  it("compares notInput with the input's stored grid when given one, not with a new decode", async () => {
    const output = await productOnWhite(340);
    const other = await productOnWhite(150);
    const notInputOf = async (grid?: ArrayLike<number>) =>
      (await runChecks(output, { notInput: true }, SQUARE, other, grid)).find(
        (result) => result.name === "notInput",
      );
    // The grid intake stores for the input: measured on the preview of its validating decode.
    const otherGrid = luminanceGrid(
      (await decodeImage(other, { maxPixels: DEFAULT_MAX_PIXELS })).preview,
    );
    assert.equal(otherGrid.length, 32 * 32);
    assert.deepEqual(await notInputOf(otherGrid), await notInputOf());
    // A grid that is the output's own picture: the check uses it, so it finds "the same".
    const outputGrid = Float32Array.from(
      luminanceGrid((await decodeImage(output, { maxPixels: DEFAULT_MAX_PIXELS })).preview),
    );
    const same = await notInputOf(outputGrid);
    assert.equal(same?.passed, false, same?.detail);
    assert.match(same?.detail ?? "", /looks the same as the input/);
    // A grid of the wrong size (a damaged row) is not trusted: the input is decoded instead.
    assert.deepEqual(await notInputOf(outputGrid.subarray(0, 100)), await notInputOf());
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
  it("scores a sharp step edge 1/9 on the blur measure and a flat image 1", () => {
    // Left half black, right half white: only the rows vary, and a 9-tap re-blur spreads their
    // one step over nine pixels (Crete et al.'s measure of a perfect edge).
    const width = 64;
    const height = 16;
    const data = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) {
      data.fill(255, (y * width + width / 2) * 3, (y + 1) * width * 3);
    }
    const edge = { data, width, height, channels: 3 as const };
    assert.ok(Math.abs(measureBlur(edge) - 1 / 9) < 1e-9, String(measureBlur(edge)));
    const flat = {
      data: Buffer.alloc(width * height * 3, 128),
      width,
      height,
      channels: 3 as const,
    };
    assert.equal(measureBlur(flat), 1);
  });

  it("passes blur for a sharp product and fails it, with the value, once it is blurred", async () => {
    const sharpImage = await productOnWhite(300);
    const spec = { blur: { max: 0.6 } };
    const passed = (await runChecks(sharpImage, spec, SQUARE)).find((r) => r.name === "blur");
    assert.equal(passed?.passed, true, passed?.detail);
    assert.ok((passed?.value ?? 1) < 0.3, passed?.detail);
    const soft = await sharp(sharpImage).blur(6).png().toBuffer();
    const failed = (await runChecks(soft, spec, SQUARE)).find((r) => r.name === "blur");
    assert.equal(failed?.passed, false, failed?.detail);
    assert.ok((failed?.value ?? 0) > 0.6, failed?.detail);
    assert.match(failed?.detail ?? "", /subject's \d+×\d+ box .*maximum 0\.6/);
  });

  it("fails blur on a hero render of a sample photo blown up from 200 px, passes the render", async () => {
    const photo = readFileSync(
      new URL("../../examples/catalogue/images/SNEAKER-RUNNER-0.jpg", import.meta.url),
    );
    const frame = { width: 1200, height: 1200, format: "jpeg" } as const;
    const render = await sharp(photo).jpeg({ quality: 86 }).toBuffer();
    const blownUp = await sharp(await sharp(photo).resize(200).png().toBuffer())
      .resize(1200)
      .jpeg({ quality: 86 })
      .toBuffer();
    const blurOf = async (bytes: Buffer) =>
      (await runChecks(bytes, { blur: { max: 0.6 } }, frame)).find((r) => r.name === "blur");
    const good = await blurOf(render);
    const bad = await blurOf(blownUp);
    assert.equal(good?.passed, true, good?.detail);
    assert.equal(bad?.passed, false, bad?.detail);
  });
});
