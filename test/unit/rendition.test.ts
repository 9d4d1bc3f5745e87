import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { ShotlistError } from "../../src/domain/errors.js";
import {
  negotiateFormat,
  parseRenditionQuery,
  renditionHash,
  renditionSigningInput,
  resolveRendition,
  signRenditionUrl,
  verifyRenditionSignature,
} from "../../src/domain/rendition.js";
import { renderRendition } from "../../src/pipeline/rendition.js";
import { pngBomb } from "../helpers/images.js";

const KEY = "unit-test-signing-key-0123456789";

describe("rendition options and signatures", () => {
  it("signs the canonical options, so the order of the query does not matter", () => {
    const url = signRenditionUrl(KEY, { sku: "MUG-1", slot: "hero", options: { w: 640, q: 70 } });
    assert.match(url, /^\/i\/MUG-1\/hero\?w=640&q=70&s=[A-Za-z0-9_-]{43}$/);
    const signature = new URL(url, "http://x").searchParams.get("s") ?? undefined;
    const reordered = parseRenditionQuery({ q: "70", s: signature ?? "", w: "640" });
    const input = renditionSigningInput("MUG-1", "hero", undefined, reordered.options);
    assert.equal(verifyRenditionSignature(KEY, input, reordered.signature), true);
    assert.equal(verifyRenditionSignature("another-key-0123456789", input, signature), false);
    const changed = renditionSigningInput("MUG-1", "hero", undefined, { w: 641, q: 70 });
    assert.equal(verifyRenditionSignature(KEY, changed, signature), false);
    assert.equal(verifyRenditionSignature(undefined, input, signature), false);
  });

  it("negotiates AVIF, then WebP, then JPEG, and honours q=0", () => {
    assert.equal(negotiateFormat("image/avif,image/webp,*/*"), "avif");
    assert.equal(negotiateFormat("image/avif;q=0, image/webp"), "webp");
    assert.equal(negotiateFormat("*/*"), "jpeg");
    assert.equal(negotiateFormat(undefined), "jpeg");
  });

  it("refuses out-of-range values with a stable code naming the option", () => {
    for (const [name, value] of [
      ["w", "0"],
      ["h", "4097"],
      ["dpr", "4.5"],
      ["dpr", "1e1"],
      ["q", "0"],
      ["w", "12.5"],
      ["format", "tiff"],
    ] as const) {
      assert.throws(
        () => parseRenditionQuery({ [name]: value }),
        (error: unknown) =>
          error instanceof ShotlistError &&
          error.code === "invalid_rendition_option" &&
          error.extra.option === name,
        `${name}=${value}`,
      );
    }
  });

  it("caps device pixels and gives different content addresses to different specs", () => {
    const big = resolveRendition({ w: 4096, dpr: 4, format: "webp" }, undefined);
    assert.equal(big.widthPx, 8192);
    const webp = resolveRendition({ w: 100 }, "image/webp");
    const jpeg = resolveRendition({ w: 100 }, "image/jpeg");
    assert.notEqual(renditionHash("a".repeat(64), webp), renditionHash("a".repeat(64), jpeg));
    assert.equal(renditionHash("a".repeat(64), webp), renditionHash("a".repeat(64), { ...webp }));
  });
});

describe("renderRendition", () => {
  it("refuses a decompression bomb source before decoding its pixels", async () => {
    const spec = resolveRendition({ w: 100, format: "webp" }, undefined);
    await assert.rejects(
      renderRendition(pngBomb(), spec, { maxPixels: 40_000_000 }),
      (error: unknown) =>
        error instanceof ShotlistError && error.code === "image_too_large" && error.status === 413,
    );
  });

  it("fits inside without enlarging a small source", async () => {
    const source = await sharp({
      create: { width: 300, height: 150, channels: 3, background: "#336699" },
    })
      .png()
      .toBuffer();
    const inside = await renderRendition(
      source,
      resolveRendition({ w: 200, h: 200, fit: "inside", format: "png" }, undefined),
      { maxPixels: 40_000_000 },
    );
    assert.deepEqual([inside.width, inside.height], [200, 100]);
    const larger = await renderRendition(
      source,
      resolveRendition({ w: 1000, format: "png" }, undefined),
      { maxPixels: 40_000_000 },
    );
    assert.deepEqual([larger.width, larger.height], [300, 150]);
  });
});
