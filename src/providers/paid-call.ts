import sharp from "sharp";
import { ShotlistError } from "../domain/errors.js";
import type { OutputFormat, OutputSpec, Recipe } from "../domain/recipe.js";
import { type DecodedImageInfo, decodeImage, decodeToRgba } from "../pipeline/decode.js";
import { encodeImage } from "../pipeline/encode.js";
import { buildXmp } from "../pipeline/xmp.js";
import {
  type CallContext,
  ProviderCallError,
  type ProviderFailureKind,
  type ProviderLimits,
  type ProviderRequest,
  type ProviderResult,
} from "./provider.js";

/**
 * What every paid adapter shares, sync or async, one function a job: the price table, the
 * construction checks, one HTTP call under a timeout and the caller's signal (sync adapters; the
 * SDK-based async ones go through exchange.ts), the mapping of an HTTP error answer to a failure
 * kind, the check of an image answer, and turning the provider's bytes into the recipe's output
 * (sized, encoded, with provenance XMP). Adapters make ONE request per call: retries, breakers
 * and budgets are the resilience layer's, around them.
 */

/** Prices of one provider: per model, or one price for every call. */
export interface PriceOptions {
  /** Cost of one call per model name, in micro-dollars (1 USD = 1 000 000). */
  prices?: Readonly<Record<string, number>>;
  /** Cost of any call whose model has no entry in `prices`, in micro-dollars. */
  perCallMicros?: number;
}

/** Checks a price table at construction, so a misconfigured provider fails at start-up. */
export function checkPrices(provider: string, options: PriceOptions): void {
  const entries = Object.entries(options.prices ?? {});
  if (entries.length === 0 && options.perCallMicros === undefined) {
    throw new ShotlistError(
      "invalid_config",
      `${provider}: a price table is required (prices per model or perCallMicros)`,
    );
  }
  for (const [model, micros] of entries) {
    if (!Number.isInteger(micros) || micros < 0) {
      throw new ShotlistError(
        "invalid_config",
        `${provider}: prices.${model} must be a whole number of micro-dollars ≥ 0, got ${micros}`,
      );
    }
  }
  const perCall = options.perCallMicros;
  if (perCall !== undefined && (!Number.isInteger(perCall) || perCall < 0)) {
    throw new ShotlistError(
      "invalid_config",
      `${provider}: perCallMicros must be a whole number of micro-dollars ≥ 0, got ${perCall}`,
    );
  }
}

/** The price of one call of `model`; a model without a price is refused before any spend. */
export function priceOf(provider: string, options: PriceOptions, model: string): number {
  const micros = options.prices?.[model] ?? options.perCallMicros;
  if (micros === undefined) {
    throw new ProviderCallError(
      provider,
      "invalid_request",
      `model "${model}" has no price in the price table (known: ${Object.keys(options.prices ?? {}).join(", ")}); nothing was sent`,
    );
  }
  return micros;
}

/**
 * The price table of an adapter with configured models (Replicate, fal), checked at construction
 * with one more rule: every configured model has a price, so none can fail for want of one at
 * call time.
 */
export function priceTable(
  provider: string,
  models: readonly string[],
  options: PriceOptions,
): (model: string) => number {
  checkPrices(provider, options);
  for (const model of models) {
    if (options.prices?.[model] === undefined && options.perCallMicros === undefined) {
      throw new ShotlistError(
        "invalid_config",
        `${provider}: no price for model "${model}": set prices["${model}"] or perCallMicros`,
      );
    }
  }
  return (model) => priceOf(provider, options, model);
}

/** Refuses, before anything is sent, an output the provider cannot make (format, side). */
export function checkOutputFits(
  provider: string,
  output: OutputSpec,
  limits: ProviderLimits,
): void {
  if (!limits.formats.includes(output.format)) {
    throw new ProviderCallError(provider, "invalid_request", `format ${output.format} not offered`);
  }
  if (Math.max(output.width, output.height) > limits.maxSide) {
    throw new ProviderCallError(
      provider,
      "invalid_request",
      `${output.width}×${output.height} exceeds the ${limits.maxSide} px limit`,
    );
  }
}

/** Checks an optional webhook URL at construction. */
export function checkWebhookUrl(provider: string, webhookUrl: string | undefined): void {
  if (webhookUrl !== undefined && !/^https?:\/\//.test(webhookUrl)) {
    throw new ShotlistError("invalid_config", `${provider}: webhookUrl must be an http(s) URL`);
  }
}

/** Checks that an API key was given (an empty one would only fail at the first paid call). */
export function checkApiKey(provider: string, apiKey: string): void {
  if (typeof apiKey !== "string" || apiKey.trim() === "") {
    throw new ShotlistError("invalid_config", `${provider}: apiKey is required`);
  }
}

/** Checks a timeout option at construction. */
export function checkTimeout(provider: string, timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ShotlistError(
      "invalid_config",
      `${provider}: timeoutMs must be > 0, got ${timeoutMs}`,
    );
  }
}

/** A base URL without its trailing slash; a malformed one fails at construction. */
export function normaliseBaseUrl(provider: string, baseUrl: string): string {
  try {
    const url = new URL(baseUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
  } catch (cause) {
    throw new ShotlistError(
      "invalid_config",
      `${provider}: baseUrl "${baseUrl}" is not an http(s) URL`,
      {
        cause,
      },
    );
  }
  return baseUrl.replace(/\/+$/, "");
}

/** The reference images' bytes in recipe order (the first is the input of an edit). */
export function referenceImages(request: ProviderRequest): Buffer[] {
  return request.recipe.references.map((hash, index) => {
    const bytes = request.references.get(hash);
    if (!bytes) {
      throw new ShotlistError(
        "reference_image_missing",
        `reference ${index} (${hash}) of recipe ${request.recipeHash} was not given to the provider`,
      );
    }
    return bytes;
  });
}

/**
 * A reference photo as the PNG an upload carries: EXIF orientation applied, then fitted as asked
 * (`contain` on a backdrop, or shrunk `inside` a box). A reference that does not decode (or would
 * exceed `maxPixels`) is refused before any call: it would fail the same way at the provider.
 */
export async function referencePng(
  bytes: Buffer,
  options: {
    maxPixels: number;
    fit?: { width: number; height: number; mode: "contain" | "inside"; background?: string };
  },
): Promise<Buffer<ArrayBuffer>> {
  try {
    let pipeline = sharp(bytes, {
      failOn: "truncated",
      limitInputPixels: options.maxPixels,
    }).autoOrient();
    const fit = options.fit;
    if (fit) {
      pipeline = pipeline.resize({
        width: fit.width,
        height: fit.height,
        fit: fit.mode,
        ...(fit.mode === "inside" ? { withoutEnlargement: true } : {}),
        ...(fit.background ? { background: fit.background } : {}),
      });
    }
    return await pipeline.png().toBuffer();
  } catch (cause) {
    throw undecodableReference(options.maxPixels, cause);
  }
}

/**
 * Checks that a reference photo decodes whole within `maxPixels`, for adapters that send it as
 * it is (the async ones, inline): refused as `referencePng` refuses, before any call.
 */
export async function checkReference(bytes: Buffer, maxPixels: number): Promise<void> {
  try {
    await decodeImage(bytes, { maxPixels });
  } catch (cause) {
    throw undecodableReference(maxPixels, cause);
  }
}

/** It would fail the same way at the provider, after being paid for: refused, nothing sent. */
function undecodableReference(maxPixels: number, cause: unknown): ShotlistError {
  return new ShotlistError(
    "reference_image_undecodable",
    `reference photo does not decode (or exceeds ${maxPixels} pixels); nothing was sent: ${(cause as Error).message}`,
    { status: 422, cause },
  );
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) as milliseconds: delay-seconds or an HTTP-date. Also reads
 * `retry-after-ms`, which OpenAI sends. Absent or unreadable → undefined.
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const milliseconds = headers.get("retry-after-ms");
  if (milliseconds !== null && /^\d+(\.\d+)?$/.test(milliseconds.trim())) {
    return Math.round(Number(milliseconds));
  }
  const value = headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The kind an HTTP status means when the body says nothing more specific. */
export function kindForStatus(status: number): ProviderFailureKind {
  if (status === 401 || status === 403) return "unauthorized";
  if (status === 402) return "insufficient_credits";
  if (status === 408) return "timeout";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "unavailable";
  return "invalid_request";
}

/**
 * One HTTP request under the adapter's timeout and the caller's signal, body read included (a
 * provider that sends headers and then stalls is a timeout too). The caller's abort rejects with
 * the signal's reason, untouched: it is not the provider's failure.
 */
export async function fetchWithDeadline(
  provider: string,
  url: string,
  init: RequestInit,
  options: { timeoutMs: number; context: CallContext },
): Promise<{ response: Response; body: Buffer }> {
  const { signal } = options.context;
  signal.throwIfAborted();
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const combined = AbortSignal.any([signal, deadline]);
  try {
    const response = await fetch(url, { ...init, signal: combined });
    const body = Buffer.from(await response.arrayBuffer());
    return { response, body };
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (deadline.aborted) {
      // For a sync call the outcome is unknown: the provider may have done (and billed) the work.
      throw new ProviderCallError(provider, "timeout", `no answer within ${options.timeoutMs} ms`, {
        cause: error,
      });
    }
    throw new ProviderCallError(
      provider,
      "unavailable",
      `request failed: ${(error as Error).message}${causeText(error)}`,
      { cause: error },
    );
  }
}

function causeText(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause ? ` (${cause.code ?? cause.message ?? "unknown cause"})` : "";
}

/** A short, single-line excerpt of an error body for the attempt's record. */
export function bodyExcerpt(body: Buffer | string, limit = 300): string {
  const text = (typeof body === "string" ? body : body.toString("utf8"))
    .replace(/\s+/g, " ")
    .trim();
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

/** Parses JSON without throwing: an HTML error page from a proxy is not JSON. */
export function parseJsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** An HTML page (a proxy's, a portal's) where an image or the API's JSON was due. */
export function looksLikeHtml(contentType: string | null, body: Buffer): boolean {
  if (contentType?.toLowerCase().includes("text/html")) return true;
  const head = body.subarray(0, 64).toString("utf8").trimStart().toLowerCase();
  return head.startsWith("<!doctype html") || head.startsWith("<html");
}

/** A non-2xx answer as the adapters read it (a sync adapter's response, an SDK's held one). */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** What a provider's own error body says beyond its status. */
export interface HttpFailureRefinement {
  kind?: ProviderFailureKind;
  detail?: string;
}

/**
 * Maps a non-2xx answer to a failure kind (`kindForStatus`: 401/403 unauthorized, 402
 * insufficient credits, 408 timeout, 429 rate limited with Retry-After, 5xx unavailable, other
 * 4xx invalid request). `refine` reads the provider's own error body first (remove.bg's
 * `insufficient_credits` code, fal's content_policy_violation, its "Exhausted balance" 403, …);
 * it gets the body parsed when it is JSON. An HTML page keeps its status and is named as such.
 */
export function failureFromResponse(
  provider: string,
  answer: HttpAnswer,
  refine?: (answer: HttpAnswer, json: unknown) => HttpFailureRefinement | undefined,
): ProviderCallError {
  const contentType = answer.headers.get("content-type");
  const html = looksLikeHtml(contentType, answer.body);
  const json = !html && contentType?.includes("json") ? parseJsonBody(answer.body) : undefined;
  const refined = refine?.(answer, json);
  const kind: ProviderFailureKind = refined?.kind ?? kindForStatus(answer.status);
  const text = html ? "an HTML error page" : (refined?.detail ?? bodyExcerpt(answer.body));
  const retryAfter = retryAfterMs(answer.headers);
  return new ProviderCallError(provider, kind, `HTTP ${answer.status}: ${text}`, {
    httpStatus: answer.status,
    ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
  });
}

const DECODED_FORMATS: Readonly<Record<string, OutputFormat>> = {
  jpeg: "jpeg",
  png: "png",
  webp: "webp",
  heif: "avif",
  avif: "avif",
};

/**
 * Checks that a provider's answer is a whole image of the size (and, when given, the format) the
 * adapter asked for. Empty bytes, an HTML page, bytes that are no image, a truncated file (decoded
 * to the last scanline), one over the pixel limit, another size or format → `bad_output`
 * (permanent: the same call would be paid again for the same answer; the slot moves down its
 * chain and nothing is published).
 */
export async function checkImageAnswer(
  provider: string,
  bytes: Buffer,
  options: {
    contentType: string | null;
    expected?: { width: number; height: number; format?: OutputFormat };
    maxPixels: number;
  },
): Promise<DecodedImageInfo> {
  if (bytes.length === 0) throw new ProviderCallError(provider, "bad_output", "empty answer");
  if (looksLikeHtml(options.contentType, bytes)) {
    throw new ProviderCallError(
      provider,
      "bad_output",
      `answered an HTML page instead of an image: ${bodyExcerpt(bytes, 120)}`,
    );
  }
  let info: DecodedImageInfo;
  try {
    info = await decodeImage(bytes, { maxPixels: options.maxPixels });
  } catch (cause) {
    throw new ProviderCallError(
      provider,
      "bad_output",
      `answer is not a whole image (${bytes.length} bytes, ${options.contentType ?? "no content type"}): ${(cause as Error).message}`,
      { cause },
    );
  }
  const format = DECODED_FORMATS[info.format];
  if (format === undefined) {
    throw new ProviderCallError(provider, "bad_output", `answer is a ${info.format} image`);
  }
  const expected = options.expected;
  if (expected?.format !== undefined && format !== expected.format) {
    throw new ProviderCallError(
      provider,
      "bad_output",
      `answer is ${format}, asked for ${expected.format}`,
    );
  }
  if (expected && (info.width !== expected.width || info.height !== expected.height)) {
    throw new ProviderCallError(
      provider,
      "bad_output",
      `answer is ${info.width}×${info.height}, asked for ${expected.width}×${expected.height}`,
    );
  }
  return info;
}

/**
 * The recipe's output from a checked answer: cropped to the output's aspect ratio if it differs
 * (centre, as `fit: cover`), resized when its size differs, encoded in the output format and quality, with the XMP
 * packet that carries the recipe hash and the IPTC digital source type (DESIGN §8). The bytes a
 * provider sent never reach the blob store unchecked or unlabelled.
 */
export async function encodeOutput(
  provider: string,
  answer: Buffer,
  options: {
    /** The recipe's output: size, format, quality. */
    output: OutputSpec;
    recipeHash: string;
    maxPixels: number;
    digitalSourceType: "trainedAlgorithmicMedia" | "compositeWithTrainedAlgorithmicMedia";
  },
): Promise<Pick<ProviderResult, "bytes" | "format" | "width" | "height">> {
  const { output } = options;
  try {
    const rgba = await decodeToRgba(answer, { maxPixels: options.maxPixels });
    let pixels = rgba;
    if (rgba.width !== output.width || rgba.height !== output.height) {
      const { data, info } = await sharp(rgba.data, {
        raw: { width: rgba.width, height: rgba.height, channels: 4 },
      })
        .resize({ width: output.width, height: output.height, fit: "cover", position: "centre" })
        .raw()
        .toBuffer({ resolveWithObject: true });
      pixels = { data, width: info.width, height: info.height, channels: 4 };
    }
    const xmp = buildXmp({
      recipeHash: options.recipeHash,
      digitalSourceType: options.digitalSourceType,
    });
    const bytes = await encodeImage(pixels, output, xmp);
    return { bytes, format: output.format, width: output.width, height: output.height };
  } catch (cause) {
    if (cause instanceof ProviderCallError) throw cause;
    throw new ProviderCallError(
      provider,
      "bad_output",
      `answer could not be made into the ${output.width}×${output.height} ${output.format} output: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * One multipart upload whose answer is the image itself (remove.bg, Photoroom): posted under the
 * call's deadline, an error answer mapped with the provider's own `refine`, the image checked to
 * be exactly the output size, then made into the recipe's output, labelled as a composite with AI
 * (the product photo went in).
 */
export async function uploadForImage(
  provider: string,
  url: string,
  upload: { headers: Record<string, string>; form: FormData },
  options: {
    request: ProviderRequest;
    timeoutMs: number;
    maxPixels: number;
    context: CallContext;
    refine: (answer: HttpAnswer, json: unknown) => HttpFailureRefinement | undefined;
  },
): Promise<Pick<ProviderResult, "bytes" | "format" | "width" | "height">> {
  const { request, maxPixels } = options;
  const { response, body } = await fetchWithDeadline(
    provider,
    url,
    { method: "POST", headers: { ...upload.headers, Accept: "image/*" }, body: upload.form },
    { timeoutMs: options.timeoutMs, context: options.context },
  );
  if (!response.ok) {
    throw failureFromResponse(
      provider,
      { status: response.status, headers: response.headers, body },
      options.refine,
    );
  }
  const { width, height } = request.recipe.output;
  await checkImageAnswer(provider, body, {
    contentType: response.headers.get("content-type"),
    expected: { width, height },
    maxPixels,
  });
  return encodeOutput(provider, body, {
    output: request.recipe.output,
    recipeHash: request.recipeHash,
    maxPixels,
    digitalSourceType: "compositeWithTrainedAlgorithmicMedia",
  });
}

/** The colour of the recipe's `place` step as `rrggbb`, if it has one (backdrop for cut-outs). */
export function placeBackground(recipe: Recipe): string | undefined {
  for (const step of recipe.steps) {
    if (step.op === "place" && /^#[0-9a-f]{6}$/i.test(step.background)) {
      return step.background.slice(1).toUpperCase();
    }
  }
  return undefined;
}
