import { createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A fake Shopify Admin GraphQL API (local HTTP) for the operations the write-back uses:
 * `product { media }`, `productUpdate(product, media)` and `fileDelete`. Shopify's shapes:
 * `X-Shopify-Access-Token` auth (401 without it), `{data, errors, extensions: {cost}}` with a
 * leaky bucket (THROTTLED when empty), 429 + Retry-After on demand, and media that go
 * UPLOADED → PROCESSING → READY over polls after the fake fetched `originalSource` (an
 * originalSource that does not serve an image ends FAILED, as on Shopify).
 *
 * Not a GraphQL engine: operations are recognised by their root field, and answers carry the
 * fields the write-back selects.
 */
export interface FakeMedia {
  id: string;
  alt: string | null;
  status: "UPLOADED" | "PROCESSING" | "READY" | "FAILED";
  mediaContentType: "IMAGE";
  originalSource: string | null;
  /** Polls (product reads) seen since creation; drives the status. */
  polls: number;
  fetched: "pending" | "image" | "not_image";
  /** Ends FAILED whatever its source (failNextMedia). */
  failing?: boolean;
}

export interface FakeShopify {
  url: string;
  shop: string;
  accessToken: string;
  products: Map<string, { id: string; title: string; media: FakeMedia[] }>;
  /** Every GraphQL operation received, by root field, in order. */
  operations: string[];
  /** Count of 429 answers sent. */
  throttled429: number;
  createProduct(numericId: number, title: string): string;
  /** Media a merchant uploaded in the admin (no Shotlist record). */
  addMerchantMedia(productGid: string, alt: string): FakeMedia;
  /** The next `count` media attached end FAILED, as when Shopify cannot process an image. */
  failNextMedia(count: number): void;
  /** Count of 200 THROTTLED answers (the bucket was empty). */
  throttledGraphql: number;
  /** The next `count` requests answer 429 with `Retry-After: retryAfterSeconds`. */
  fail429(count: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

export interface FakeShopifyOptions {
  shop?: string;
  accessToken?: string;
  maximumAvailable?: number;
  restoreRate?: number;
}

let nextId = 30_000_000_000;

export async function startFakeShopify(options: FakeShopifyOptions = {}): Promise<FakeShopify> {
  const shop = options.shop ?? "shotlist-test.myshopify.com";
  const accessToken = options.accessToken ?? `shpat_${randomUUID().replaceAll("-", "")}`;
  const maximumAvailable = options.maximumAvailable ?? 2000;
  const restoreRate = options.restoreRate ?? 100;
  let available = maximumAvailable;
  let lastLeak = Date.now();
  let pending429 = { count: 0, retryAfter: 1 };
  const products: FakeShopify["products"] = new Map();
  const operations: string[] = [];
  const state = { throttled429: 0, throttledGraphql: 0, failNext: 0 };

  const leak = () => {
    const now = Date.now();
    available = Math.min(maximumAvailable, available + ((now - lastLeak) / 1000) * restoreRate);
    lastLeak = now;
  };

  function fetchSource(media: FakeMedia): void {
    if (!media.originalSource) return;
    fetch(media.originalSource)
      .then(async (response) => {
        const type = response.headers.get("content-type") ?? "";
        const bytes = Buffer.from(await response.arrayBuffer());
        media.fetched =
          response.ok && type.startsWith("image/") && bytes.length > 0 ? "image" : "not_image";
      })
      .catch(() => {
        media.fetched = "not_image";
      });
  }

  function advance(media: FakeMedia): void {
    if (media.status === "READY" || media.status === "FAILED") return;
    media.polls++;
    if (media.fetched === "not_image" || media.failing) media.status = "FAILED";
    else if (media.fetched === "pending") media.status = "PROCESSING";
    else media.status = media.polls >= 2 ? "READY" : "PROCESSING";
  }

  const mediaNode = (media: FakeMedia) => ({
    id: media.id,
    alt: media.alt,
    status: media.status,
    mediaContentType: media.mediaContentType,
  });

  function execute(
    query: string,
    variables: Record<string, unknown>,
  ): { cost: number; data?: unknown; errors?: unknown[] } {
    if (/\bproductUpdate\s*\(/.test(query)) {
      operations.push("productUpdate");
      const input = variables.product as { id?: string } | undefined;
      const product = input?.id ? products.get(input.id) : undefined;
      if (!product) {
        return {
          cost: 10,
          data: {
            productUpdate: {
              product: null,
              userErrors: [{ field: ["id"], message: "Product does not exist" }],
            },
          },
        };
      }
      const requested = (variables.media ?? []) as {
        originalSource?: string;
        alt?: string;
        mediaContentType?: string;
      }[];
      const userErrors: { field: string[]; message: string }[] = [];
      for (const [index, item] of requested.entries()) {
        if (!item.originalSource || item.mediaContentType !== "IMAGE") {
          userErrors.push({
            field: ["media", String(index), "originalSource"],
            message: "Image URL is invalid",
          });
        }
      }
      if (userErrors.length === 0) {
        for (const item of requested) {
          const media: FakeMedia = {
            id: `gid://shopify/MediaImage/${nextId++}`,
            alt: item.alt ?? null,
            status: "UPLOADED",
            mediaContentType: "IMAGE",
            originalSource: item.originalSource ?? null,
            polls: 0,
            fetched: "pending",
            failing: state.failNext > 0,
          };
          if (state.failNext > 0) state.failNext--;
          product.media.push(media);
          fetchSource(media);
        }
      }
      return {
        cost: 10,
        data: {
          productUpdate: {
            product: { id: product.id, media: { nodes: product.media.map(mediaNode) } },
            userErrors,
          },
        },
      };
    }
    if (/\bfileDelete\s*\(/.test(query)) {
      operations.push("fileDelete");
      const ids = (variables.fileIds ?? []) as string[];
      const deleted: string[] = [];
      for (const product of products.values()) {
        const before = product.media.length;
        product.media = product.media.filter((media) => !ids.includes(media.id));
        if (product.media.length !== before) {
          deleted.push(...ids.filter((id) => !product.media.some((media) => media.id === id)));
        }
      }
      const missing = ids.filter((id) => !deleted.includes(id));
      return {
        cost: 10,
        data: {
          fileDelete: {
            deletedFileIds: deleted,
            userErrors: missing.map((id) => ({
              field: ["fileIds"],
              message: `File id ${id} does not exist.`,
              code: "FILE_DOES_NOT_EXIST",
            })),
          },
        },
      };
    }
    if (/\bproduct\s*\(/.test(query)) {
      operations.push("product");
      const product = products.get(String(variables.id));
      if (product) for (const media of product.media) advance(media);
      return {
        cost: 4,
        data: {
          product: product
            ? { id: product.id, media: { nodes: product.media.map(mediaNode) } }
            : null,
        },
      };
    }
    operations.push("unknown");
    return {
      cost: 1,
      errors: [
        {
          message: "Field doesn't exist on type 'QueryRoot'",
          extensions: { code: "undefinedField" },
        },
      ],
    };
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response
        .writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers })
        .end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (
      request.method !== "POST" ||
      !/^\/admin\/api\/[^/]+\/graphql\.json$/.test(request.url ?? "")
    ) {
      json(404, { errors: "Not Found" });
      return;
    }
    if (request.headers["x-shopify-access-token"] !== accessToken) {
      json(401, {
        errors: "[API] Invalid API key or access token (unrecognized login or wrong password)",
      });
      return;
    }
    if (pending429.count > 0) {
      pending429.count--;
      state.throttled429++;
      json(
        429,
        {
          errors:
            "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
        },
        { "retry-after": String(pending429.retryAfter) },
      );
      return;
    }
    let body: { query?: string; variables?: Record<string, unknown> };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      json(400, { errors: { query: "Required parameter missing or invalid" } });
      return;
    }
    const query = body.query ?? "";
    const cost = /\b(productUpdate|fileDelete)\s*\(/.test(query)
      ? 10
      : /\bproduct\s*\(/.test(query)
        ? 4
        : 1;
    leak();
    const throttleStatus = () => ({
      maximumAvailable,
      currentlyAvailable: Math.floor(available),
      restoreRate,
    });
    if (available < cost) {
      state.throttledGraphql++;
      // Shopify answers 200 with a THROTTLED error, runs nothing and charges nothing.
      json(200, {
        errors: [
          {
            message: "Throttled",
            extensions: {
              code: "THROTTLED",
              documentation: "https://shopify.dev/api/usage/limits",
            },
          },
        ],
        extensions: {
          cost: {
            requestedQueryCost: cost,
            actualQueryCost: null,
            throttleStatus: throttleStatus(),
          },
        },
      });
      return;
    }
    const result = execute(query, body.variables ?? {});
    available -= result.cost;
    json(200, {
      ...(result.data === undefined ? {} : { data: result.data }),
      ...(result.errors ? { errors: result.errors } : {}),
      extensions: {
        cost: {
          requestedQueryCost: result.cost,
          actualQueryCost: result.cost,
          throttleStatus: throttleStatus(),
        },
      },
    });
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    shop,
    accessToken,
    products,
    operations,
    get throttled429() {
      return state.throttled429;
    },
    get throttledGraphql() {
      return state.throttledGraphql;
    },
    failNextMedia(count) {
      state.failNext = count;
    },
    createProduct(numericId, title) {
      const id = `gid://shopify/Product/${numericId}`;
      products.set(id, { id, title, media: [] });
      return id;
    },
    addMerchantMedia(productGid, alt) {
      const product = products.get(productGid);
      if (!product) throw new Error(`no product ${productGid}`);
      const media: FakeMedia = {
        id: `gid://shopify/MediaImage/${nextId++}`,
        alt,
        status: "READY",
        mediaContentType: "IMAGE",
        originalSource: null,
        polls: 0,
        fetched: "image",
      };
      product.media.push(media);
      return media;
    },
    fail429(count, retryAfterSeconds) {
      pending429 = { count, retryAfter: retryAfterSeconds };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Sends a signed webhook to Shotlist exactly as Shopify does: the raw JSON body signed with
 * the app secret (base64 HMAC-SHA256 in X-Shopify-Hmac-Sha256), and Shopify's delivery headers.
 */
export async function sendShopifyWebhook(options: {
  url: string;
  secret: string;
  shop: string;
  topic: string;
  payload: unknown;
  apiVersion?: string;
  eventId?: string;
}): Promise<Response> {
  const raw = JSON.stringify(options.payload);
  return fetch(options.url, {
    method: "POST",
    body: raw,
    headers: {
      "content-type": "application/json",
      "x-shopify-topic": options.topic,
      "x-shopify-hmac-sha256": createHmac("sha256", options.secret).update(raw).digest("base64"),
      "x-shopify-shop-domain": options.shop,
      "x-shopify-api-version": options.apiVersion ?? "2026-10",
      "x-shopify-webhook-id": randomUUID(),
      "x-shopify-event-id": options.eventId ?? randomUUID(),
      "x-shopify-triggered-at": new Date().toISOString(),
    },
  });
}
