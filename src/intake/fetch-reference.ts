import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { ShotlistError } from "../domain/errors.js";
import { guardedLookup, isForbiddenAddress } from "./address-guard.js";

export interface FetchReferenceOptions {
  maxBytes: number;
  allowPrivateNetworks: boolean;
  /** Whole fetch, redirects included; default 15 s. */
  timeoutMs?: number;
  maxRedirects?: number;
}

/**
 * GETs a reference image. The address check runs inside the socket's DNS lookup, so the
 * address checked is the address connected to (no rebinding window), on every redirect.
 */
export async function fetchReference(url: string, options: FetchReferenceOptions): Promise<Buffer> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let current = new URL(url);
  for (let hop = 0; hop <= (options.maxRedirects ?? 3); hop++) {
    if (current.protocol !== "http:" && current.protocol !== "https:") {
      throw new ShotlistError(
        "reference_url_forbidden",
        `only http(s) reference URLs are fetched: ${current.protocol}`,
        {
          status: 422,
        },
      );
    }
    // An IP literal never goes through DNS lookup, so it is checked here.
    const literal = current.hostname.replace(/^\[|\]$/g, "");
    if (isIP(literal) && isForbiddenAddress(literal) && !options.allowPrivateNetworks) {
      throw new ShotlistError(
        "reference_url_forbidden",
        `${literal} is a private or reserved address`,
        {
          status: 422,
        },
      );
    }
    const answer = await getOnce(current, options, deadline);
    if ("redirect" in answer) {
      current = new URL(answer.redirect, current);
      continue;
    }
    return answer.body;
  }
  throw new ShotlistError("reference_image_fetch_failed", `too many redirects fetching ${url}`, {
    status: 422,
  });
}

function getOnce(
  url: URL,
  options: FetchReferenceOptions,
  deadline: number,
): Promise<{ body: Buffer } | { redirect: string }> {
  return new Promise((resolvePromise, reject) => {
    const lookup = guardedLookup(
      options.allowPrivateNetworks,
      (hostname, address) =>
        new ShotlistError(
          "reference_url_forbidden",
          `${hostname} resolves to ${address}, a private or reserved address`,
          { status: 422 },
        ),
    );
    const client = url.protocol === "https:" ? https : http;
    const remainingMs = Math.max(1, deadline - Date.now());
    const request = client.get(url, { lookup, timeout: remainingMs }, (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        return resolvePromise({ redirect: response.headers.location });
      }
      if (status !== 200) {
        response.resume();
        return reject(
          new ShotlistError("reference_image_fetch_failed", `GET ${url.href} answered ${status}`, {
            status: 422,
            retryable: status >= 500 || status === 429,
          }),
        );
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > options.maxBytes) {
          request.destroy(
            new ShotlistError(
              "reference_image_too_large",
              `${url.href} is larger than ${options.maxBytes} bytes`,
              { status: 413 },
            ),
          );
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => resolvePromise({ body: Buffer.concat(chunks) }));
      response.on("error", reject);
    });
    request.on("timeout", () =>
      request.destroy(
        new ShotlistError("reference_image_fetch_failed", `GET ${url.href} timed out`, {
          status: 422,
          retryable: true,
        }),
      ),
    );
    request.on("error", (error) =>
      reject(
        error instanceof ShotlistError
          ? error
          : new ShotlistError(
              "reference_image_fetch_failed",
              `GET ${url.href} failed: ${error.message}`,
              {
                status: 422,
                retryable: true,
                cause: error,
              },
            ),
      ),
    );
  });
}
