import sharp from "sharp";
import { ShotlistError } from "../../domain/errors.js";
import type { Step } from "../../domain/recipe.js";
import { DEFAULT_MAX_PIXELS } from "../../pipeline/decode.js";
import { PIPELINE_VERSION } from "../../pipeline/render.js";
import { renderOnSharp } from "../local/index.js";
import type { CallContext, ImageProvider, ProviderRequest, ProviderResult } from "../provider.js";

/** The built-in stock-template provider's name, as chain links use it (`provider: template`). */
export const TEMPLATE_PROVIDER = "template";

/** Version of the templates below; bump it whenever a template's pixels change. */
export const TEMPLATE_VERSION = "1";

/**
 * Stock templates by model name: the steps that put the product's cut-out on the template.
 * A chain link that lists its own steps uses those instead (any local step applies).
 */
export const TEMPLATES: Readonly<Record<string, readonly Step[]>> = {
  "neutral-gradient": [
    { op: "cutout" },
    { op: "crop" },
    { op: "scene", scene: "neutral-gradient", fill: 0.7 },
  ],
};

export interface TemplateProviderOptions {
  /** Decompression-bomb guard for reference photos; default 40 000 000 pixels. */
  maxPixels?: number;
}

/**
 * The stock-template fallback (issue 5 §5): local sharp work, no network, no cost: the
 * product's cut-out on a neutral template scene. It sits late in a chain, before human review,
 * so a slot whose paid links failed still gets an honest, plain image; its assets are recorded
 * with made_by = "template". Like `local` it claims no IPTC digital source type: nothing here is
 * AI-generated.
 */
export function createTemplateProvider(options: TemplateProviderOptions = {}): ImageProvider {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  return {
    name: TEMPLATE_PROVIDER,
    operations: ["compose"],
    modelVersion(model: string): string {
      return `template ${model} ${TEMPLATE_VERSION} / sharp ${sharp.versions.sharp} / vips ${sharp.versions.vips} / pipeline ${PIPELINE_VERSION}`;
    },
    estimateCostMicros(_request: ProviderRequest): number {
      return 0;
    },
    async run(request: ProviderRequest, context: CallContext): Promise<ProviderResult> {
      const { recipe } = request;
      const steps = recipe.steps.length > 0 ? recipe.steps : TEMPLATES[recipe.model];
      if (!steps) {
        throw new ShotlistError(
          "cannot_make_locally",
          `slot ${recipe.slot}: no stock template "${recipe.model}" (templates: ${Object.keys(TEMPLATES).join(", ")}); or list the link's steps`,
          { status: 422, extra: { slot: recipe.slot, model: recipe.model } },
        );
      }
      return renderOnSharp({ ...recipe, steps: [...steps] }, request, context, {
        maxPixels,
        label: "template",
      });
    },
  };
}
