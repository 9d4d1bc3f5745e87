import { ShotlistError } from "../domain/errors.js";
import type { OutputFormat, OutputSpec } from "../domain/recipe.js";
import { DEFAULT_MAX_PIXELS, decodeImage, decodeToRgba } from "../pipeline/decode.js";
import { encodeImage } from "../pipeline/encode.js";
import { buildXmp } from "../pipeline/xmp.js";
import { type CallDeadline, failureFromResponse, looksLikeHtml } from "./exchange.js";
import { ProviderCallError } from "./provider.js";

export interface OutputImage {
  bytes: Buffer;
  format: OutputFormat;
  width: number;
  height: number;
}

const OUTPUT_FORMATS: ReadonlySet<string> = new Set(["jpeg", "webp", "avif", "png"]);

/**
 * Checks a provider's answer is the image the recipe asked for: it decodes to the last scanline
 * (a truncated file fails), under the pixel limit, in the recipe's format and at its exact size.
 * Anything else is `bad_output` (permanent): the same call would answer the same way, so the slot
 * moves down its chain and nothing is published.
 */
export async function readOutputImage(
  provider: string,
  bytes: Buffer,
  contentType: string | null,
  expected: OutputSpec,
  maxPixels = DEFAULT_MAX_PIXELS,
): Promise<OutputImage> {
  if (bytes.length === 0) throw new ProviderCallError(provider, "bad_output", "empty answer");
  if (looksLikeHtml(contentType, bytes)) {
    throw new ProviderCallError(provider, "bad_output", "an HTML page instead of an image");
  }
  let info: Awaited<ReturnType<typeof decodeImage>>;
  try {
    info = await decodeImage(bytes, { maxPixels });
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new ProviderCallError(provider, "bad_output", `not a usable image: ${detail}`, { cause });
  }
  if (!OUTPUT_FORMATS.has(info.format) || info.format !== expected.format) {
    throw new ProviderCallError(
      provider,
      "bad_output",
      `answered ${info.format}, the recipe asks for ${expected.format}`,
    );
  }
  if (info.width !== expected.width || info.height !== expected.height) {
    throw new ProviderCallError(
      provider,
      "bad_output",
      `answered ${info.width}×${info.height}, the recipe asks for ${expected.width}×${expected.height}`,
    );
  }
  return { bytes, format: info.format as OutputFormat, width: info.width, height: info.height };
}

/**
 * The checked image re-encoded at the recipe's quality with the XMP packet every asset carries
 * (DESIGN §8: the recipe hash and the IPTC digital source type), as the sync adapters and the
 * local pipeline label theirs. The size and format are already the recipe's.
 */
export async function labelOutput(
  provider: string,
  image: OutputImage,
  options: { output: OutputSpec; recipeHash: string; composite: boolean; maxPixels?: number },
): Promise<OutputImage> {
  try {
    const pixels = await decodeToRgba(image.bytes, {
      maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
    });
    const xmp = buildXmp({
      recipeHash: options.recipeHash,
      digitalSourceType: options.composite
        ? "compositeWithTrainedAlgorithmicMedia"
        : "trainedAlgorithmicMedia",
    });
    return { ...image, bytes: await encodeImage(pixels, options.output, xmp) };
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new ProviderCallError(provider, "bad_output", `could not re-encode: ${detail}`, {
      cause,
    });
  }
}

/**
 * Downloads an output file (Replicate's replicate.delivery, fal's fal.media) once, under the
 * call's deadline. Outputs expire (DESIGN §4), so a 404/410 is permanent `bad_output`; 5xx and
 * connection failures are retryable, since the file may still be there on the next poll.
 */
export async function downloadOutput(
  provider: string,
  url: string,
  deadline: CallDeadline,
  fetchImpl: typeof fetch = fetch,
): Promise<{ bytes: Buffer; contentType: string | null }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new ProviderCallError(provider, "bad_output", `output URL is not a URL: ${url}`, {
      cause,
    });
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new ProviderCallError(provider, "bad_output", `output URL is not http(s): ${url}`);
  }
  let response: Response;
  let bytes: Buffer;
  try {
    response = await fetchImpl(parsed, { signal: deadline.signal });
    bytes = Buffer.from(await response.arrayBuffer());
  } catch (cause) {
    if (deadline.timedOut()) {
      throw new ProviderCallError(provider, "timeout", "output download timed out", { cause });
    }
    if (deadline.signal.aborted) throw deadline.signal.reason ?? cause;
    if (cause instanceof ShotlistError && cause.code === "output_url_forbidden") {
      // The answer points at an address we never fetch (SSRF guard): the call's final answer.
      throw new ProviderCallError(provider, "bad_output", `output URL refused: ${cause.message}`, {
        cause,
      });
    }
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new ProviderCallError(provider, "unavailable", `output download failed: ${detail}`, {
      cause,
    });
  }
  if (!response.ok) {
    const failure = failureFromResponse(provider, {
      status: response.status,
      headers: response.headers,
      body: bytes,
    });
    if (response.status === 404 || response.status === 410) {
      throw new ProviderCallError(provider, "bad_output", `output file is gone (${url})`, {
        httpStatus: response.status,
        cause: failure,
      });
    }
    throw failure;
  }
  return { bytes, contentType: response.headers.get("content-type") };
}
