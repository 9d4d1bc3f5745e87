import { z } from "zod";
import { type ErrorCode, ShotlistError } from "../domain/errors.js";
import { MAX_RENDITION_SIDE, RENDITION_FITS, RENDITION_FORMATS } from "../domain/rendition.js";
import { validateSku } from "../domain/sku.js";
import { WEBHOOK_EVENTS, webhookEventSchema } from "../domain/webhook-events.js";
import { productInputSchema, SKU_SCHEMA_META } from "../intake/schema.js";
import { SCOPES } from "../store/api-keys.js";
import type { JobState } from "../store/jobs.js";
import { LIVE_REVIEW_STATUSES, REVIEW_STATUSES } from "../store/review.js";
import { DELIVERY_STATUSES } from "../store/webhook-deliveries.js";

/**
 * The HTTP contract's schemas: the routes parse their params, query strings and bodies with
 * these, and src/http/openapi.ts turns the same objects into the OpenAPI document, so the
 * document cannot say one thing while a route checks another. Response schemas are not
 * checked at run time; test/integration/openapi.test.ts holds real answers against them.
 */

/**
 * Parses one part of a request; a failure is a problem+json with every issue on one line.
 * `code` may depend on the first issue (zod reports them in the shape's key order), for parts
 * whose fields have codes of their own.
 */
export function parseRequestPart<T extends z.ZodType>(
  schema: T,
  value: unknown,
  code: ErrorCode | ((first: z.core.$ZodIssue) => ErrorCode) = "invalid_request",
  status = 400,
): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  throw new ShotlistError(
    typeof code === "function" && issues[0] ? code(issues[0]) : (code as ErrorCode),
    issues.map((issue) => issue.message).join("; "),
    { status },
  );
}

export const MAX_PAGE = 1000;
export const MAX_BATCH = 1000;

const pageLimit = (message: string) =>
  z.coerce
    .number({ error: message })
    .int({ error: message })
    .min(1, { error: message })
    .max(MAX_PAGE, { error: message })
    .default(100)
    .meta({ description: `page size, 1 to ${MAX_PAGE}` });

/** Path SKU: validateSku's rule and messages (400 `invalid_sku`); the metadata documents it. */
const skuPathParam = z
  .string()
  .superRefine((raw, ctx) => {
    try {
      validateSku(raw);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
    }
  })
  .meta(SKU_SCHEMA_META);

export const skuParamsSchema = z.object({ sku: skuPathParam });

/** `{id}` of a job, asset or key: a positive integer, else 400 with `what` in the detail. */
export function idParamsSchema(what: string) {
  const message = `${what} id must be a positive integer`;
  return z.object({
    id: z.coerce.number({ error: message }).int({ error: message }).min(1, { error: message }),
  });
}

export const productListQuerySchema = z.object({
  coverage: z
    .enum(["complete", "incomplete"], { error: "coverage must be complete or incomplete" })
    .optional()
    .meta({ description: "only products whose shot list is (in)complete" }),
  cursor: z
    .string({ error: "cursor is not one this API returned" })
    .optional()
    .meta({ description: "`nextCursor` of the previous page (opaque)" }),
  limit: pageLimit(`limit must be an integer from 1 to ${MAX_PAGE}`),
});

export const JOB_STATES = [
  "queued",
  "running",
  "retrying",
  "succeeded",
  "failed",
  "needs_review",
] as const satisfies readonly JobState[];

export const jobListQuerySchema = z.object({
  state: z
    .enum(JOB_STATES, { error: `state must be one of ${JOB_STATES.join(", ")}` })
    .optional()
    .meta({ description: "only jobs in this state" }),
  cursor: z.coerce
    .number({ error: "cursor is not one this API returned" })
    .int({ error: "cursor is not one this API returned" })
    .min(0, { error: "cursor is not one this API returned" })
    .default(0)
    .meta({ description: "`nextCursor` of the previous page" }),
  limit: pageLimit(`limit must be an integer from 1 to ${MAX_PAGE}`),
});

/**
 * `{products: [...]}`: the batch envelope. The route checks it with `z.unknown()` items and
 * then takes each product through the intake on its own (one bad product is reported in its
 * result, the rest are accepted); the document shows the product schema as the item. Strict:
 * a field beside `products` (a misspelt option, a second list) is refused, not ignored.
 */
export function productBatchSchema<T extends z.ZodType>(item: T) {
  return z.strictObject({
    products: z
      .array(item, { error: "products must be a non-empty array" })
      .min(1, { error: "products must be a non-empty array" })
      .max(MAX_BATCH, {
        error: (issue) =>
          `a batch holds at most ${MAX_BATCH} products; got ${(issue.input as unknown[]).length}`,
      }),
  });
}

export const productRequestSchema = z.union([
  productInputSchema,
  productBatchSchema(productInputSchema),
]);

export const createKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  scopes: z.array(z.enum(SCOPES)).min(1),
});

/**
 * `{url, events}` of a new outbound webhook endpoint. Event names are checked after this by
 * the route (400 `unknown_event`, naming every unknown one) and the URL by its address guard
 * (400 `invalid_webhook_url` / `webhook_url_forbidden`); the metadata documents both rules.
 */
export const createWebhookEndpointSchema = z.strictObject({
  url: z.string().max(2048).meta({
    format: "uri",
    description:
      "absolute http(s) URL; a host that is or resolves to a loopback, private, link-local or metadata address is refused",
  }),
  events: z
    .array(z.string().meta({ enum: [...WEBHOOK_EVENTS] }))
    .min(1, "events must name at least one event")
    .meta({ description: "the events to send; at least one" }),
});

const positiveInt = (message: string) =>
  z.coerce.number({ error: message }).int({ error: message }).min(1, { error: message });

/** `{id}` of an outbound delivery: its `msg_…` id (the `webhook-id` it is sent with). */
export const deliveryIdParamsSchema = z.object({
  id: z.string().meta({ description: "`msg_…`, the delivery's `webhook-id`" }),
});

/**
 * Delivery log filters, in the order the route has always checked them, since the first
 * failing one picks the code: a bad `event` is 400 `unknown_event`, anything else
 * `invalid_request`.
 */
export const deliveryListQuerySchema = z.object({
  endpoint: positiveInt("endpoint must be a positive integer")
    .optional()
    .meta({ description: "only deliveries to this endpoint id" }),
  event: z
    .enum(WEBHOOK_EVENTS, { error: `event must be one of ${WEBHOOK_EVENTS.join(", ")}` })
    .optional()
    .meta({ description: "only deliveries of this event" }),
  status: z
    .enum(DELIVERY_STATUSES, { error: `status must be one of ${DELIVERY_STATUSES.join(", ")}` })
    .optional()
    .meta({ description: "only deliveries in this status" }),
  limit: pageLimit(`limit must be an integer from 1 to ${MAX_PAGE}`),
  cursor: positiveInt("cursor is not one this API returned")
    .optional()
    .meta({ description: "`nextCursor` of the previous page" }),
});

/** The code of a delivery log query's first failing filter. */
export const deliveryListQueryCode = (first: z.core.$ZodIssue): ErrorCode =>
  first.path[0] === "event" ? "unknown_event" : "invalid_request";

/** Review queue filters; every one optional, combined with "and". */
export const reviewListQuerySchema = z.object({
  sku: z
    .string()
    .superRefine((raw, ctx) => {
      try {
        validateSku(raw);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: `sku: ${(error as Error).message}` });
      }
    })
    .optional()
    .meta({ description: "only this product's items" }),
  category: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: "category must be a category name" })
    .optional()
    .meta({ description: "only products of this category" }),
  slot: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: "slot must be a slot name" })
    .optional()
    .meta({ description: "only this slot" }),
  status: z
    .enum(LIVE_REVIEW_STATUSES, {
      error: `status must be one of ${LIVE_REVIEW_STATUSES.join(", ")}`,
    })
    .optional()
    .meta({
      description:
        "open (waiting for a decision) or rejected (refused, not requeued, still missing its image); default both",
    }),
  cursor: positiveInt("cursor is not one this API returned")
    .optional()
    .meta({ description: "`nextCursor` of the previous page" }),
  limit: pageLimit(`limit must be an integer from 1 to ${MAX_PAGE}`),
});

const reviewReason = z
  .string({ error: "reason must be a string of 1 to 500 characters" })
  .trim()
  .min(1, { error: "reason must be a string of 1 to 500 characters" })
  .max(500, { error: "reason must be a string of 1 to 500 characters" });

const slotName = z
  .string({ error: "slot must be a slot name" })
  .min(1, { error: "slot must be a slot name" })
  .max(200, { error: "slot must be a slot name of at most 200 characters" });

/** `POST /v1/products/{sku}/regenerate`: which slots (default every slot) and whether to spend. */
export const regenerateRequestSchema = z
  .strictObject({
    slots: z
      .array(slotName, { error: "slots must be a list of slot names" })
      .min(1, { error: "slots must name at least one slot" })
      .max(100, { error: "slots may name at most 100 slots" })
      .refine((names) => new Set(names).size === names.length, {
        error: "slots must not name a slot twice",
      })
      .optional()
      .meta({ description: "only these slots (DESIGN §3); default every slot of the product" }),
    slot: slotName
      .optional()
      .meta({ description: "only this slot: the one-slot form of `slots`; not with `slots`" }),
    provider: z.string().min(1).max(200).optional().meta({
      description: "only assets whose recipe used this provider",
    }),
    model: z.string().min(1).max(200).optional().meta({
      description: "only assets whose recipe used this model",
    }),
    dryRun: z
      .boolean({ error: "dryRun must be true or false" })
      .optional()
      .meta({ description: "list the affected assets and the estimated cost; enqueue nothing" }),
    reason: z.string().max(500).optional().meta({ description: "why; logged" }),
  })
  .refine((body) => body.slot === undefined || body.slots === undefined, {
    error: "give slots or slot, not both",
  });

/** `POST /v1/review/{id}/approve`: which candidate (default the newest) and an optional note. */
export const approveReviewSchema = z.strictObject({
  assetId: positiveInt("assetId must be a positive integer")
    .optional()
    .meta({ description: "a candidate's asset id; default the newest candidate" }),
  reason: reviewReason
    .optional()
    .meta({ description: "why it is good enough; kept in the audit trail" }),
});

/** `POST /v1/review/{id}/reject`: why, and optionally where to try again. */
export const rejectReviewSchema = z.strictObject({
  reason: reviewReason.meta({ description: "why the candidates are refused (1–500 characters)" }),
  requeue: z
    .strictObject({
      provider: z
        .string({ error: "requeue.provider must be a provider name" })
        .min(1, { error: "requeue.provider must be a provider name" })
        .max(200),
      model: z.string().min(1).max(200).optional(),
    })
    .optional()
    .meta({
      description:
        "render the slot again from the first link of its chain with this provider (and model); it must be registered and in the slot's chain",
    }),
});

// ---- responses (documentation; held against real answers in the OpenAPI test) ----

const timestamp = z.iso.datetime({ offset: true });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** RFC 9457 problem details with Shotlist's stable `code`; extensions (e.g. `requiredScope`). */
export const problemSchema = z
  .looseObject({
    type: z.string().meta({ description: "https://shotlist.dev/problems/<code>" }),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: z.string().meta({ description: "stable machine code, e.g. invalid_sku, not_found" }),
    instance: z.string().optional().meta({ description: "the request path" }),
  })
  .meta({ description: "RFC 9457 problem details; other members are extensions" });

const coverageSchema = z.object({
  complete: z.int().meta({ description: "required slots published" }),
  required: z.int(),
  ratio: z.number().min(0).max(1),
});

const savedSlotSchema = z.object({
  slot: z.string(),
  recipeHash: sha256,
  state: z.string(),
  jobId: z.int(),
  jobCreated: z.boolean(),
});

export const productAcceptedSchema = z.object({
  sku: z.string(),
  created: z.boolean(),
  changed: z.boolean().meta({ description: "false when the same product was already stored" }),
  jobsCreated: z.int(),
  slots: z.array(savedSlotSchema),
});

export const productBatchResultSchema = z.object({
  results: z.array(
    z.union([
      productAcceptedSchema.extend({ index: z.int(), status: z.literal("accepted") }),
      z.object({
        index: z.int(),
        status: z.literal("rejected"),
        code: z.string(),
        detail: z.string(),
      }),
    ]),
  ),
});

export const productListSchema = z.object({
  products: z.array(
    z.object({
      sku: z.string(),
      title: z.string(),
      category: z.string(),
      coverage: coverageSchema,
    }),
  ),
  nextCursor: z.string().nullable(),
});

const SLOT_STATES = ["pending", "published", "needs_review", "failed"] as const;

export const productSchema = z.object({
  sku: z.string(),
  title: z.string(),
  category: z.string(),
  attributes: z.record(z.string(), z.string()),
  variants: z.array(z.object({ sku: z.string(), attributes: z.record(z.string(), z.string()) })),
  referenceImages: z.array(
    z.object({ sha256, origin: z.string(), width: z.int(), height: z.int() }),
  ),
  coverage: coverageSchema,
  slots: z.array(
    z.object({
      slot: z.string(),
      required: z.boolean(),
      state: z.enum(SLOT_STATES),
      reason: z.string().nullable(),
      alt: z.string(),
      recipeHash: sha256,
      asset: z
        .object({
          id: z.int(),
          sha256,
          url: z.string(),
          madeBy: z.enum(["provider", "human", "template"]).meta({
            description: "human: uploaded in review; template: the stock-template fallback",
          }),
        })
        .nullable(),
    }),
  ),
  createdAt: timestamp,
  updatedAt: timestamp,
});

export const jobSchema = z.object({
  id: z.int(),
  kind: z.string(),
  key: z.string(),
  state: z.enum(JOB_STATES),
  attempts: z.int(),
  maxAttempts: z.int(),
  runAt: timestamp,
  lastError: z.string().nullable(),
  payload: z.unknown(),
  createdAt: timestamp,
  updatedAt: timestamp,
  finishedAt: timestamp.nullable(),
});

export const jobListSchema = z.object({
  jobs: z.array(jobSchema),
  nextCursor: z.string().nullable(),
});

export const jobDetailSchema = jobSchema.extend({
  attemptLog: z.array(
    z.object({
      attempt: z.int(),
      worker: z.string(),
      link: z.int().nullable(),
      provider: z.string().nullable(),
      recipe_hash: z.string().nullable(),
      outcome: z.string(),
      error: z.string().nullable(),
      checks: z.unknown(),
      started_at: timestamp,
      finished_at: timestamp,
    }),
  ),
});

/** `since`: an ISO 8601 date or date-time; a bad one is a 400 naming it. */
export const costsQuerySchema = z.object({
  since: z
    .string()
    .refine(
      (value) =>
        /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) &&
        !Number.isNaN(Date.parse(value)),
      {
        error:
          "since must be an ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T00:00:00Z",
      },
    )
    .optional()
    .meta({ description: "only calls made at or after this moment (a date is midnight UTC)" }),
});

const costLineTotals = {
  calls: z.int(),
  succeeded: z.int(),
  failed: z.int(),
  open: z.int().meta({
    description: "calls still under way: submitted, or pending within their holder's deadline",
  }),
  spentMicros: z.int().meta({ description: "what succeeded calls cost, in micro-units" }),
  inDoubt: z.int().meta({
    description:
      "calls whose outcome is unknown (in doubt, or pending past their holder's deadline), counted as spent",
  }),
  inDoubtMicros: z.int().meta({ description: "in-doubt calls at their estimated cost" }),
};

export const costReportSchema = z.object({
  since: timestamp.nullable(),
  lines: z.array(z.object({ provider: z.string(), model: z.string(), ...costLineTotals })),
  total: z.object(costLineTotals),
});

export const catalogueCoverageSchema = z.object({
  products: z.int(),
  completeProducts: z.int(),
  requiredSlots: z.int(),
  publishedSlots: z.int(),
  slotCoverage: z.number().min(0).max(1),
  productCoverage: z.number().min(0).max(1).meta({ description: "the north star" }),
  bySlot: z.array(
    z.object({
      slot: z.string(),
      required: z.int(),
      published: z.int(),
      needsReview: z.int(),
      pending: z.int(),
      failed: z.int(),
    }),
  ),
  byState: z.record(z.string(), z.int()),
});

const checkResultSchema = z.object({
  name: z.string(),
  passed: z.boolean(),
  value: z.number().optional(),
  detail: z.string(),
});

export const reviewDecisionSchema = z.object({
  itemId: z.int(),
  decision: z.enum(["approved", "rejected", "requeued", "uploaded"]),
  reason: z.string().nullable(),
  assetId: z.int().nullable().meta({ description: "approved or uploaded: the published asset" }),
  jobId: z.int().nullable().meta({ description: "requeued: the new render job" }),
  provider: z.string().nullable(),
  model: z.string().nullable(),
  decidedBy: z
    .object({ keyId: z.int(), name: z.string() })
    .nullable()
    .meta({ description: "the API key that decided" }),
  decidedAt: timestamp,
});

/** What made an asset, in one place (issue 5 §3, DESIGN §8). */
export const assetProvenanceSchema = z
  .object({
    madeBy: z.enum(["provider", "human", "template"]),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    modelVersion: z.string().nullable(),
    prompt: z.string().nullable().meta({ description: "the rendered prompt" }),
    seed: z.int().nullable(),
    references: z
      .array(sha256)
      .meta({ description: "reference images the recipe reads, by SHA-256 of their bytes" }),
    steps: z.array(z.record(z.string(), z.unknown())),
    parameters: z
      .record(z.string(), z.unknown())
      .meta({ description: "every other recipe input: source, output spec, swatches" }),
    providerRequestId: z
      .string()
      .nullable()
      .meta({ description: "the provider's own id for the call that made the bytes" }),
    ledgerCallId: z
      .string()
      .nullable()
      .meta({ description: "the provider-call ledger row (and Idempotency-Key) that made it" }),
    costMicros: z
      .int()
      .meta({ description: "what the call that made the bytes cost, from the ledger (0 local)" }),
    recipeSpendMicros: z.int().meta({
      description:
        "every ledger call of this recipe counted as spent (succeeded and in doubt), retries included",
    }),
    digitalSourceType: z.string().nullable().meta({
      description:
        "the IPTC DigitalSourceType code the file's XMP carries (AI-made assets); null for local, template and human work",
    }),
  })
  .meta({ description: "the full recipe and the paid call behind the asset" });

export const assetSchema = z.object({
  id: z.int(),
  sha256,
  url: z.string(),
  state: z.enum(["published", "in_review", "rejected", "superseded"]),
  width: z.int(),
  height: z.int(),
  byteSize: z.int(),
  costMicros: z.int(),
  link: z.int(),
  checks: z.array(z.record(z.string(), z.unknown())),
  recipeHash: sha256,
  recipe: z
    .record(z.string(), z.unknown())
    .optional()
    .meta({ description: "the full recipe: provenance (DESIGN §8)" }),
  madeBy: z.enum(["provider", "human", "template"]).meta({
    description:
      "provider: the recipe's output; human: an image a reviewer uploaded for the slot; template: the stock-template fallback link's output",
  }),
  provenance: assetProvenanceSchema,
  review: reviewDecisionSchema
    .nullable()
    .meta({ description: "the human decision that published it (approved or uploaded), if any" }),
  createdAt: timestamp,
});

export const reviewItemSchema = z.object({
  id: z.int(),
  sku: z.string(),
  category: z.string(),
  slot: z.string(),
  status: z.enum(REVIEW_STATUSES),
  reason: z.string().nullable().meta({ description: "why the slot went to review" }),
  since: timestamp.meta({ description: "when the slot went to review" }),
  closedAt: timestamp.nullable(),
  recipeHash: sha256,
  expected: z
    .object({
      output: z.object({ width: z.int(), height: z.int(), format: z.string() }),
      checks: z.record(z.string(), z.unknown()),
    })
    .meta({ description: "what an image for this slot must be and pass (an upload too)" }),
  attempts: z.array(
    z.object({
      jobId: z.int(),
      attempt: z.int(),
      link: z.int().nullable(),
      provider: z.string().nullable(),
      outcome: z.string(),
      error: z.string().nullable().meta({ description: "the attempt's reason" }),
      startedAt: timestamp,
      finishedAt: timestamp,
    }),
  ),
  candidates: z
    .array(
      z.object({
        id: z.int().meta({ description: "asset id; approve takes it as assetId" }),
        url: z.string(),
        link: z.int(),
        provider: z.string(),
        model: z.string(),
        failedChecks: z.array(checkResultSchema),
        createdAt: timestamp,
      }),
    )
    .meta({ description: "rejected outputs of the slot's chain, newest first" }),
  decisions: z.array(reviewDecisionSchema).meta({ description: "the audit trail, oldest first" }),
});

export const reviewItemListSchema = z.object({
  items: z.array(reviewItemSchema).meta({ description: "oldest first" }),
  nextCursor: z.string().nullable(),
});

export const reviewDecisionAnswerSchema = z.object({
  item: reviewItemSchema,
  asset: z
    .object({ id: z.int(), sha256, url: z.string() })
    .nullable()
    .meta({ description: "approve and image: the asset now published on the slot" }),
  jobId: z.int().nullable().meta({ description: "reject with requeue: the new render job" }),
});

export const apiKeySchema = z.object({
  id: z.int(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  createdAt: timestamp,
  revokedAt: timestamp.nullable(),
});

export const apiKeyListSchema = z.object({ keys: z.array(apiKeySchema) });

export const createdApiKeySchema = apiKeySchema.extend({
  key: z.string().meta({ description: "shl_…; shown this once, never again" }),
});

export const webhookEndpointSchema = z.object({
  id: z.int(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENTS)),
  createdAt: timestamp,
  disabledAt: timestamp
    .nullable()
    .meta({ description: "set when the endpoint answered 410 Gone; it gets nothing more" }),
  disabledReason: z.string().nullable(),
});

export const webhookEndpointListSchema = z.object({
  endpoints: z.array(webhookEndpointSchema).meta({ description: "deleted endpoints are left out" }),
});

export const createdWebhookEndpointSchema = webhookEndpointSchema.extend({
  secret: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+=*$/)
    .meta({
      description: "`whsec_…`, the Standard Webhooks signing secret; shown this once, never again",
    }),
});

export const webhookDeliverySchema = z.object({
  id: z.string().meta({ description: "`msg_…`: the `webhook-id` of every attempt" }),
  endpointId: z.int(),
  event: z.enum(WEBHOOK_EVENTS),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.int().meta({ description: "attempts in the current retry cycle" }),
  lastStatusCode: z.int().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: timestamp.nullable().meta({ description: "when pending: the next attempt" }),
  createdAt: timestamp,
  updatedAt: timestamp,
  payload: webhookEventSchema.meta({ description: "the body sent, unchanged on every attempt" }),
  attemptLog: z.array(
    z.object({
      statusCode: z.int().nullable().meta({ description: "null: no HTTP answer (see error)" }),
      error: z.string().nullable(),
      durationMs: z.int(),
      attemptedAt: timestamp,
    }),
  ),
});

export const webhookDeliveryListSchema = z.object({
  deliveries: z.array(webhookDeliverySchema).meta({ description: "newest first" }),
  nextCursor: z.string().nullable(),
});

export const redeliveryAnswerSchema = z.object({
  id: z.string(),
  status: z.literal("pending"),
});

export const healthSchema = z.object({ status: z.literal("ok") });

export const readySchema = z.object({
  status: z.literal("ready"),
  database: z.enum(["pglite", "postgres"]),
  schemaVersion: z.int(),
});

export const webhookAnswerSchema = z.object({
  status: z.enum(["accepted", "duplicate", "ignored"]),
  deliveryId: z.string().optional(),
  sku: z.string().optional(),
  jobId: z.int().optional(),
  topic: z.string().optional(),
});

/** The answer to an async provider's callback (POST /webhooks/providers/{name}). */
export const providerWebhookAnswerSchema = z.object({
  status: z.enum(["accepted", "duplicate"]),
  /** The ledger row the callback woke (provider_calls.id). */
  callId: z.string(),
});

/**
 * `/i/` query options, for the document only: parseRenditionQuery (src/domain/rendition.ts)
 * stays their validator, because its errors name the option (`invalid_rendition_option`).
 */
export const renditionQuerySchema = z.object({
  w: z.int().min(1).max(MAX_RENDITION_SIDE).optional().meta({ description: "width, CSS px" }),
  h: z.int().min(1).max(MAX_RENDITION_SIDE).optional().meta({ description: "height, CSS px" }),
  fit: z
    .enum(RENDITION_FITS)
    .optional()
    .meta({ description: "default cover with both sides, else inside" }),
  dpr: z.number().min(1).max(4).optional().meta({ description: "device pixel ratio" }),
  q: z.int().min(1).max(100).optional().meta({ description: "quality" }),
  format: z
    .enum(RENDITION_FORMATS)
    .optional()
    .meta({ description: "auto: AVIF, then WebP, then JPEG by Accept" }),
  s: z.string().optional().meta({
    description:
      "base64url HMAC-SHA256 (SHOTLIST_SIGNING_KEY) of the path and canonical options; required with any other option",
  }),
});

export const regenerateReportSchema = z.object({
  dryRun: z.boolean(),
  filter: z.record(z.string(), z.string()),
  count: z.int().meta({ description: "how many published assets are out of date" }),
  estimatedCostMicros: z.int().meta({ description: "the new first links' prices, summed" }),
  jobsCreated: z.int(),
  affected: z.array(
    z.object({
      assetId: z.int(),
      sku: z.string(),
      slot: z.string(),
      category: z.string(),
      provider: z.string(),
      model: z.string(),
      modelVersion: z.string(),
      recipeHash: sha256,
      newProvider: z.string(),
      newModel: z.string(),
      newModelVersion: z.string(),
      newRecipeHash: sha256,
      estimatedCostMicros: z.int(),
      jobId: z.int().optional(),
      jobCreated: z.boolean().optional(),
    }),
  ),
});
