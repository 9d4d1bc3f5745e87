import type { Queryable } from "./db.js";

/** The door a webhook came through; each has its own delivery-id space. */
export type WebhookSource = "shopify" | "intake";

/** The job kind that runs a verified webhook delivery through the one intake. */
export const INTAKE_JOB_KIND = "intake";

export interface WebhookDelivery {
  source: WebhookSource;
  deliveryId: string;
  topic: string;
  sku: string;
}

/** What an `intake` job carries: the delivery it came from and the product, already mapped. */
export interface IntakeJobPayload {
  source: WebhookSource;
  deliveryId: string;
  topic: string;
  product: unknown;
}

export const intakeJobKey = (source: WebhookSource, deliveryId: string) =>
  `intake:${source}:${deliveryId}`;

export interface QueuedDelivery {
  delivery: WebhookDelivery;
  product: unknown;
}

/**
 * Records deliveries' receipts and enqueues their `intake` jobs in one statement (one round trip,
 * one commit, atomic): the receipt's primary key deduplicates, and a job is inserted only for a
 * receipt that was. Returns each new job's id by job key; a delivery missing from the map was
 * already recorded (a retry, or a concurrent copy that committed first).
 */
export async function recordDeliveries(
  db: Queryable,
  deliveries: readonly QueuedDelivery[],
  maxAttempts: number,
): Promise<Map<string, number>> {
  const input = deliveries.map(({ delivery, product }) => ({
    source: delivery.source,
    deliveryId: delivery.deliveryId,
    topic: delivery.topic,
    sku: delivery.sku,
    key: intakeJobKey(delivery.source, delivery.deliveryId),
    payload: {
      source: delivery.source,
      deliveryId: delivery.deliveryId,
      topic: delivery.topic,
      product,
    } satisfies IntakeJobPayload,
  }));
  const rows = await db.query<{ key: string; id: number }>(
    `with input as (
       select e->>'source' as source, e->>'deliveryId' as delivery_id, e->>'topic' as topic,
         e->>'sku' as sku, e->>'key' as key, e->'payload' as payload, ordinality
       from jsonb_array_elements($1::jsonb) with ordinality as t(e, ordinality)
     ), receipt as (
       insert into webhook_receipts (source, delivery_id, topic, sku)
       select source, delivery_id, topic, sku from input order by ordinality
       on conflict (source, delivery_id) do nothing returning source, delivery_id
     ), job as (
       insert into jobs (kind, key, payload, max_attempts)
       select $2::text, input.key, input.payload, $3::integer
       from input join receipt using (source, delivery_id) order by input.ordinality
       on conflict (key) do nothing returning id, key
     )
     select key, id from job`,
    [JSON.stringify(input), INTAKE_JOB_KIND, maxAttempts],
  );
  return new Map(rows.map((row) => [row.key, row.id]));
}

/**
 * Group commit for the webhook doors: deliveries that arrive while a write is in flight go
 * together in the next statement, so a burst costs one commit per batch instead of one per
 * delivery. Each caller's promise settles only after its batch committed (200 still means
 * durably queued). Copies of one delivery in the same batch: the first is recorded, the rest
 * are duplicates.
 */
export function createDeliveryQueue(
  db: Queryable,
  maxAttempts: number,
  options: { maxBatch?: number; maxWriters?: number } = {},
): (delivery: WebhookDelivery, product: unknown) => Promise<number | undefined> {
  const maxBatch = options.maxBatch ?? 256;
  const maxWriters = options.maxWriters ?? 4;
  interface Waiting extends QueuedDelivery {
    resolve(id: number | undefined): void;
    reject(error: unknown): void;
  }
  const pending: Waiting[] = [];
  let writers = 0;

  async function write(): Promise<void> {
    writers++;
    try {
      while (pending.length > 0) {
        const batch = pending.splice(0, maxBatch);
        const firsts = new Map<string, Waiting>();
        for (const entry of batch) {
          const key = intakeJobKey(entry.delivery.source, entry.delivery.deliveryId);
          if (!firsts.has(key)) firsts.set(key, entry);
        }
        try {
          const ids = await recordDeliveries(db, [...firsts.values()], maxAttempts);
          for (const entry of batch) {
            const key = intakeJobKey(entry.delivery.source, entry.delivery.deliveryId);
            entry.resolve(firsts.get(key) === entry ? ids.get(key) : undefined);
          }
        } catch (error) {
          for (const entry of batch) entry.reject(error);
        }
      }
    } finally {
      writers--;
    }
  }

  return (delivery, product) =>
    new Promise<number | undefined>((resolve, reject) => {
      pending.push({ delivery, product, resolve, reject });
      if (writers < maxWriters) void write();
    });
}
