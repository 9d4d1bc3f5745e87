import sharp from "sharp";
import { ShotlistError } from "../../domain/errors.js";
import type { Recipe } from "../../domain/recipe.js";
import { DEFAULT_MAX_PIXELS } from "../../pipeline/decode.js";
import { PIPELINE_VERSION, renderRecipe } from "../../pipeline/render.js";
import type { CallContext, ImageProvider, ProviderRequest, ProviderResult } from "../provider.js";

export interface LocalProviderOptions {
  /**
   * Largest reference photo, in pixels, the pipeline will decode; default 40 000 000.
   * Security: this is the decompression-bomb guard (DESIGN §9); raise it with care.
   */
  maxPixels?: number;
}

/**
 * The built-in provider (DESIGN §6): real image work on sharp/libvips, no network, no cost.
 * It is the embedded default and the last automatic fallback before human review.
 */
export function createLocalProvider(options: LocalProviderOptions = {}): ImageProvider {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  return {
    name: "local",
    operations: ["compose", "remove-background"],
    modelVersion(_model: string): string {
      return `sharp ${sharp.versions.sharp} / vips ${sharp.versions.vips} / pipeline ${PIPELINE_VERSION}`;
    },
    estimateCostMicros(_request: ProviderRequest): number {
      return 0;
    },
    run(request: ProviderRequest, context: CallContext): Promise<ProviderResult> {
      return renderOnSharp(request.recipe, request, context, {
        maxPixels,
        label: "local pipeline",
      });
    },
  };
}

/**
 * Runs a recipe on the local pipeline for a sharp-based provider (local, template): no cost,
 * and a libvips failure is permanent, since the same inputs fail the same way next time, so the
 * slot moves down its chain instead of retrying.
 */
export async function renderOnSharp(
  recipe: Recipe,
  request: ProviderRequest,
  context: CallContext,
  options: { maxPixels: number; label: string },
): Promise<ProviderResult> {
  let result: Awaited<ReturnType<typeof renderRecipe>>;
  try {
    result = await renderRecipe(recipe, request.references, {
      maxPixels: options.maxPixels,
      recipeHash: request.recipeHash,
      signal: context.signal,
    });
  } catch (error) {
    if (error instanceof ShotlistError || context.signal.aborted) throw error;
    throw new ShotlistError(
      "provider_error",
      `${options.label} failed: ${(error as Error).message}`,
      { status: 500, retryable: false, cause: error },
    );
  }
  return {
    bytes: result.bytes,
    format: result.format,
    width: result.width,
    height: result.height,
    costMicros: 0,
  };
}
