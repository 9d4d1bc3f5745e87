import type { Recipe } from "../../domain/recipe.js";
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

/**
 * The recipe models this adapter serves: `segment` is the Remove Background API (Basic plan,
 * `POST /v1/segment`), `studio` the Image Editing API v2 (Plus plan, `POST /v2/edit`) making a
 * studio shot: background removed, placed on the backdrop with padding, optional AI soft shadow,
 * at exactly the output size.
 */
export const PHOTOROOM_MODELS = ["segment", "studio"] as const;
export type PhotoroomModel = (typeof PHOTOROOM_MODELS)[number];

export interface PhotoroomProviderOptions extends PriceOptions {
  /** Name the registry knows the adapter by; default "photoroom". */
  name?: string;
  /** Remove Background API base URL; default "https://sdk.photoroom.com". */
  baseUrl?: string;
  /** Image Editing API base URL; default "https://image-api.photoroom.com". */
  editBaseUrl?: string;
  /** Photoroom API key, sent as `x-api-key`. Security: a secret; never log it. */
  apiKey: string;
  /** One call's deadline, upload and answer included, in ms; default 90 000 (AI shadows are slow). */
  timeoutMs?: number;
  /**
   * Overrides of the declared limits; defaults: 5,000 px, png/jpeg/webp/avif, 60 requests a
   * minute (Photoroom publishes no figure; set your plan's).
   */
  limits?: Partial<ProviderLimits>;
  /** Largest answer, in pixels, the adapter will decode; default 40 000 000 (bomb guard). */
  maxPixels?: number;
}

/** Input photos larger than this on their long side are shrunk before upload (upload time, 30 MB cap). */
const MAX_UPLOAD_SIDE_PX = 5000;

/**
 * Photoroom (https://docs.photoroom.com): synchronous, one multipart request per image,
 * `x-api-key` auth, the answer is the image itself. Errors: 400 with the request's problem, 402
 * when the API credits are exhausted, 403 for a bad key, 429 with `Retry-After`, 5xx.
 */
export function createPhotoroomProvider(options: PhotoroomProviderOptions): SyncPaidProvider {
  const name = options.name ?? "photoroom";
  const segmentUrl = `${normaliseBaseUrl(name, options.baseUrl ?? "https://sdk.photoroom.com")}/v1/segment`;
  const editUrl = `${normaliseBaseUrl(name, options.editBaseUrl ?? "https://image-api.photoroom.com")}/v2/edit`;
  const timeoutMs = options.timeoutMs ?? 90_000;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkApiKey(name, options.apiKey);
  checkPrices(name, options);
  checkTimeout(name, timeoutMs);

  const modelOf = (recipe: Recipe): PhotoroomModel => {
    const model = PHOTOROOM_MODELS.find((known) => known === recipe.model);
    if (!model) {
      throw new ProviderCallError(
        name,
        "invalid_request",
        `unknown model "${recipe.model}" (known: ${PHOTOROOM_MODELS.join(", ")}); nothing was sent`,
      );
    }
    return model;
  };

  return {
    name,
    operations: ["remove-background", "edit"],
    billing: "paid",
    mode: "sync",
    limits: {
      maxSide: MAX_UPLOAD_SIDE_PX,
      formats: ["png", "jpeg", "webp", "avif"],
      requestsPerMinute: 60,
      ...options.limits,
    },
    modelVersion(model: string): string {
      return model === "studio"
        ? "photoroom image-editing v2/edit / studio (removeBackground, padding, ai.soft shadow)"
        : `photoroom remove-background v1/segment / ${model} size=full`;
    },
    estimateCostMicros(request: ProviderRequest): number {
      modelOf(request.recipe);
      return priceOf(name, options, request.recipe.model);
    },
    async run(request: ProviderRequest, context: PaidCallContext): Promise<ProviderResult> {
      const model = modelOf(request.recipe);
      const costMicros = priceOf(name, options, request.recipe.model);
      const [input] = referenceImages(request);
      if (!input) {
        throw new ProviderCallError(
          name,
          "invalid_request",
          `${model} needs a reference photo; the recipe names none`,
        );
      }
      const { width, height } = request.recipe.output;
      const backdrop = placeBackground(request.recipe);
      const form = new FormData();
      let url: string;
      if (model === "segment") {
        // Fitted to the output size first, so `size=full` answers exactly the output size.
        const fitted = await referencePng(input, {
          maxPixels,
          fit: { width, height, mode: "contain", background: `#${backdrop ?? "FFFFFF"}` },
        });
        form.append("image_file", new Blob([fitted], { type: "image/png" }), "reference.png");
        form.append("format", "png");
        form.append("channels", "rgba");
        form.append("size", "full");
        form.append("crop", "false");
        if (backdrop) form.append("bg_color", `#${backdrop}`);
        url = segmentUrl;
      } else {
        const photo = await referencePng(input, {
          maxPixels,
          fit: { width: MAX_UPLOAD_SIDE_PX, height: MAX_UPLOAD_SIDE_PX, mode: "inside" },
        });
        form.append("imageFile", new Blob([photo], { type: "image/png" }), "reference.png");
        form.append("removeBackground", "true");
        form.append("outputSize", `${width}x${height}`);
        form.append("background.color", backdrop ?? "FFFFFF");
        form.append("padding", String(paddingFor(request.recipe)));
        if (request.recipe.steps.some((step) => step.op === "shadow")) {
          form.append("shadow.mode", "ai.soft");
        }
        form.append("export.format", "png");
        url = editUrl;
      }

      const output = await uploadForImage(
        name,
        url,
        { headers: { "x-api-key": options.apiKey }, form },
        { request, timeoutMs, maxPixels, context, refine: refinePhotoroom },
      );
      return { ...output, costMicros };
    },
  };
}

/**
 * Photoroom's `padding` is a ratio of the frame on each side (0–0.49): a `place` step's `fill`
 * (the share of the frame the subject fills) leaves (1 − fill) / 2 on each side. No place step →
 * 0.1, Photoroom's own e-commerce example.
 */
export function paddingFor(recipe: Recipe): number {
  const place = recipe.steps.find((step) => step.op === "place");
  if (place?.op !== "place") return 0.1;
  const padding = (1 - place.fill) / 2;
  return Math.min(0.49, Math.max(0, Math.round(padding * 1000) / 1000));
}

/**
 * Both of Photoroom's error shapes: `{detail, status_code, type}` (Remove Background API) and
 * `{error: {message}}` / `{error: {detail}}` (Image Editing API). A proxy's HTML page keeps its status.
 */
function refinePhotoroom(_answer: HttpAnswer, json: unknown): HttpFailureRefinement | undefined {
  const parsed = json as
    | { detail?: string; type?: string; error?: { message?: string; detail?: string } }
    | undefined;
  const message = parsed?.error?.message ?? parsed?.error?.detail ?? parsed?.detail;
  return message ? { detail: [parsed?.type, message].filter(Boolean).join(": ") } : undefined;
}
