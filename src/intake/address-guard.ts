import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { lookup as dnsLookupAll } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP } from "node:net";
import { ShotlistError } from "../domain/errors.js";

/**
 * Addresses an outside-supplied URL may never reach (SSRF, DESIGN §9): loopback, private,
 * link-local (incl. the 169.254.169.254 metadata service), CGNAT, multicast, reserved. Used by
 * reference-image fetches and outbound webhook deliveries.
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

type LookupCallback = (
  error: Error | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for node:http(s) requests that refuses forbidden addresses. The check runs inside
 * the socket's DNS lookup, so the address checked is the address connected to (no rebinding
 * window). IP literals never go through it: check those with `forbiddenHostAddress`.
 */
export function guardedLookup(
  allowPrivateNetworks: boolean,
  refuse: (hostname: string, address: string) => Error,
) {
  return (hostname: string, lookupOptions: object, callback: LookupCallback) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const list = addresses as LookupAddress[];
      const blocked = list.find((entry) => isForbiddenAddress(entry.address));
      if (blocked && !allowPrivateNetworks) return callback(refuse(hostname, blocked.address), []);
      const first = list[0];
      if (!first) return callback(new Error(`no address for ${hostname}`), []);
      if ((lookupOptions as { all?: boolean }).all) return callback(null, list);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * The forbidden address a URL's host is or resolves to, if any (for checks before any request,
 * e.g. when an endpoint is configured). Throws the resolver's error when the host does not
 * resolve.
 */
export async function forbiddenHostAddress(url: URL): Promise<string | undefined> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host)) return isForbiddenAddress(host) ? host : undefined;
  const addresses = await dnsLookupAll(host, { all: true });
  return addresses.find((entry) => isForbiddenAddress(entry.address))?.address;
}

export interface GuardedFetchOptions {
  /** Let the fetch reach loopback/private addresses (SHOTLIST_ALLOW_PRIVATE_NETWORKS; tests). */
  allowPrivateNetworks: boolean;
  /** Redirects followed, each one checked again; default 3. */
  maxRedirects?: number;
}

/**
 * A `fetch` for URLs an outside party names — a provider's output file URLs (Replicate's
 * replicate.delivery, fal's CDN): GET only, the address checked inside the socket's DNS lookup
 * (the address checked is the one connected to) and IP literals before any connection, on every
 * redirect. A forbidden address rejects with ShotlistError `output_url_forbidden`, which
 * adapters record as `bad_output`: the provider's answer points somewhere we never go.
 * Providers receive it as their `fetchOutput` option; they do not import this module.
 */
export function createGuardedFetch(options: GuardedFetchOptions): typeof fetch {
  const maxRedirects = options.maxRedirects ?? 3;
  const refuse = (detail: string) =>
    new ShotlistError("output_url_forbidden", detail, { status: 502 });
  const guarded = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const method = (
      init?.method ?? (input instanceof Request ? input.method : "GET")
    ).toUpperCase();
    if (method !== "GET") throw new TypeError(`guarded fetch sends GET only, not ${method}`);
    const signal = init?.signal ?? undefined;
    let current = new URL(input instanceof Request ? input.url : input);
    for (let hop = 0; hop <= maxRedirects; hop++) {
      if (current.protocol !== "http:" && current.protocol !== "https:") {
        throw refuse(`only http(s) URLs are fetched, not ${current.protocol}`);
      }
      const literal = current.hostname.replace(/^\[|\]$/g, "");
      if (isIP(literal) && isForbiddenAddress(literal) && !options.allowPrivateNetworks) {
        throw refuse(`${current.host} is a loopback, private or reserved address`);
      }
      const answer = await getOnce(current, options.allowPrivateNetworks, refuse, signal);
      const location = answer.headers.get("location");
      if (answer.status >= 300 && answer.status < 400 && location) {
        current = new URL(location, current);
        continue;
      }
      return answer;
    }
    throw refuse(`more than ${maxRedirects} redirects from ${String(input)}`);
  };
  return guarded as typeof fetch;
}

function getOnce(
  url: URL,
  allowPrivateNetworks: boolean,
  refuse: (detail: string) => Error,
  signal: AbortSignal | undefined,
): Promise<Response> {
  return new Promise((resolvePromise, reject) => {
    signal?.throwIfAborted();
    const lookup = guardedLookup(allowPrivateNetworks, (hostname, address) =>
      refuse(`${hostname} resolves to ${address}, a loopback, private or reserved address`),
    );
    const client = url.protocol === "https:" ? https : http;
    const request = client.get(url, { lookup, ...(signal ? { signal } : {}) }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (value === undefined) continue;
          for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
        }
        const status = response.statusCode ?? 502;
        const nullBody = status === 204 || status === 304;
        resolvePromise(
          new Response(nullBody ? null : Buffer.concat(chunks), {
            status,
            statusText: response.statusMessage ?? "",
            headers,
          }),
        );
      });
    });
    request.on("error", (error) => reject(signal?.aborted ? (signal.reason ?? error) : error));
  });
}
