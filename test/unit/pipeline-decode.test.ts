import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { DEFAULT_MAX_PIXELS, decodeImage } from "../../src/pipeline/decode.js";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A 2 KB PNG whose header declares 20000×20000 RGB: 1.2 GB if anyone decoded it. */
function decompressionBomb(): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(20_000, 0);
  header.writeUInt32BE(20_000, 4);
  header.set([8, 2, 0, 0, 0], 8);
  // Only the first rows' worth of data: decoding would fail, so a size error proves the header
  // was checked before any pixel was decoded.
  const rows = deflateSync(Buffer.alloc(60_001 * 4));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", rows),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

describe("decodeImage", () => {
  it("reports size, format and alpha of a good image", async () => {
    const png = await sharp({ create: { width: 30, height: 20, channels: 4, background: "#f00" } })
      .png()
      .toBuffer();
    const { preview, ...info } = await decodeImage(png, { maxPixels: DEFAULT_MAX_PIXELS });
    assert.deepEqual(info, { width: 30, height: 20, format: "png", hasAlpha: true });
    // The validating decode is kept as a 128-px preview; a smaller image is enlarged to it, so
    // every cell of the 32 × 32 luminance grid measured on it holds pixels.
    assert.deepEqual([preview.width, preview.height, preview.channels], [128, 85, 4]);
    assert.deepEqual([...preview.data.subarray(0, 4)], [255, 0, 0, 255]);
  });

  it("keeps a preview of at most 128 px a side, in sRGB", async () => {
    const photo = await sharp({
      create: { width: 1200, height: 900, channels: 3, background: "#336699" },
    })
      .jpeg()
      .toBuffer();
    const { preview } = await decodeImage(photo, { maxPixels: DEFAULT_MAX_PIXELS });
    assert.deepEqual([preview.width, preview.height, preview.channels], [128, 96, 3]);
  });

  it("refuses a decompression bomb as image_too_large from its header alone", async () => {
    const bomb = decompressionBomb();
    assert.ok(bomb.length < 4096);
    await assert.rejects(decodeImage(bomb, { maxPixels: DEFAULT_MAX_PIXELS }), {
      code: "image_too_large",
      status: 413,
    });
  });

  it("refuses an image over a lower pixel limit", async () => {
    const png = await sharp({
      create: { width: 200, height: 200, channels: 3, background: "#fff" },
    })
      .png()
      .toBuffer();
    await assert.rejects(decodeImage(png, { maxPixels: 10_000 }), { code: "image_too_large" });
  });

  it("refuses garbage bytes as image_undecodable", async () => {
    await assert.rejects(
      decodeImage(Buffer.from("this is not an image, just text"), {
        maxPixels: DEFAULT_MAX_PIXELS,
      }),
      { code: "image_undecodable", status: 422 },
    );
  });

  it("refuses a truncated JPEG as image_undecodable although its header is intact", async () => {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><rect width="400" height="300" fill="#3a6"/><circle cx="200" cy="150" r="90" fill="#c33"/></svg>`;
    const jpeg = await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
    await assert.rejects(decodeImage(truncated, { maxPixels: DEFAULT_MAX_PIXELS }), {
      code: "image_undecodable",
    });
  });
});
