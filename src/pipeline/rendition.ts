import sharp, { type Sharp } from "sharp";
import { ShotlistError } from "../domain/errors.js";
import type { RenditionSpec } from "../domain/rendition.js";

export interface RenditionImage {
  bytes: Buffer;
  width: number;
  height: number;
}

/** Letterbox colour for `fit=contain`: our assets sit on white (DESIGN §7 white-border check). */
const BACKGROUND = { r: 255, g: 255, b: 255, alpha: 1 };

/**
 * Resizes and re-encodes one published asset to a rendition spec. The pixel limit guards the
 * source like every other decode (DESIGN §9); a small source is never enlarged. Encoder settings
 * are fixed, so the same source and spec always give the same bytes.
 */
export async function renderRendition(
  source: Buffer,
  spec: RenditionSpec,
  options: { maxPixels: number },
): Promise<RenditionImage> {
  let pipeline = sharp(source, { failOn: "truncated", limitInputPixels: options.maxPixels })
    .autoOrient()
    .toColourspace("srgb");
  if (spec.widthPx !== null || spec.heightPx !== null) {
    pipeline = pipeline.resize({
      width: spec.widthPx ?? undefined,
      height: spec.heightPx ?? undefined,
      fit: spec.fit,
      background: BACKGROUND,
      withoutEnlargement: true,
    });
  }
  pipeline = encodeAs(pipeline, spec);
  try {
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    return { bytes: data, width: info.width, height: info.height };
  } catch (cause) {
    const message = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    const tooLarge = /pixel limit/i.test(message ?? "");
    throw new ShotlistError(
      tooLarge ? "image_too_large" : "image_undecodable",
      `source image cannot be rendered: ${message}`,
      { status: tooLarge ? 413 : 422, cause },
    );
  }
}

/** A neutral light-grey placeholder of the spec's size (800 px square when it has none). */
export async function renderPlaceholder(spec: RenditionSpec): Promise<RenditionImage> {
  const width = spec.widthPx ?? spec.heightPx ?? 800;
  const height = spec.heightPx ?? spec.widthPx ?? 800;
  const pipeline = sharp({
    create: { width, height, channels: 3, background: { r: 238, g: 238, b: 238 } },
  });
  const bytes = await encodeAs(pipeline, spec).toBuffer();
  return { bytes, width, height };
}

function encodeAs(pipeline: Sharp, spec: RenditionSpec): Sharp {
  const quality = spec.quality;
  switch (spec.format) {
    case "jpeg":
      return pipeline.flatten({ background: "#ffffff" }).jpeg({ quality, mozjpeg: true });
    case "webp":
      return pipeline.webp({ quality, effort: 4 });
    // Effort 2 of 9: a first request waits for this encode, so speed wins over the last bytes.
    case "avif":
      return pipeline.avif({ quality, effort: 2 });
    case "png":
      return pipeline.png({ compressionLevel: 8, adaptiveFiltering: true });
  }
}
