import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  toFile,
} from "openai";
import type { Recipe } from "../../domain/recipe.js";
import { DEFAULT_MAX_PIXELS } from "../../pipeline/decode.js";
import {
  checkApiKey,
  checkImageAnswer,
  checkPrices,
  checkTimeout,
  encodeOutput,
  kindForStatus,
  normaliseBaseUrl,
  type PriceOptions,
  priceOf,
  referenceImages,
  referencePng,
  retryAfterMs,
} from "../paid-call.js";
import {
  type PaidCallContext,
  ProviderCallError,
  type ProviderFailureKind,
  type ProviderLimits,
  type ProviderRequest,
  type ProviderResult,
  type SyncPaidProvider,
} from "../provider.js";

/** The GPT image models' `quality`: more detail costs more output tokens. */
export type OpenAIImageQuality = "low" | "medium" | "high" | "auto";

export interface OpenAIProviderOptions extends PriceOptions {
  /** Name the registry knows the adapter by; default "openai". */
  name?: string;
  /** API base URL including `/v1`; default "https://api.openai.com/v1". Tests point it at a fake. */
  baseUrl?: string;
  /** OpenAI API key (`Authorization: Bearer`). Security: a secret; never log it. */
  apiKey: string;
  /** `OpenAI-Organization`, when the key belongs to several organisations. */
  organization?: string;
  /** `OpenAI-Project`, to bill a project. */
  project?: string;
  /** One call's deadline in ms; default 180 000 (a high-quality image can take a minute or more). */
  timeoutMs?: number;
  /** `quality` sent with every call; default "high". Prices in the table must match it. */
  quality?: OpenAIImageQuality;
  /** `input_fidelity` for edits ("high" keeps a product's details); default unset (the API's). */
  inputFidelity?: "high" | "low";
  /**
   * Overrides of the declared limits; defaults: 1,536 px (3,840 with a gpt-image-2 price), png/jpeg/
   * webp, 5 images a minute (tier 1 for GPT image models; raise it to your usage tier's).
   */
  limits?: Partial<ProviderLimits>;
  /** Largest answer, in pixels, the adapter will decode; default 40 000 000 (bomb guard). */
  maxPixels?: number;
}

/** The three sizes every GPT image model accepts. */
const STANDARD_SIZES = [
  { width: 1024, height: 1024 },
  { width: 1536, height: 1024 },
  { width: 1024, height: 1536 },
] as const;
/** gpt-image-2: any WIDTHxHEIGHT, both multiples of 16, aspect 1:3–3:1, up to 3840×2160. */
const FLEXIBLE_MAX_EDGE = 3840;
const FLEXIBLE_MAX_PIXELS = 3840 * 2160;

function hasFlexibleSizes(model: string): boolean {
  return model.startsWith("gpt-image-2");
}

/**
 * The size to ask for: for gpt-image-2 the output size rounded up to multiples of 16 (scaled down
 * into its limits); for the other GPT image models the standard size closest in aspect ratio.
 * The answer must be exactly this size; it is then cropped (centre) and resized to the output.
 */
export function requestSize(
  model: string,
  output: { width: number; height: number },
): { width: number; height: number } {
  const ratio = output.width / output.height;
  if (!hasFlexibleSizes(model)) {
    let best: { width: number; height: number } = STANDARD_SIZES[0];
    for (const size of STANDARD_SIZES) {
      if (
        Math.abs(Math.log(size.width / size.height / ratio)) <
        Math.abs(Math.log(best.width / best.height / ratio))
      ) {
        best = size;
      }
    }
    return { width: best.width, height: best.height };
  }
  const clampedRatio = Math.min(3, Math.max(1 / 3, ratio));
  let width = output.width;
  let height = Math.round(width / clampedRatio);
  const scale = Math.min(
    1,
    FLEXIBLE_MAX_EDGE / Math.max(width, height),
    Math.sqrt(FLEXIBLE_MAX_PIXELS / (width * height)),
  );
  width *= scale;
  height *= scale;
  // Round up to multiples of 16 where that stays inside the limits, else down; then trim the
  // long side if rounding pushed the aspect ratio past 3:1.
  const up = { width: Math.ceil(width / 16) * 16, height: Math.ceil(height / 16) * 16 };
  const fits = (size: { width: number; height: number }) =>
    Math.max(size.width, size.height) <= FLEXIBLE_MAX_EDGE &&
    size.width * size.height <= FLEXIBLE_MAX_PIXELS;
  const size = fits(up)
    ? up
    : {
        width: Math.max(16, Math.floor(width / 16) * 16),
        height: Math.max(16, Math.floor(height / 16) * 16),
      };
  while (size.width > 3 * size.height) size.width -= 16;
  while (size.height > 3 * size.width) size.height -= 16;
  return size;
}

/**
 * OpenAI images (https://platform.openai.com/docs/api-reference/images) through the official
 * `openai` SDK: `images.generate` when the recipe names no reference photo, `images.edit` with
 * every reference (the first is the product photo) when it does. Synchronous; the image comes back
 * base64 in the JSON answer. The SDK's own retries are off: one request per call.
 */
export function createOpenAIProvider(options: OpenAIProviderOptions): SyncPaidProvider {
  const name = options.name ?? "openai";
  const baseURL = normaliseBaseUrl(name, options.baseUrl ?? "https://api.openai.com/v1");
  const timeoutMs = options.timeoutMs ?? 180_000;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const quality = options.quality ?? "high";
  checkApiKey(name, options.apiKey);
  checkPrices(name, options);
  checkTimeout(name, timeoutMs);
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL,
    organization: options.organization ?? null,
    project: options.project ?? null,
    maxRetries: 0,
    timeout: timeoutMs,
  });
  const flexible = Object.keys(options.prices ?? {}).some(hasFlexibleSizes);

  const promptOf = (recipe: Recipe): string => {
    if (!recipe.prompt || recipe.prompt.trim() === "") {
      throw new ProviderCallError(
        name,
        "invalid_request",
        "an image model needs a prompt; the recipe has none; nothing was sent",
      );
    }
    return recipe.prompt;
  };

  return {
    name,
    operations: ["generate", "edit"],
    billing: "paid",
    mode: "sync",
    limits: {
      maxSide: flexible ? FLEXIBLE_MAX_EDGE : 1536,
      formats: ["png", "jpeg", "webp"],
      requestsPerMinute: 5,
      ...options.limits,
    },
    modelVersion(model: string): string {
      return `openai ${model} quality=${quality}${options.inputFidelity ? ` input_fidelity=${options.inputFidelity}` : ""}`;
    },
    estimateCostMicros(request: ProviderRequest): number {
      return priceOf(name, options, request.recipe.model);
    },
    async run(request: ProviderRequest, context: PaidCallContext): Promise<ProviderResult> {
      const { recipe } = request;
      const costMicros = priceOf(name, options, recipe.model);
      const prompt = promptOf(recipe);
      const references = referenceImages(request);
      const size = requestSize(recipe.model, recipe.output);
      // PNG whatever the reference's format: the API takes png, webp or jpeg only.
      const images = await Promise.all(
        references.map(async (bytes, index) =>
          toFile(await referencePng(bytes, { maxPixels }), `reference-${index}.png`, {
            type: "image/png",
          }),
        ),
      );
      context.signal.throwIfAborted();
      const deadline = AbortSignal.timeout(timeoutMs);
      const signal = AbortSignal.any([context.signal, deadline]);
      const common = {
        model: recipe.model,
        prompt,
        n: 1,
        size: `${size.width}x${size.height}`,
        quality,
        output_format: "png" as const,
      };

      let answer: unknown;
      let requestId: string | null | undefined;
      try {
        if (references.length === 0) {
          const { data, request_id } = await client.images
            .generate(common, { signal, timeout: timeoutMs })
            .withResponse();
          answer = data;
          requestId = request_id;
        } else {
          const { data, request_id } = await client.images
            .edit(
              {
                ...common,
                image: images,
                ...(options.inputFidelity ? { input_fidelity: options.inputFidelity } : {}),
              },
              { signal, timeout: timeoutMs },
            )
            .withResponse();
          answer = data;
          requestId = request_id;
        }
      } catch (error) {
        if (context.signal.aborted) throw context.signal.reason;
        throw failureOf(name, error, deadline.aborted, timeoutMs);
      }

      const b64 = (answer as { data?: { b64_json?: unknown }[] } | undefined)?.data?.[0]?.b64_json;
      if (typeof b64 !== "string" || b64.length === 0) {
        const excerpt = typeof answer === "string" ? answer : JSON.stringify(answer);
        throw new ProviderCallError(
          name,
          "bad_output",
          `answer has no data[0].b64_json: ${(excerpt ?? "").replace(/\s+/g, " ").slice(0, 160)}`,
        );
      }
      const bytes = Buffer.from(b64, "base64");
      await checkImageAnswer(name, bytes, { contentType: null, expected: size, maxPixels });
      const output = await encodeOutput(name, bytes, {
        output: recipe.output,
        recipeHash: request.recipeHash,
        maxPixels,
        digitalSourceType:
          references.length === 0
            ? "trainedAlgorithmicMedia"
            : "compositeWithTrainedAlgorithmicMedia",
      });
      return { ...output, costMicros, ...(requestId ? { providerRequestId: requestId } : {}) };
    },
  };
}

/** Error codes OpenAI answers for a moderation refusal (GPT image models, then DALL·E). */
const CONTENT_POLICY_CODES = new Set(["moderation_blocked", "content_policy_violation"]);
/** Error codes that mean the account cannot pay: more retries will not help. */
const NO_CREDIT_CODES = new Set([
  "insufficient_quota",
  "billing_hard_limit_reached",
  "billing_not_active",
]);

/**
 * OpenAI's errors, `{"error": {message, type, param, code}}`, by code first and status second:
 * `insufficient_quota` comes as a 429 but is no rate limit; a moderation refusal comes as a 400.
 */
function failureOf(
  provider: string,
  error: unknown,
  timedOut: boolean,
  timeoutMs: number,
): ProviderCallError {
  if (timedOut || error instanceof APIConnectionTimeoutError) {
    return new ProviderCallError(provider, "timeout", `no answer within ${timeoutMs} ms`, {
      cause: error,
    });
  }
  if (error instanceof APIUserAbortError) {
    return new ProviderCallError(provider, "timeout", "the call was aborted", { cause: error });
  }
  if (error instanceof APIConnectionError) {
    return new ProviderCallError(provider, "unavailable", `request failed: ${error.message}`, {
      cause: error,
    });
  }
  if (error instanceof APIError && typeof error.status === "number") {
    const code = typeof error.code === "string" ? error.code : undefined;
    let kind: ProviderFailureKind = kindForStatus(error.status);
    if (code && CONTENT_POLICY_CODES.has(code)) kind = "content_policy";
    else if (code && NO_CREDIT_CODES.has(code)) kind = "insufficient_credits";
    const retryAfter = error.headers ? retryAfterMs(error.headers) : undefined;
    return new ProviderCallError(
      provider,
      kind,
      `HTTP ${error.status}${code ? ` ${code}` : ""}: ${error.message}${error.requestID ? ` (request ${error.requestID})` : ""}`,
      {
        httpStatus: error.status,
        cause: error,
        ...(kind === "rate_limited" && retryAfter !== undefined
          ? { retryAfterMs: retryAfter }
          : {}),
      },
    );
  }
  // The SDK could not read the answer (a 200 that is not the documented JSON, cut short).
  return new ProviderCallError(
    provider,
    "bad_output",
    `answer could not be read: ${(error as Error).message}`,
    {
      cause: error,
    },
  );
}
