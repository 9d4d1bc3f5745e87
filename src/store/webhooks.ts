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

/**
 * Records a delivery's receipt and enqueues its `intake` job in one statement (so one round
 * trip, and atomic): the receipt's primary key deduplicates, and the job is only inserted when
 * the receipt was. Returns the new job's id, or undefined when the delivery was already
 * recorded (a retry, or a concurrent copy that committed first).
 */
export async function recordDelivery(
  db: Queryable,
  delivery: WebhookDelivery,
  product: unknown,
  maxAttempts: number,
): Promise<number | undefined> {
  const payload: IntakeJobPayload = {
    source: delivery.source,
    deliveryId: delivery.deliveryId,
    topic: delivery.topic,
    product,
  };
  const rows = await db.query<{ job_id: number | null }>(
    `with receipt as (
       insert into webhook_receipts (source, delivery_id, topic, sku) values ($1, $2, $3, $4)
       on conflict (source, delivery_id) do nothing returning 1
     ), job as (
       insert into jobs (kind, key, payload, max_attempts)
       select $5::text, $6::text, $7::jsonb, $8::integer where exists (select 1 from receipt)
       on conflict (key) do nothing returning id
     )
     select (select id from job) as job_id, exists (select 1 from receipt) as recorded`,
    [
      delivery.source,
      delivery.deliveryId,
      delivery.topic,
      delivery.sku,
      INTAKE_JOB_KIND,
      intakeJobKey(delivery.source, delivery.deliveryId),
      JSON.stringify(payload),
      maxAttempts,
    ],
  );
  const row = rows[0] as { job_id: number | null; recorded: boolean } | undefined;
  if (!row?.recorded) return undefined;
  // The job key is derived from the receipt's key, so a fresh receipt means a fresh job.
  if (row.job_id === null) throw new Error(`intake job for ${delivery.deliveryId} already exists`);
  return row.job_id;
}
