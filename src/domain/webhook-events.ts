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

/** An event as sent: the Standard Webhooks payload shape `{type, timestamp, data}`. */
export interface WebhookEvent {
  type: WebhookEventType;
  /** ISO 8601, when the state change happened. */
  timestamp: string;
  data: Record<string, unknown>;
}

export const webhookEvent = (
  type: WebhookEventType,
  data: Record<string, unknown>,
  at: Date = new Date(),
): WebhookEvent => ({ type, timestamp: at.toISOString(), data });
