import { DEFAULT_MAX_PIXELS } from "../../pipeline/decode.js";
import {
  checkApiKey,
  checkPrices,
  checkTimeout,
  type HttpAnswer,
  type HttpFailureRefinement,
  normaliseBaseUrl,
  type PriceOptions,
  placeBackground,
  priceOf,
  referenceImages,
  referencePng,
  uploadForImage,
} from "../paid-call.js";
import {
  type PaidCallContext,
  ProviderCallError,
  type ProviderLimits,
  type ProviderRequest,
  type ProviderResult,
  type SyncPaidProvider,
} from "../provider.js";

/** remove.bg's documented foreground types (`type` field). */
export type RemoveBgForegroundType = "auto" | "person" | "product" | "car";

export interface RemoveBgProviderOptions extends PriceOptions {
  /** Name the registry knows the adapter by; default "removebg". */
  name?: string;
  /** API base URL; default "https://api.remove.bg". Tests point it at a local fake. */
  baseUrl?: string;
  /** remove.bg API key, sent as `X-Api-Key`. Security: a secret; never log it. */
  apiKey: string;
  /** One call's deadline, upload and answer included, in ms; default 60 000. */
  timeoutMs?: number;
  /** remove.bg `type` hint; default "product" (catalogue photos). */
  foregroundType?: RemoveBgForegroundType;
  /**
   * Overrides of the declared limits; defaults: 5,000 px (25 megapixels), png/jpeg/webp/avif,
   * 500 requests a minute (remove.bg's documented API limit).
   */
  limits?: Partial<ProviderLimits>;
  /** Largest answer, in pixels, the adapter will decode; default 40 000 000 (bomb guard). */
  maxPixels?: number;
}

/**
 * remove.bg (https://www.remove.bg/api): background removal, one synchronous multipart
 * `POST /v1.0/removebg` per image, `X-Api-Key` auth, the answer is the image itself.
 *
 * The first reference photo is fitted inside the recipe's output size (padded with the `place`
 * step's backdrop, white by default) and sent with `size=full`, so remove.bg answers exactly the
 * output size: any other size is a bad answer. The cut-out is then encoded in the recipe's format.
 */
export function createRemoveBgProvider(options: RemoveBgProviderOptions): SyncPaidProvider {
  const name = options.name ?? "removebg";
  const baseUrl = normaliseBaseUrl(name, options.baseUrl ?? "https://api.remove.bg");
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkApiKey(name, options.apiKey);
  checkPrices(name, options);
  checkTimeout(name, timeoutMs);

  return {
    name,
    operations: ["remove-background"],
    billing: "paid",
    mode: "sync",
    limits: {
      // remove.bg accepts inputs up to 25 megapixels (50 MP with size=50MP): 5000×5000.
      maxSide: 5000,
      formats: ["png", "jpeg", "webp", "avif"],
      requestsPerMinute: 500,
      ...options.limits,
    },
    modelVersion(model: string): string {
      return `remove.bg API v1.0 / ${model} / size=full type=${options.foregroundType ?? "product"}`;
    },
    estimateCostMicros(request: ProviderRequest): number {
      return priceOf(name, options, request.recipe.model);
    },
    async run(request: ProviderRequest, context: PaidCallContext): Promise<ProviderResult> {
      const costMicros = priceOf(name, options, request.recipe.model);
      const [input] = referenceImages(request);
      if (!input) {
        throw new ProviderCallError(
          name,
          "invalid_request",
          "background removal needs a reference photo; the recipe names none",
        );
      }
      const { width, height } = request.recipe.output;
      const backdrop = placeBackground(request.recipe);
      const fitted = await referencePng(input, {
        maxPixels,
        fit: { width, height, mode: "contain", background: `#${backdrop ?? "FFFFFF"}` },
      });

      const form = new FormData();
      form.append("image_file", new Blob([fitted], { type: "image/png" }), "reference.png");
      form.append("size", "full");
      form.append("type", options.foregroundType ?? "product");
      form.append("format", "png");
      form.append("channels", "rgba");
      if (backdrop) form.append("bg_color", backdrop);

      const output = await uploadForImage(
        name,
        `${baseUrl}/v1.0/removebg`,
        { headers: { "X-Api-Key": options.apiKey }, form },
        { request, timeoutMs, maxPixels, context, refine: refineRemoveBg },
      );
      return { ...output, costMicros };
    },
  };
}

/**
 * remove.bg's error answers: `{"errors":[{"title","code"?,"detail"?}]}` with 400 (invalid
 * parameters or an image it cannot process), 402 (insufficient credits), 403 (authentication
 * failed), 429 (rate limit, with `Retry-After`), 5xx. A proxy's HTML page keeps its status.
 */
function refineRemoveBg(_answer: HttpAnswer, json: unknown): HttpFailureRefinement | undefined {
  const first = (json as { errors?: { title?: string; code?: string; detail?: string }[] })
    ?.errors?.[0];
  if (!first) return undefined;
  return {
    detail: [first.code, first.title, first.detail].filter(Boolean).join(": "),
    ...(first.code === "insufficient_credits" ? { kind: "insufficient_credits" as const } : {}),
  };
}
