import { ShotlistError } from "../domain/errors.js";
import type { AsyncCallHandle } from "./async-handle.js";
import type { CallDeadline } from "./exchange.js";
import { checkImageAnswer, encodeOutput, failureFromResponse } from "./paid-call.js";
import { ProviderCallError, type ProviderResult } from "./provider.js";

/**
 * A finished async job's output (Replicate, fal): downloaded at once (it expires), checked to be
 * the output the handle asked for, and made into the recipe's output with its XMP label.
 */
export async function outputOfJob(
  provider: string,
  url: string,
  handle: AsyncCallHandle,
  options: { deadline: CallDeadline; fetch: typeof fetch; maxPixels: number },
): Promise<Pick<ProviderResult, "bytes" | "format" | "width" | "height">> {
  const file = await downloadOutput(provider, url, options.deadline, options.fetch);
  await checkImageAnswer(provider, file.bytes, {
    contentType: file.contentType,
    expected: handle.output,
    maxPixels: options.maxPixels,
  });
  return encodeOutput(provider, file.bytes, {
    output: handle.output,
    recipeHash: handle.recipeHash,
    maxPixels: options.maxPixels,
    digitalSourceType: handle.composite
      ? "compositeWithTrainedAlgorithmicMedia"
      : "trainedAlgorithmicMedia",
  });
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
