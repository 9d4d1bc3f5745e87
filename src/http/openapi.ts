import { readFileSync } from "node:fs";
import { z } from "zod";
import { RENDITION_PRESETS } from "../domain/rendition.js";
import {
  WEBHOOK_EVENTS,
  type WebhookEventType,
  webhookEventSchemaOf,
} from "../domain/webhook-events.js";
import { productInputSchema } from "../intake/schema.js";
import type { Scope } from "../store/api-keys.js";
import { WEBHOOK_BODY_LIMIT_BYTES } from "./routes/webhooks.js";
import {
  apiKeyListSchema,
  approveReviewSchema,
  assetSchema,
  catalogueCoverageSchema,
  costReportSchema,
  costsQuerySchema,
  createdApiKeySchema,
  createdWebhookEndpointSchema,
  createKeySchema,
  createWebhookEndpointSchema,
  deliveryIdParamsSchema,
  deliveryListQuerySchema,
  healthSchema,
  idParamsSchema,
  jobDetailSchema,
  jobListQuerySchema,
  jobListSchema,
  problemSchema,
  productAcceptedSchema,
  productBatchResultSchema,
  productBatchSchema,
  productListQuerySchema,
  productListSchema,
  productSchema,
  providerWebhookAnswerSchema,
  readySchema,
  redeliveryAnswerSchema,
  regenerateReportSchema,
  regenerateRequestSchema,
  rejectReviewSchema,
  renditionQuerySchema,
  reviewDecisionAnswerSchema,
  reviewItemListSchema,
  reviewItemSchema,
  reviewListQuerySchema,
  skuParamsSchema,
  webhookAnswerSchema,
  webhookDeliveryListSchema,
  webhookDeliverySchema,
  webhookEndpointListSchema,
  webhookEndpointSchema,
} from "./schemas.js";

/** A JSON Schema (2020-12, the OpenAPI 3.1 dialect) or an OpenAPI object, as plain JSON. */
export type JsonObject = Record<string, unknown>;

const PACKAGE = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
) as { name: string; version: string; description: string };

const PROBLEM_MEDIA_TYPE = "application/problem+json";
const SECURITY_SCHEME = "apiKey";

/** `asset.published` → `AssetPublishedEvent`: the component of an event's payload. */
function eventComponentName(type: WebhookEventType): string {
  const words = type.split(/[._]/).map((word) => word[0]?.toUpperCase() + word.slice(1));
  return `${words.join("")}Event`;
}

/**
 * Named schemas of the document: request bodies as the client sends them (`io: "input"`:
 * defaults optional, before transforms), responses as the server writes them.
 */
const COMPONENTS: Record<string, { schema: z.ZodType; io: "input" | "output" }> = {
  Problem: { schema: problemSchema, io: "output" },
  ProductInput: { schema: productInputSchema, io: "input" },
  ProductBatch: { schema: productBatchSchema(productInputSchema), io: "input" },
  ProductAccepted: { schema: productAcceptedSchema, io: "output" },
  ProductBatchResult: { schema: productBatchResultSchema, io: "output" },
  ProductList: { schema: productListSchema, io: "output" },
  Product: { schema: productSchema, io: "output" },
  JobList: { schema: jobListSchema, io: "output" },
  JobDetail: { schema: jobDetailSchema, io: "output" },
  CatalogueCoverage: { schema: catalogueCoverageSchema, io: "output" },
  CostReport: { schema: costReportSchema, io: "output" },
  Asset: { schema: assetSchema, io: "output" },
  Regenerate: { schema: regenerateRequestSchema, io: "input" },
  RegenerateReport: { schema: regenerateReportSchema, io: "output" },
  CreateApiKey: { schema: createKeySchema, io: "input" },
  ApiKeyList: { schema: apiKeyListSchema, io: "output" },
  CreatedApiKey: { schema: createdApiKeySchema, io: "output" },
  Health: { schema: healthSchema, io: "output" },
  Ready: { schema: readySchema, io: "output" },
  WebhookAnswer: { schema: webhookAnswerSchema, io: "output" },
  ProviderWebhookAnswer: { schema: providerWebhookAnswerSchema, io: "output" },
  CreateWebhookEndpoint: { schema: createWebhookEndpointSchema, io: "input" },
  WebhookEndpoint: { schema: webhookEndpointSchema, io: "output" },
  CreatedWebhookEndpoint: { schema: createdWebhookEndpointSchema, io: "output" },
  WebhookEndpointList: { schema: webhookEndpointListSchema, io: "output" },
  WebhookDelivery: { schema: webhookDeliverySchema, io: "output" },
  WebhookDeliveryList: { schema: webhookDeliveryListSchema, io: "output" },
  Redelivery: { schema: redeliveryAnswerSchema, io: "output" },
  ReviewItemList: { schema: reviewItemListSchema, io: "output" },
  ReviewItem: { schema: reviewItemSchema, io: "output" },
  ApproveReview: { schema: approveReviewSchema, io: "input" },
  RejectReview: { schema: rejectReviewSchema, io: "input" },
  ReviewDecisionAnswer: { schema: reviewDecisionAnswerSchema, io: "output" },
  ...Object.fromEntries(
    WEBHOOK_EVENTS.map((type) => [
      eventComponentName(type),
      { schema: webhookEventSchemaOf(type), io: "output" as const },
    ]),
  ),
};
type ComponentName = keyof typeof COMPONENTS;

/** One answer of an operation: a JSON component, or bytes of the given media types. */
interface AnswerSpec {
  description: string;
  json?: ComponentName;
  /** Non-JSON bodies: media type → JSON Schema of the body. */
  content?: Record<string, JsonObject>;
  headers?: Record<string, { description: string; schema?: JsonObject }>;
}

interface HeaderParam {
  name: string;
  description: string;
  required?: boolean;
}

/** One route as the document shows it; `path` in OpenAPI form (`{sku}`, not `:sku`). */
interface OperationSpec {
  method: "get" | "post" | "delete";
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  /** Scope the API key needs (every /v1 route); absent = open, no key. */
  scope?: Scope;
  params?: z.ZodObject;
  query?: z.ZodObject;
  headers?: HeaderParam[];
  body?: {
    components: ComponentName[];
    description?: string;
    mediaType?: string;
    /** Non-JSON bodies: media type → JSON Schema (instead of components). */
    content?: Record<string, JsonObject>;
    /** Default true. */
    required?: boolean;
  };
  answers: Record<number, AnswerSpec>;
  /** Problem answers: status → when. 401/403 are added for every scoped route. */
  problems?: Record<number, string>;
}

const IDEMPOTENT_REPLAYED = {
  "Idempotent-Replayed": {
    description: "`true` when this is the stored answer of an earlier request with the same key",
    schema: { type: "string", enum: ["true"] },
  },
};
const IMMUTABLE_HEADERS = {
  ETag: { description: 'strong: `"<sha256>"`' },
  "Cache-Control": { description: "`public, max-age=31536000, immutable`" },
};
const IMAGE_TYPES = ["image/avif", "image/webp", "image/jpeg", "image/png"];
const binary = { type: "string", contentMediaType: "application/octet-stream" };
const imageContent = Object.fromEntries(IMAGE_TYPES.map((type) => [type, binary]));
const IF_NONE_MATCH: HeaderParam = {
  name: "If-None-Match",
  description: "an ETag from an earlier answer; 304 when it still matches",
};
const ON_DEMAND_HEADERS = {
  ETag: { description: "strong: the asset's or rendition's hash" },
  "Last-Modified": { description: "when the asset was made" },
  "Cache-Control": {
    description:
      "current asset: `public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400`; fallback: `public, max-age=10`",
  },
  "Shotlist-Fallback": {
    description: "`older`, `hero` or `placeholder` when the slot's own image is not ready",
    schema: { type: "string", enum: ["older", "hero", "placeholder"] },
  },
  Vary: { description: "`Accept` when the format was negotiated" },
};
const ON_DEMAND_REQUEST_HEADERS: HeaderParam[] = [
  IF_NONE_MATCH,
  { name: "Accept", description: "picks AVIF, WebP or JPEG when `format` is `auto`" },
];
const ON_DEMAND_ANSWERS: Record<number, AnswerSpec> = {
  200: { description: "the image", content: imageContent, headers: ON_DEMAND_HEADERS },
  304: { description: "not modified", headers: ON_DEMAND_HEADERS },
};
const onDemandQuery = renditionQuerySchema;
const PRESETS = Object.keys(RENDITION_PRESETS);

const slotParams = z.object({
  sku: skuParamsSchema.shape.sku,
  slot: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,63}$/)
    .meta({ description: "a slot of the product's shot list, e.g. hero" }),
});

const STANDARD_WEBHOOK_HEADERS: HeaderParam[] = [
  {
    name: "webhook-id",
    description:
      "`msg_…`: the delivery id, the same on every retry and redelivery; deduplicate on it",
    required: true,
  },
  { name: "webhook-timestamp", description: "Unix seconds of this attempt", required: true },
  {
    name: "webhook-signature",
    description:
      '`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the endpoint\'s `whsec_` secret',
    required: true,
  },
];

const STANDARD_WEBHOOKS_DELIVERY = `Events are sent per Standard Webhooks (https://www.standardwebhooks.com/): a POST of \`application/json\` with the body \`{"type": "<event>", "timestamp": "<ISO 8601>", "data": {…}}\` and the headers ${STANDARD_WEBHOOK_HEADERS.map((header) => `\`${header.name}\` (${header.description})`).join(", ")}. Verify with the \`standardwebhooks\` library and the secret of this answer; timestamps older than 5 minutes are refused there. Events: ${WEBHOOK_EVENTS.map((event) => `\`${event}\``).join(", ")} (their payloads are the document's \`webhooks\`). Answer 2xx within 10 s; anything else (a timeout, a refused connection, a redirect) is retried for at least 24 h (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, full jitter); 410 Gone disables the endpoint. The URL must be http(s), and a host that is or resolves to a loopback, private, link-local or metadata address is refused, here and again at every delivery.`;

/** What each event means: the summary of its entry in the document's `webhooks`. */
const EVENT_SUMMARIES: Record<WebhookEventType, string> = {
  "asset.published": "A render published an asset on a product slot",
  "asset.needs_review": "A slot went to the review queue",
  "product.complete":
    "Every required slot of a product is published (once per incomplete → complete transition)",
  "job.failed": "A job gave up (needs_review); never sent for webhook deliveries themselves",
};

/** Every route the app registers (the OpenAPI test holds this list against Fastify's). */
const OPERATIONS: OperationSpec[] = [
  {
    method: "post",
    path: "/v1/products",
    operationId: "submitProducts",
    tag: "products",
    summary: "Submit one product, or a batch of up to 1,000",
    description:
      "Plans the product's shot list and queues its renders. A batch (`{products: [...]}`) takes each product on its own and answers 207 with one result per product.",
    scope: "write",
    headers: [
      {
        name: "Idempotency-Key",
        description:
          "1–255 visible ASCII characters (bare or a quoted sf-string). The first 2xx answer is stored for 24 h and replayed to a retry with the same key; same key, other body → 422; while the first runs → 409. Scoped to the API key.",
      },
    ],
    body: { components: ["ProductInput", "ProductBatch"] },
    answers: {
      200: {
        description: "known product (unchanged or updated)",
        json: "ProductAccepted",
        headers: IDEMPOTENT_REPLAYED,
      },
      201: { description: "new product", json: "ProductAccepted", headers: IDEMPOTENT_REPLAYED },
      207: {
        description: "a batch: a result per product",
        json: "ProductBatchResult",
        headers: IDEMPOTENT_REPLAYED,
      },
    },
    problems: {
      400: "invalid JSON (`invalid_json`), Idempotency-Key (`idempotency_key_invalid`) or product SKU (`invalid_sku`; a bad variant SKU is a 422)",
      409: "a request with this Idempotency-Key is still running (`idempotency_key_in_use`)",
      413: "body over 64 MiB (`payload_too_large`)",
      415: "body not application/json",
      422: "a product the intake refuses (`invalid_request`, `invalid_sku`, `unknown_category`, `reference_image_*`) or an Idempotency-Key reused with another body (`idempotency_key_reused`)",
    },
  },
  {
    method: "get",
    path: "/v1/products",
    operationId: "listProducts",
    tag: "products",
    summary: "List products with their coverage (keyset-paginated by SKU)",
    scope: "read",
    query: productListQuerySchema,
    answers: { 200: { description: "a page of products", json: "ProductList" } },
    problems: { 400: "bad coverage, cursor or limit (`invalid_request`)" },
  },
  {
    method: "get",
    path: "/v1/products/{sku}",
    operationId: "getProduct",
    tag: "products",
    summary: "One product: slots, assets, references, variants, coverage",
    scope: "read",
    params: skuParamsSchema,
    answers: { 200: { description: "the product", json: "Product" } },
    problems: { 400: "bad SKU (`invalid_sku`)", 404: "no such product (`not_found`)" },
  },
  {
    method: "get",
    path: "/v1/jobs",
    operationId: "listJobs",
    tag: "jobs",
    summary: "List jobs (paginated by id)",
    scope: "read",
    query: jobListQuerySchema,
    answers: { 200: { description: "a page of jobs", json: "JobList" } },
    problems: { 400: "bad state, cursor or limit (`invalid_request`)" },
  },
  {
    method: "get",
    path: "/v1/jobs/{id}",
    operationId: "getJob",
    tag: "jobs",
    summary: "One job with its attempt log",
    scope: "read",
    params: idParamsSchema("job"),
    answers: { 200: { description: "the job", json: "JobDetail" } },
    problems: { 400: "id not a positive integer", 404: "no such job (`not_found`)" },
  },
  {
    method: "get",
    path: "/v1/costs",
    operationId: "getCosts",
    tag: "costs",
    summary: "Paid-provider spend by provider and model, in-doubt calls apart",
    description:
      "From the provider-call ledger: every paid call is recorded before it is made. `spentMicros` is what succeeded calls cost; `inDoubtMicros` is the estimate of calls whose outcome is unknown (a worker died or a call timed out), counted as spent so the report never under-counts.",
    scope: "read",
    query: costsQuerySchema,
    answers: { 200: { description: "the spend report", json: "CostReport" } },
    problems: { 400: "bad `since` (`invalid_request`)" },
  },
  {
    method: "get",
    path: "/v1/coverage",
    operationId: "getCoverage",
    tag: "coverage",
    summary: "Catalogue coverage: totals, by slot, by state",
    scope: "read",
    answers: { 200: { description: "catalogue coverage", json: "CatalogueCoverage" } },
  },
  {
    method: "post",
    path: "/v1/products/{sku}/regenerate",
    operationId: "regenerateProduct",
    tag: "products",
    summary: "Regenerate a product's out-of-date assets (after a model or shot-list change)",
    description:
      "Plans the product again with the current shot list and model versions and selects its published assets (optionally only one slot, provider or model) whose recipe changed. `dryRun: true` lists them with the estimated cost and spends nothing. Otherwise the new recipes are enqueued; the old assets stay published until the new ones pass their checks, then become `superseded`. The same as `shotlist regenerate --where sku=…`.",
    scope: "write",
    params: skuParamsSchema,
    body: { components: ["Regenerate"], required: false },
    answers: {
      200: { description: "the affected assets, their count and cost", json: "RegenerateReport" },
    },
    problems: {
      400: "invalid JSON (`invalid_json`), SKU (`invalid_sku`) or a bad body (`invalid_request`: unknown field, dryRun not a boolean)",
      404: "no such product (`not_found`)",
      415: "body not application/json",
      422: "a slot the product does not have (`unknown_slot`)",
    },
  },
  {
    method: "get",
    path: "/v1/assets/{id}",
    operationId: "getAsset",
    tag: "assets",
    summary: "One asset with its full recipe (provenance) and check results",
    scope: "read",
    params: idParamsSchema("asset"),
    answers: { 200: { description: "the asset", json: "Asset" } },
    problems: { 400: "id not a positive integer", 404: "no such asset (`not_found`)" },
  },
  {
    method: "get",
    path: "/v1/review",
    operationId: "listReviewItems",
    tag: "review",
    summary: "The review queue: slots whose fallback chain ended with a human, oldest first",
    description:
      "One item per product slot in needs_review, with its reason, every attempt of its render jobs with their reasons, the rejected candidates (with their failed checks) and what an image for the slot must be. Items rejected without a requeue stay listed (status `rejected`): the slot still has no image.",
    scope: "read",
    query: reviewListQuerySchema,
    answers: { 200: { description: "a page of review items", json: "ReviewItemList" } },
    problems: { 400: "bad filter, cursor or limit (`invalid_request`)" },
  },
  {
    method: "get",
    path: "/v1/review/{id}",
    operationId: "getReviewItem",
    tag: "review",
    summary: "One review item, open or settled, with its decisions (the audit trail)",
    scope: "read",
    params: idParamsSchema("review item"),
    answers: { 200: { description: "the review item", json: "ReviewItem" } },
    problems: { 400: "id not a positive integer", 404: "no such review item (`not_found`)" },
  },
  {
    method: "post",
    path: "/v1/review/{id}/approve",
    operationId: "approveReviewItem",
    tag: "review",
    summary: "Publish a rejected candidate (default the newest) despite its failed checks",
    description:
      "A human decision, recorded with the API key that made it; the publish sends `asset.published` (and `product.complete`) and the Shopify write-back like a render's. The body may be omitted.",
    scope: "write",
    body: { components: ["ApproveReview"], required: false },
    answers: { 200: { description: "approved and published", json: "ReviewDecisionAnswer" } },
    problems: {
      400: "invalid JSON (`invalid_json`) or a bad body (`invalid_request`: unknown field, bad assetId)",
      404: "no such review item (`not_found`)",
      409: "the item is already settled or was rejected (`review_item_resolved`)",
      415: "body not application/json",
      422: "the asset is not a candidate of this item, or there is none (`review_candidate_unknown`)",
    },
  },
  {
    method: "post",
    path: "/v1/review/{id}/reject",
    operationId: "rejectReviewItem",
    tag: "review",
    summary: "Refuse the candidates, with a reason; optionally render again from another provider",
    description:
      "Without `requeue` the slot stays in review and the item is `rejected` (still listed; it can still be requeued or get an upload). With `requeue` a new render job runs the slot's chain from the first link of that provider (and model) and the slot returns to pending; if that fails too, a new item opens.",
    scope: "write",
    body: { components: ["RejectReview"] },
    answers: { 200: { description: "rejected (and requeued)", json: "ReviewDecisionAnswer" } },
    problems: {
      400: "invalid JSON (`invalid_json`) or a bad body (`invalid_request`: no reason, unknown field)",
      404: "no such review item (`not_found`)",
      409: "the item is already settled, or already rejected (`review_item_resolved`)",
      415: "body not application/json",
      422: "the provider is not registered or not in the slot's chain (`requeue_not_allowed`)",
    },
  },
  {
    method: "post",
    path: "/v1/review/{id}/image",
    operationId: "uploadReviewImage",
    tag: "review",
    summary: "Upload a human-made image for the slot; it must pass the slot's checks",
    description:
      "The raw image as the body (`image/jpeg`, `image/png` or `image/webp`, up to SHOTLIST_MAX_IMAGE_BYTES), decoded under SHOTLIST_MAX_PIXELS, held to the slot's own checks (size and format of `expected.output` included), stored content-addressed and published with `madeBy: human`. A refused image is not kept.",
    scope: "write",
    body: {
      components: [],
      content: Object.fromEntries(
        ["image/jpeg", "image/png", "image/webp"].map((type) => [type, binary]),
      ),
    },
    answers: {
      201: {
        description: "published",
        json: "ReviewDecisionAnswer",
        headers: { Location: { description: "`/v1/assets/{id}` of the new asset" } },
      },
    },
    problems: {
      400: "an empty body or one that does not decode (`image_undecodable`)",
      404: "no such review item (`not_found`)",
      409: "the item is already settled (`review_item_resolved`)",
      413: "body over SHOTLIST_MAX_IMAGE_BYTES (`payload_too_large`) or more pixels than SHOTLIST_MAX_PIXELS (`image_too_large`)",
      415: "not a JPEG, PNG or WebP, or not the type its Content-Type says (`unsupported_media_type`)",
      422: "the image fails the slot's checks (`check_failed`, with `failedChecks`); nothing is published or kept",
    },
  },
  {
    method: "get",
    path: "/v1/keys",
    operationId: "listApiKeys",
    tag: "keys",
    summary: "List API keys (never the key itself)",
    scope: "admin",
    answers: { 200: { description: "every key, revoked ones too", json: "ApiKeyList" } },
  },
  {
    method: "post",
    path: "/v1/keys",
    operationId: "createApiKey",
    tag: "keys",
    summary: "Make an API key; the key is in this answer only",
    scope: "admin",
    body: { components: ["CreateApiKey"] },
    answers: {
      201: {
        description: "the new key (`Cache-Control: no-store`)",
        json: "CreatedApiKey",
        headers: { "Cache-Control": { description: "`no-store`" } },
      },
    },
    problems: {
      400: "invalid JSON (`invalid_json`)",
      413: "body over 1 MiB (`payload_too_large`)",
      415: "body not application/json",
      422: "bad name or scopes (`invalid_request`)",
    },
  },
  {
    method: "delete",
    path: "/v1/keys/{id}",
    operationId: "revokeApiKey",
    tag: "keys",
    summary: "Revoke an API key; it stops working at once",
    scope: "admin",
    params: idParamsSchema("key"),
    answers: { 204: { description: "revoked" } },
    problems: { 400: "id not a positive integer", 404: "no such key (`not_found`)" },
  },
  {
    method: "post",
    path: "/v1/webhook-endpoints",
    operationId: "createWebhookEndpoint",
    tag: "outbound-webhooks",
    summary: "Add an outbound webhook endpoint; its signing secret is in this answer only",
    description: STANDARD_WEBHOOKS_DELIVERY,
    scope: "admin",
    body: { components: ["CreateWebhookEndpoint"] },
    answers: {
      201: {
        description: "the new endpoint with its `whsec_` secret (`Cache-Control: no-store`)",
        json: "CreatedWebhookEndpoint",
        headers: { "Cache-Control": { description: "`no-store`" } },
      },
    },
    problems: {
      400: "invalid JSON (`invalid_json`), a bad body (`invalid_request`: unknown field, no url, no events), an unknown event (`unknown_event`), a URL that is not absolute http(s) or does not resolve (`invalid_webhook_url`), or a host that is or resolves to a private or reserved address (`webhook_url_forbidden`); nothing is written",
      413: "body over 1 MiB (`payload_too_large`)",
      415: "body not application/json",
    },
  },
  {
    method: "get",
    path: "/v1/webhook-endpoints",
    operationId: "listWebhookEndpoints",
    tag: "outbound-webhooks",
    summary: "List outbound webhook endpoints (never their secrets)",
    scope: "admin",
    answers: {
      200: {
        description: "every endpoint not deleted, disabled ones too",
        json: "WebhookEndpointList",
      },
    },
  },
  {
    method: "delete",
    path: "/v1/webhook-endpoints/{id}",
    operationId: "deleteWebhookEndpoint",
    tag: "outbound-webhooks",
    summary: "Delete an endpoint: its pending deliveries stop, its delivery log stays",
    scope: "admin",
    params: idParamsSchema("endpoint"),
    answers: { 204: { description: "deleted" } },
    problems: {
      400: "id not a positive integer (`invalid_request`)",
      404: "no such endpoint, or already deleted (`not_found`)",
    },
  },
  {
    method: "get",
    path: "/v1/webhooks/deliveries",
    operationId: "listWebhookDeliveries",
    tag: "outbound-webhooks",
    summary: "The delivery log, newest first, each delivery with every attempt",
    scope: "read",
    query: deliveryListQuerySchema,
    answers: { 200: { description: "a page of deliveries", json: "WebhookDeliveryList" } },
    problems: {
      400: "bad endpoint, status, cursor or limit (`invalid_request`), or an unknown event (`unknown_event`)",
    },
  },
  {
    method: "get",
    path: "/v1/webhooks/deliveries/{id}",
    operationId: "getWebhookDelivery",
    tag: "outbound-webhooks",
    summary: "One delivery with its payload and every attempt",
    scope: "read",
    params: deliveryIdParamsSchema,
    answers: { 200: { description: "the delivery", json: "WebhookDelivery" } },
    problems: { 404: "no such delivery (`not_found`)" },
  },
  {
    method: "post",
    path: "/v1/webhooks/deliveries/{id}/redeliver",
    operationId: "redeliverWebhook",
    tag: "outbound-webhooks",
    summary: "Send a delivery again now, with a fresh retry cycle and the same webhook-id",
    scope: "write",
    params: deliveryIdParamsSchema,
    answers: { 202: { description: "queued again", json: "Redelivery" } },
    problems: {
      404: "no such delivery (`not_found`)",
      409: "its endpoint is disabled or deleted (`webhook_endpoint_disabled`), or it is being attempted now (`webhook_delivery_in_progress`)",
    },
  },
  {
    method: "get",
    path: "/a/{name}",
    operationId: "getAssetBytes",
    tag: "images",
    summary: "Immutable content-addressed bytes",
    params: z.object({
      name: z
        .string()
        .regex(/^[0-9a-f]{64}\.(jpg|webp|avif|png)$/)
        .meta({ description: "`<sha256>.<jpg|webp|avif|png>`" }),
    }),
    headers: [IF_NONE_MATCH],
    answers: {
      200: { description: "the bytes", content: imageContent, headers: IMMUTABLE_HEADERS },
      304: { description: "not modified", headers: IMMUTABLE_HEADERS },
    },
    problems: { 404: "not an asset name, or no such asset (`not_found`)" },
  },
  {
    method: "get",
    path: "/i/{sku}/{slot}",
    operationId: "getSlotImage",
    tag: "images",
    summary: "On demand: a slot's current image, a signed rendition of it, or a fallback",
    description:
      "Without options: the current asset's bytes. Any option needs a signature `s`. A slot still rendering is waited for up to SHOTLIST_ONDEMAND_DEADLINE_MS, then the best fallback is served. HEAD answers the same headers.",
    params: slotParams,
    query: onDemandQuery,
    headers: ON_DEMAND_REQUEST_HEADERS,
    answers: ON_DEMAND_ANSWERS,
    problems: {
      400: "bad SKU, slot name or option (`invalid_sku`, `unknown_slot`, `invalid_rendition_option`)",
      403: "options without a valid signature (`signature_invalid`)",
      404: "no such product or slot (`not_found`)",
    },
  },
  {
    method: "get",
    path: "/i/{sku}/{slot}/{preset}",
    operationId: "getSlotImagePreset",
    tag: "images",
    summary: "On demand: a named rendition preset (no signature needed)",
    params: slotParams.extend({
      preset: z.enum(PRESETS as [string, ...string[]]).meta({
        description: "thumb (200×200 cover), pdp (800 inside), zoom (2000 inside)",
      }),
    }),
    query: onDemandQuery,
    headers: ON_DEMAND_REQUEST_HEADERS,
    answers: ON_DEMAND_ANSWERS,
    problems: {
      400: "bad SKU, slot, preset or option (`invalid_sku`, `unknown_slot`, `invalid_rendition_option`)",
      403: "extra options without a valid signature (`signature_invalid`)",
      404: "no such product or slot (`not_found`)",
    },
  },
  {
    method: "post",
    path: "/webhooks/shopify",
    operationId: "receiveShopifyWebhook",
    tag: "webhooks",
    summary: "Shopify products/create and products/update",
    description:
      "Verified on the raw body (HMAC-SHA256, base64, the app secret), deduplicated on X-Shopify-Event-Id (else X-Shopify-Webhook-Id), then queued. 200 means durably queued.",
    headers: [
      {
        name: "X-Shopify-Hmac-Sha256",
        description: "base64 HMAC-SHA256 of the body",
        required: true,
      },
      { name: "X-Shopify-Topic", description: "products/create or products/update; others → 202" },
      { name: "X-Shopify-Event-Id", description: "delivery id used to deduplicate" },
      { name: "X-Shopify-Webhook-Id", description: "used when X-Shopify-Event-Id is absent" },
    ],
    body: {
      components: [],
      description: "a Shopify product (REST webhook JSON)",
      mediaType: "application/json",
    },
    answers: {
      200: { description: "queued, or a duplicate delivery", json: "WebhookAnswer" },
      202: { description: "a topic Shotlist does not handle (ignored)", json: "WebhookAnswer" },
    },
    problems: {
      400: "invalid JSON or no delivery id",
      401: "missing or wrong signature (`invalid_signature`)",
      413: `body over ${WEBHOOK_BODY_LIMIT_BYTES / 1024 / 1024} MiB`,
      422: "a product the intake cannot take",
      503: "SHOTLIST_SHOPIFY_WEBHOOK_SECRET is not set (`webhook_not_configured`)",
    },
  },
  {
    method: "post",
    path: "/webhooks/intake",
    operationId: "receiveIntakeWebhook",
    tag: "webhooks",
    summary: "Any PIM/ERP: one product, signed per Standard Webhooks",
    description:
      "The body of POST /v1/products (one product; `{path}` references refused). Deduplicated on webhook-id; 5-minute timestamp tolerance.",
    headers: [
      { name: "webhook-id", description: "delivery id used to deduplicate", required: true },
      { name: "webhook-timestamp", description: "Unix seconds", required: true },
      {
        name: "webhook-signature",
        description: 'v1,<base64 HMAC-SHA256 of "id.timestamp.body">, space-separated list',
        required: true,
      },
    ],
    body: { components: ["ProductInput"] },
    answers: { 200: { description: "queued, or a duplicate delivery", json: "WebhookAnswer" } },
    problems: {
      400: "invalid JSON",
      401: "missing, wrong or expired signature (`invalid_signature`)",
      413: `body over ${WEBHOOK_BODY_LIMIT_BYTES / 1024 / 1024} MiB`,
      422: "a product the intake cannot take",
      503: "SHOTLIST_INTAKE_WEBHOOK_SECRET is not set (`webhook_not_configured`)",
    },
  },
  {
    method: "post",
    path: "/webhooks/providers/{name}",
    operationId: "receiveProviderWebhook",
    tag: "webhooks",
    summary: "An async provider's callback: a Replicate prediction or fal request finished",
    description:
      "No API key: the provider's signature is the auth (Replicate: Standard Webhooks under the account's signing secret; fal: Ed25519 by a key of its JWKS), checked on the raw body. Matched to its ledger row by the provider's id; the callback wakes the worker polling that call, whose poll records the outcome. Sent only when SHOTLIST_PUBLIC_URL is set.",
    params: z.object({
      name: z.string().meta({ description: "the provider's name in the shot list (`providers:`)" }),
    }),
    headers: [
      { name: "webhook-id", description: "Replicate: delivery id (replays share it)" },
      { name: "webhook-timestamp", description: "Replicate: Unix seconds (5-minute tolerance)" },
      {
        name: "webhook-signature",
        description: "Replicate: v1,<base64 HMAC-SHA256>, space-separated",
      },
      { name: "X-Fal-Webhook-Request-Id", description: "fal: the request id" },
      { name: "X-Fal-Webhook-User-Id", description: "fal: the account's user id" },
      { name: "X-Fal-Webhook-Timestamp", description: "fal: Unix seconds (5-minute tolerance)" },
      { name: "X-Fal-Webhook-Signature", description: "fal: hex Ed25519 signature" },
    ],
    body: {
      components: [],
      description:
        "the provider's own callback JSON (a Replicate prediction; fal's {request_id, status, payload})",
      mediaType: "application/json",
    },
    answers: {
      200: {
        description: "the call was woken, or a replayed delivery",
        json: "ProviderWebhookAnswer",
      },
    },
    problems: {
      400: "a signed body that is not the provider's callback (`invalid_json`)",
      401: "missing, wrong or expired signature (`invalid_signature`)",
      404: "no such provider, or no ledger row knows the prediction (`not_found`, `unknown_prediction`; recorded)",
      413: `body over ${WEBHOOK_BODY_LIMIT_BYTES / 1024 / 1024} MiB`,
      503: "the provider's signing keys could not be fetched (`webhook_not_configured`); the provider retries",
    },
  },
  {
    method: "get",
    path: "/healthz",
    operationId: "getHealth",
    tag: "operations",
    summary: "Liveness: the process answers",
    answers: { 200: { description: "alive", json: "Health" } },
  },
  {
    method: "get",
    path: "/readyz",
    operationId: "getReadiness",
    tag: "operations",
    summary: "Readiness: the database answers and the schema is migrated",
    answers: { 200: { description: "ready", json: "Ready" } },
    problems: { 503: "database not reachable (`database_error`)" },
  },
  {
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    tag: "operations",
    summary: "Prometheus metrics",
    answers: {
      200: {
        description: "Prometheus text exposition",
        content: { "text/plain": { type: "string" } },
      },
    },
  },
  {
    method: "get",
    path: "/",
    operationId: "getDashboard",
    tag: "operations",
    summary: "The dashboard: coverage, queue, review queue, recent assets",
    answers: { 200: { description: "HTML page", content: { "text/html": { type: "string" } } } },
  },
  {
    method: "get",
    path: "/openapi.json",
    operationId: "getOpenApiDocument",
    tag: "operations",
    summary: "This document (OpenAPI 3.1)",
    answers: {
      200: {
        description: "the OpenAPI document",
        content: { "application/json": { type: "object" } },
        headers: { "Cache-Control": { description: "`public, max-age=300`" } },
      },
    },
  },
  {
    method: "get",
    path: "/docs",
    operationId: "getApiDocs",
    tag: "operations",
    summary: "This document as an HTML page",
    answers: {
      200: {
        description: "HTML page",
        content: { "text/html": { type: "string" } },
        headers: { "Cache-Control": { description: "`public, max-age=300`" } },
      },
    },
  },
];

/** OpenAPI 3.1 `webhooks`: what Shotlist POSTs to subscribed endpoints, one entry per event. */
function webhooksOf(): Record<string, JsonObject> {
  return Object.fromEntries(
    WEBHOOK_EVENTS.map((type) => [
      type,
      {
        post: {
          operationId: `${eventComponentName(type).replace(/^./, (c) => c.toLowerCase())}`,
          tags: ["outbound-webhooks"],
          summary: EVENT_SUMMARIES[type],
          description: `Sent to every endpoint subscribed to \`${type}\` (POST /v1/webhook-endpoints), signed per Standard Webhooks.`,
          parameters: STANDARD_WEBHOOK_HEADERS.map((header) => ({
            name: header.name,
            in: "header",
            required: true,
            description: header.description,
            schema: { type: "string" },
          })),
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref(eventComponentName(type)) } },
          },
          responses: {
            "2XX": { description: "received; answer within 10 s" },
            "410": { description: "Gone: the endpoint is disabled, nothing more is sent" },
            default: { description: "any other answer is retried on the schedule" },
          },
        },
      },
    ]),
  );
}

/** zod → JSON Schema 2020-12 without `$schema` (an OpenAPI 3.1 schema's dialect is implied). */
function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io }) as JsonObject;
  return rest;
}

const ref = (name: ComponentName) => ({ $ref: `#/components/schemas/${name}` });

/** Path or query parameters from a zod object: one per property, as the route parses them. */
function parametersOf(schema: z.ZodObject, where: "path" | "query"): JsonObject[] {
  const json = jsonSchemaOf(schema, "input");
  const properties = (json.properties ?? {}) as Record<string, JsonObject>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(typeof description === "string" ? { description } : {}),
      schema: propertySchema,
    };
  });
}

function answerOf(answer: AnswerSpec): JsonObject {
  const content = answer.json
    ? { "application/json": { schema: ref(answer.json) } }
    : answer.content
      ? Object.fromEntries(
          Object.entries(answer.content).map(([type, schema]) => [type, { schema }]),
        )
      : undefined;
  return {
    description: answer.description,
    ...(answer.headers
      ? {
          headers: Object.fromEntries(
            Object.entries(answer.headers).map(([name, header]) => [
              name,
              { description: header.description, schema: header.schema ?? { type: "string" } },
            ]),
          ),
        }
      : {}),
    ...(content ? { content } : {}),
  };
}

const problemAnswer = (description: string) => ({
  description,
  content: { [PROBLEM_MEDIA_TYPE]: { schema: ref("Problem") } },
});

const SCOPE_RULE =
  "`read` for GET, `write` for POST, `admin` for keys and webhook endpoints; `admin` implies both";

function operationOf(spec: OperationSpec): JsonObject {
  const parameters = [
    ...(spec.params ? parametersOf(spec.params, "path") : []),
    ...(spec.query ? parametersOf(spec.query, "query") : []),
    ...(spec.headers ?? []).map((header) => ({
      name: header.name,
      in: "header",
      required: header.required ?? false,
      description: header.description,
      schema: { type: "string" },
    })),
  ];
  const problems: Record<number, string> = { ...spec.problems };
  if (spec.scope) {
    problems[401] ??=
      "missing, unknown or revoked API key (`unauthorized`, with `WWW-Authenticate: Bearer`)";
    problems[403] ??= `the API key lacks the \`${spec.scope}\` scope (\`forbidden\`, with \`requiredScope\`)`;
  }
  const responses: JsonObject = {};
  for (const [status, answer] of Object.entries(spec.answers)) responses[status] = answerOf(answer);
  for (const [status, when] of Object.entries(problems)) responses[status] = problemAnswer(when);
  responses.default = problemAnswer("unexpected error (`internal`, 500)");
  const body = spec.body;
  return {
    operationId: spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    security: spec.scope ? [{ [SECURITY_SCHEME]: [spec.scope] }] : [],
    ...(spec.scope ? { "x-shotlist-scope": spec.scope } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body
      ? {
          requestBody: {
            required: body.required ?? true,
            ...(body.description ? { description: body.description } : {}),
            content: body.content
              ? Object.fromEntries(
                  Object.entries(body.content).map(([type, schema]) => [type, { schema }]),
                )
              : {
                  [body.mediaType ?? "application/json"]: {
                    schema:
                      body.components.length === 0
                        ? { type: "object" }
                        : body.components.length === 1
                          ? ref(body.components[0] as ComponentName)
                          : { oneOf: body.components.map(ref) },
                  },
                },
          },
        }
      : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of every route the app serves, built from the routes' schemas. */
export function buildOpenApiDocument(options: { publicUrl: string }): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const spec of OPERATIONS) {
    paths[spec.path] = { ...paths[spec.path], [spec.method]: operationOf(spec) };
  }
  return {
    openapi: "3.1.1",
    info: {
      title: "Shotlist API",
      version: PACKAGE.version,
      summary: PACKAGE.description,
      description: `Every /v1 route needs \`Authorization: Bearer <api key>\`; scopes: ${SCOPE_RULE}. Every error is \`application/problem+json\` (RFC 9457) with a stable \`code\`. Every GET also answers HEAD. Generated from the request schemas the routes validate with (src/http/schemas.ts).`,
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    servers: [{ url: options.publicUrl }],
    tags: [
      { name: "products", description: "the catalogue: submit and read products" },
      { name: "jobs", description: "the queue" },
      { name: "costs", description: "paid-provider spend from the call ledger" },
      { name: "coverage", description: "catalogue coverage, the north star" },
      { name: "assets", description: "generated images with their provenance" },
      { name: "review", description: "the review queue: the human end of every fallback chain" },
      { name: "keys", description: "API keys (admin)" },
      { name: "images", description: "public image bytes for pages and CDNs" },
      { name: "webhooks", description: "signed product webhooks in" },
      {
        name: "outbound-webhooks",
        description: "signed events out: endpoints, the delivery log, redelivery",
      },
      { name: "operations", description: "health, metrics, dashboard, this document" },
    ],
    paths,
    webhooks: webhooksOf(),
    components: {
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "shl_<43 base64url characters>",
          description: `An API key from \`shotlist keys create --scopes …\` or POST /v1/keys. The role each operation lists is the scope it needs: ${SCOPE_RULE}.`,
        },
      },
      schemas: Object.fromEntries(
        Object.entries(COMPONENTS).map(([name, { schema, io }]) => [
          name,
          jsonSchemaOf(schema, io),
        ]),
      ),
    },
  };
}
