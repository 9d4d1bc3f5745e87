import { z } from "zod";

/**
 * Outbound webhook events (DESIGN §4). The names are a public contract: receivers subscribe
 * to them, so a name never changes meaning.
 */
export const WEBHOOK_EVENTS = [
  "asset.published",
  "asset.needs_review",
  "product.complete",
  "job.failed",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

export const isWebhookEventType = (name: string): name is WebhookEventType =>
  (WEBHOOK_EVENTS as readonly string[]).includes(name);

/** A published asset as events show it; null on a slot without one. */
const eventAssetSchema = z
  .object({
    id: z.int(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    url: z.string().meta({ description: "immutable bytes: <public URL>/a/<sha256>.<ext>" }),
    width: z.int(),
    height: z.int(),
  })
  .nullable();

/**
 * The `data` of each event: what the outbox sends (src/integrations/webhooks/outbox.ts builds
 * them through `webhookEvent`, typed by these) and what the OpenAPI document's `webhooks` show.
 */
export const WEBHOOK_EVENT_DATA = {
  "asset.published": z.object({
    sku: z.string(),
    slot: z.string(),
    recipeHash: z.string(),
    asset: eventAssetSchema,
  }),
  "asset.needs_review": z.object({
    sku: z.string(),
    slot: z.string(),
    reason: z.string().meta({ description: "why the slot went to the review queue" }),
  }),
  "product.complete": z.object({
    sku: z.string(),
    slots: z
      .array(z.object({ slot: z.string(), asset: eventAssetSchema }))
      .meta({ description: "the product's published slots" }),
  }),
  "job.failed": z.object({
    job: z.object({
      id: z.int(),
      kind: z.string(),
      key: z.string(),
      state: z.string().meta({ description: "the state it gave up in, e.g. needs_review" }),
      attempts: z.int(),
    }),
    reason: z.string(),
  }),
} as const satisfies Record<WebhookEventType, z.ZodType>;

export type WebhookEventData<T extends WebhookEventType = WebhookEventType> = z.output<
  (typeof WEBHOOK_EVENT_DATA)[T]
>;

const eventTimestamp = z.iso
  .datetime({ offset: true })
  .meta({ description: "ISO 8601, when the state change happened" });

/** The Standard Webhooks payload `{type, timestamp, data}` of one event type. */
export const webhookEventSchemaOf = <T extends WebhookEventType>(type: T) =>
  z.object({ type: z.literal(type), timestamp: eventTimestamp, data: WEBHOOK_EVENT_DATA[type] });

/** Any event's payload, as stored with a delivery and sent unchanged on every attempt. */
export const webhookEventSchema = z.object({
  type: z.enum(WEBHOOK_EVENTS),
  timestamp: eventTimestamp,
  data: z.record(z.string(), z.unknown()).meta({ description: "see the event's own schema" }),
});

/** An event as sent: the Standard Webhooks payload shape `{type, timestamp, data}`. */
export interface WebhookEvent {
  type: WebhookEventType;
  /** ISO 8601, when the state change happened. */
  timestamp: string;
  data: Record<string, unknown>;
}

/** Builds an event; `data` is typed by the event's schema, so what is sent is what is documented. */
export const webhookEvent = <T extends WebhookEventType>(
  type: T,
  data: WebhookEventData<T>,
  at: Date = new Date(),
): WebhookEvent => ({ type, timestamp: at.toISOString(), data });
