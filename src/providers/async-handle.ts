import type { OutputFormat, OutputSpec } from "../domain/recipe.js";

/**
 * What an async adapter's `externalId` carries, so `poll(externalId)` can finish a call in any
 * process (a restarted worker resuming a ledger row) without the request: the provider's own id,
 * the model (for its price), the recipe hash and output (to check and label the image), and
 * whether reference photos went in (the IPTC digital source type of the XMP label).
 *
 * Shape: `<provider id>|<model>|<w>x<h>|<format>|<quality>|<recipe hash>|<g or c>`. Use
 * `providerIdOf(externalId)` to match a webhook callback (which names only the provider's id)
 * to its ledger row.
 */
export interface AsyncCallHandle {
  providerId: string;
  model: string;
  output: OutputSpec;
  recipeHash: string;
  /** Reference photos went in: the output is a composite with AI, not wholly generated. */
  composite: boolean;
}

export function encodeHandle(handle: AsyncCallHandle): string {
  const { output } = handle;
  return [
    handle.providerId,
    handle.model,
    `${output.width}x${output.height}`,
    output.format,
    output.quality,
    handle.recipeHash,
    handle.composite ? "c" : "g",
  ].join("|");
}

const HANDLE =
  /^([^|]+)\|([^|]+)\|(\d{1,5})x(\d{1,5})\|(jpeg|png|webp|avif)\|(\d{1,3})\|([0-9a-f]{64})\|([gc])$/;

export function decodeHandle(externalId: string): AsyncCallHandle | null {
  const match = HANDLE.exec(externalId);
  if (!match) return null;
  const [, providerId, model, width, height, format, quality, recipeHash, source] = match;
  if (!providerId || !model || !recipeHash) return null;
  return {
    providerId,
    model,
    output: {
      width: Number(width),
      height: Number(height),
      format: format as OutputFormat,
      quality: Number(quality),
    },
    recipeHash,
    composite: source === "c",
  };
}

/** The provider's own id inside an external id (a Replicate prediction id, a fal request id). */
export function providerIdOf(externalId: string): string | null {
  return decodeHandle(externalId)?.providerId ?? null;
}
