import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP } from "node:net";
import { ShotlistError } from "../domain/errors.js";

/**
 * Addresses a reference-image URL may never reach (SSRF, DESIGN §9): loopback, private,
 * link-local (incl. the 169.254.169.254 metadata service), CGNAT, multicast, reserved.
 */
const FORBIDDEN = new BlockList();
for (const [prefix, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  FORBIDDEN.addSubnet(prefix, bits, "ipv4");
}
for (const [prefix, bits] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  FORBIDDEN.addSubnet(prefix, bits, "ipv6");
}

export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return FORBIDDEN.check(address, "ipv4");
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return FORBIDDEN.check(mapped[1], "ipv4");
    return FORBIDDEN.check(address, "ipv6");
  }
  return true;
}

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
    const guardedLookup = (
      hostname: string,
      lookupOptions: object,
      callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
    ) => {
      dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
        if (error) return callback(error, []);
        const list = addresses as LookupAddress[];
        const blocked = list.find((entry) => isForbiddenAddress(entry.address));
        if (blocked && !options.allowPrivateNetworks) {
          return callback(
            new ShotlistError(
              "reference_url_forbidden",
              `${hostname} resolves to ${blocked.address}, a private or reserved address`,
              { status: 422 },
            ),
            [],
          );
        }
        const first = list[0];
        if (!first) return callback(new Error(`no address for ${hostname}`), []);
        if ((lookupOptions as { all?: boolean }).all) return callback(null, list);
        callback(null, first.address, first.family);
      });
    };
    const client = url.protocol === "https:" ? https : http;
    const remainingMs = Math.max(1, deadline - Date.now());
    const request = client.get(url, { lookup: guardedLookup, timeout: remainingMs }, (response) => {
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
