import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { lookup as dnsLookupAll } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

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
