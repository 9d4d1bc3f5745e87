import { type AdminApiClient, createAdminApiClient } from "@shopify/admin-api-client";
import { ShotlistError } from "../../domain/errors.js";

/** The Admin API version Shotlist speaks (a current stable one). */
export const SHOPIFY_API_VERSION = "2026-10";

export interface ShopifyTarget {
  /** `example.myshopify.com` */
  shop: string;
  accessToken: string;
  /** Replaces `https://<shop>` in every request (a fake in tests, or a proxy). */
  apiUrl: string | undefined;
}

interface ThrottleStatus {
  maximumAvailable: number;
  currentlyAvailable: number;
  restoreRate: number;
}

export interface ShopifyGraphql {
  /** Runs one operation; waits out throttling; throws ShotlistError on errors. */
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
}

export interface ShopifyGraphqlOptions {
  /** Longest Retry-After (ms) waited in-process; longer ones go back to the queue. */
  maxInlineWaitMs?: number;
  /** 429/THROTTLED answers waited out in-process per request before giving up to the queue. */
  maxInlineRetries?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** The official client, pointed at the shop (or at `apiUrl` through customFetchApi). */
export function createShopifyAdminClient(target: ShopifyTarget): AdminApiClient {
  const origin = `https://${target.shop.replace(/^https?:\/\//, "").replace(/\/+$/, "")}`;
  return createAdminApiClient({
    storeDomain: target.shop,
    apiVersion: SHOPIFY_API_VERSION,
    accessToken: target.accessToken,
    retries: 0,
    logger: () => {},
    customFetchApi: (url, init) => {
      const rewritten =
        target.apiUrl && url.startsWith(origin) ? target.apiUrl + url.slice(origin.length) : url;
      return fetch(rewritten, init as RequestInit);
    },
  });
}

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function retryAfterMs(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * A GraphQL caller that honours Shopify's rate limits: the calculated query cost bucket
 * (`extensions.cost.throttleStatus`: waits before a query when fewer points are available than
 * the last cost of that operation) and HTTP 429 `Retry-After` (waited in-process when short,
 * else a retryable ShotlistError whose `extra.retryAfterMs` the worker uses as its delay).
 */
export function createShopifyGraphql(
  client: AdminApiClient,
  options: ShopifyGraphqlOptions = {},
): ShopifyGraphql {
  const maxInlineWaitMs = options.maxInlineWaitMs ?? 10_000;
  const maxInlineRetries = options.maxInlineRetries ?? 5;
  const sleep = options.sleep ?? wait;
  let bucket: { status: ThrottleStatus; at: number } | undefined;
  const lastCost = new Map<string, number>();

  async function waitForPoints(cost: number): Promise<void> {
    if (!bucket) return;
    const { status, at } = bucket;
    const available = Math.min(
      status.maximumAvailable,
      status.currentlyAvailable + ((Date.now() - at) / 1000) * status.restoreRate,
    );
    if (available >= cost || status.restoreRate <= 0) return;
    await sleep(Math.ceil(((cost - available) / status.restoreRate) * 1000));
  }

  return {
    async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
      for (let attempt = 0; ; attempt++) {
        await waitForPoints(lastCost.get(query) ?? 10);
        const response = await client.request(query, { variables });
        const cost = response.extensions?.cost as
          | { requestedQueryCost?: number; throttleStatus?: ThrottleStatus }
          | undefined;
        if (cost?.throttleStatus) bucket = { status: cost.throttleStatus, at: Date.now() };
        if (typeof cost?.requestedQueryCost === "number") {
          lastCost.set(query, cost.requestedQueryCost);
        }
        const errors = response.errors;
        if (!errors) return response.data as T;
        const status = errors.networkStatusCode;
        const throttled =
          status === 429 ||
          (errors.graphQLErrors ?? []).some(
            (error) => (error.extensions as { code?: string } | undefined)?.code === "THROTTLED",
          );
        if (throttled) {
          const delay =
            retryAfterMs(errors.response?.headers.get("retry-after")) ?? (bucket ? 1000 : 2000);
          if (delay <= maxInlineWaitMs && attempt < maxInlineRetries) {
            await sleep(delay);
            continue;
          }
          throw new ShotlistError("shopify_error", "Shopify throttled the write-back", {
            retryable: true,
            status: 429,
            extra: { retryAfterMs: delay },
          });
        }
        const detail =
          (errors.graphQLErrors ?? []).map((error) => error.message).join("; ") ||
          errors.message ||
          "unknown error";
        const retryable = status === undefined || status >= 500;
        throw new ShotlistError(
          "shopify_error",
          `Shopify Admin API${status ? ` (HTTP ${status})` : ""}: ${detail}`,
          { retryable, status: 502 },
        );
      }
    },
  };
}
