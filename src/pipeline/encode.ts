import sharp from "sharp";
import type { OutputSpec } from "../domain/recipe.js";
import type { RawImage } from "./decode.js";

/**
 * Encodes raw pixels to the slot's output format at its quality, with the XMP packet embedded.
 * JPEG uses mozjpeg's trellis quantisation (smaller at the same quality); PNG is lossless, so
 * its quality is ignored. Settings are fixed so the same pixels always give the same bytes.
 */
export async function encodeImage(
  image: RawImage,
  output: OutputSpec,
  xmp: string,
): Promise<Buffer> {
  const quality = Math.min(100, Math.max(1, Math.round(output.quality)));
  let pipeline = sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels },
  });
  if (image.width !== output.width || image.height !== output.height) {
    pipeline = pipeline.resize({ width: output.width, height: output.height, fit: "fill" });
  }
  switch (output.format) {
    case "jpeg":
      pipeline = pipeline.flatten({ background: "#ffffff" }).jpeg({ quality, mozjpeg: true });
      break;
    case "webp":
      pipeline = pipeline.webp({ quality, effort: 4 });
      break;
    case "avif":
      pipeline = pipeline.avif({ quality, effort: 4 });
      break;
    case "png":
      pipeline = pipeline.png({ compressionLevel: 8, adaptiveFiltering: true });
      break;
  }
  return pipeline.withXmp(xmp).toBuffer();
}
