import sharp, { type Metadata } from "sharp";
import { ShotlistError } from "../domain/errors.js";

/** Pixel limit for any image we decode (DESIGN §9): 40 MP covers every real camera photo. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

export interface DecodedImageInfo {
  width: number;
  height: number;
  /** sharp's name for the container, with "heif" carrying AV1 reported as "avif". */
  format: string;
  hasAlpha: boolean;
}

/** Interleaved 8-bit pixels, the form every per-pixel step of the pipeline works on. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** An RGBA raw image: what cut-outs, crops and placed subjects are. */
export interface RgbaImage extends RawImage {
  channels: 4;
}

/**
 * Long side of the preview `decodeImage` keeps: JPEG and WebP shrink on load towards it, and a
 * smaller image is enlarged to it, so every cell of the 32 × 32 notInput grid holds pixels.
 */
export const PREVIEW_SIDE_PX = 128;

/**
 * Checks that `bytes` are an image we can fully decode, without letting a decompression bomb
 * allocate its pixels: the header's size is checked against `maxPixels` first, and libvips gets
 * the same limit as a second guard. A truncated file fails (libvips reads to the last scanline).
 * The decode that proves it is kept as a small sRGB preview (PREVIEW_SIDE_PX on its long side),
 * from which the notInput check's grid of an input is measured.
 */
export async function decodeImage(
  bytes: Buffer,
  options: { maxPixels: number },
): Promise<DecodedImageInfo & { preview: RawImage }> {
  const info = await readHeader(bytes, options.maxPixels);
  try {
    // A small preview still runs the whole compressed stream through the decoder (a truncated
    // file fails), but JPEG shrink-on-load decodes at 1/8 scale: measured 4 ms against 65 ms
    // for stats() on a 1200×1200 sample photo.
    const { data, info: raw } = await sharp(bytes, {
      failOn: "truncated",
      limitInputPixels: options.maxPixels,
    })
      .resize({ width: PREVIEW_SIDE_PX, height: PREVIEW_SIDE_PX, fit: "inside" })
      .toColourspace("srgb")
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    const preview: RawImage = {
      data,
      width: raw.width,
      height: raw.height,
      channels: raw.channels as RawImage["channels"],
    };
    return { ...info, preview };
  } catch (cause) {
    throw new ShotlistError("image_undecodable", `image does not decode: ${reason(cause)}`, {
      status: 422,
      cause,
    });
  }
}

/**
 * Decodes to 8-bit sRGB RGBA, honouring EXIF orientation, after the same pixel-limit guard as
 * `decodeImage`. `maxWorkingPixels` shrinks very large photos first, so per-pixel steps stay fast.
 */
export async function decodeToRgba(
  bytes: Buffer,
  options: { maxPixels: number; maxWorkingPixels?: number },
): Promise<RgbaImage> {
  const info = await readHeader(bytes, options.maxPixels);
  let pipeline = sharp(bytes, { failOn: "truncated", limitInputPixels: options.maxPixels })
    .autoOrient()
    .toColourspace("srgb")
    .ensureAlpha();
  const maxWorkingPixels = options.maxWorkingPixels ?? Number.POSITIVE_INFINITY;
  if (info.width * info.height > maxWorkingPixels) {
    const scale = Math.sqrt(maxWorkingPixels / (info.width * info.height));
    // Orientation may swap the sides; a square bound on the long side keeps either way right.
    const longSidePx = Math.floor(Math.max(info.width, info.height) * scale);
    pipeline = pipeline.resize({ width: longSidePx, height: longSidePx, fit: "inside" });
  }
  try {
    const { data, info: rawInfo } = await pipeline
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    return { data, width: rawInfo.width, height: rawInfo.height, channels: 4 };
  } catch (cause) {
    throw new ShotlistError("image_undecodable", `image does not decode: ${reason(cause)}`, {
      status: 422,
      cause,
    });
  }
}

async function readHeader(bytes: Buffer, maxPixels: number): Promise<DecodedImageInfo> {
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (cause) {
    throw new ShotlistError("image_undecodable", `image does not decode: ${reason(cause)}`, {
      status: 422,
      cause,
    });
  }
  const { width, height } = metadata;
  if (!width || !height || !metadata.format) {
    throw new ShotlistError("image_undecodable", "image header has no size or format", {
      status: 422,
    });
  }
  // Every page of a multi-page file is decoded by some steps, so all pages count.
  const pages = Math.max(1, metadata.pages ?? 1);
  if (width * height * pages > maxPixels) {
    throw new ShotlistError(
      "image_too_large",
      `image is ${width}×${height}${pages > 1 ? ` × ${pages} pages` : ""} pixels; the limit is ${maxPixels} pixels`,
      { status: 413, extra: { width, height, maxPixels } },
    );
  }
  const format =
    metadata.format === "heif" && metadata.compression === "av1" ? "avif" : metadata.format;
  return { width, height, format, hasAlpha: metadata.hasAlpha };
}

function reason(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  return message.split("\n")[0]?.trim() || "unknown decoder error";
}
