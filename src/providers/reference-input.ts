import { ShotlistError } from "../domain/errors.js";
import { DEFAULT_MAX_PIXELS } from "../pipeline/decode.js";
import { checkReference, referenceImages } from "./paid-call.js";
import { type Operation, ProviderCallError, type ProviderRequest } from "./provider.js";

/** Replicate's SDK refuses inline files over 10 MB in all; fal documents no lower bound. */
export const MAX_INLINE_REFERENCE_BYTES = 10_000_000;

function mimeOf(bytes: Buffer): string {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return "image/png";
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return "image/jpeg";
  if (bytes.toString("ascii", 0, 4) === "RIFF" && bytes.toString("ascii", 8, 12) === "WEBP") {
    return "image/webp";
  }
  if (bytes.toString("ascii", 4, 12) === "ftypavif") return "image/avif";
  return "application/octet-stream";
}

/**
 * The recipe's first reference image as a data URI: the input image of an edit or a background
 * removal. Both async providers accept data URIs for image inputs, so no upload (and no public
 * URL of a customer's photo) is involved. Refused before the wire, as the sync adapters refuse
 * theirs: no reference bytes (`reference_image_missing`), a photo that does not decode or is over
 * the pixel limit (`reference_image_undecodable`; it would fail the same way at the provider,
 * after being paid for), or over the inline size (`invalid_request`).
 */
export async function firstReferenceDataUri(
  provider: string,
  request: ProviderRequest,
  maxPixels = DEFAULT_MAX_PIXELS,
): Promise<string> {
  // Each reference the recipe names must have been given (reference_image_missing otherwise).
  const [bytes] = referenceImages(request);
  if (!bytes) {
    throw new ShotlistError(
      "reference_image_missing",
      `${provider}: this model takes an input image, and recipe ${request.recipeHash} gives no reference photo`,
    );
  }
  await checkReference(bytes, maxPixels);
  if (bytes.length > MAX_INLINE_REFERENCE_BYTES) {
    throw new ProviderCallError(
      provider,
      "invalid_request",
      `reference image is ${bytes.length} bytes; inline images are limited to ${MAX_INLINE_REFERENCE_BYTES}`,
    );
  }
  return `data:${mimeOf(bytes)};base64,${bytes.toString("base64")}`;
}

/** An edit or background-removal model must say which of its inputs takes the photo. */
export function checkImageInputs(
  provider: string,
  models: Readonly<Record<string, { operations?: readonly string[]; imageInput?: string }>>,
): void {
  for (const [model, config] of Object.entries(models)) {
    const needsImage = (config.operations ?? []).some(
      (operation) => operation === "edit" || operation === "remove-background",
    );
    if (needsImage && !config.imageInput) {
      throw new ShotlistError(
        "invalid_config",
        `${provider}: model "${model}" does ${config.operations?.join(", ")} but names no imageInput`,
      );
    }
  }
}

/** What an adapter with configured models does: the union of its models' operations. */
export function operationsOf(
  models: Readonly<Record<string, { operations?: readonly Operation[] }>>,
): Operation[] {
  return [
    ...new Set(
      Object.values(models).flatMap(
        (model): readonly Operation[] => model.operations ?? ["generate"],
      ),
    ),
  ];
}
