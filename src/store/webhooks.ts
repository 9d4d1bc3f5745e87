import type { Queryable } from "./db.js";

/** The door a webhook came through; each has its own delivery-id space. */
export type WebhookSource = "shopify" | "intake";

export interface WebhookReceipt {
  source: WebhookSource;
  deliveryId: string;
  topic: string;
  sku: string;
}

/** Whether this delivery was already acted on (the cheap check before any work). */
export async function hasReceipt(
  db: Queryable,
  source: WebhookSource,
  deliveryId: string,
): Promise<boolean> {
  const rows = await db.query(
    "select 1 from webhook_receipts where source = $1 and delivery_id = $2",
    [source, deliveryId],
  );
  return rows.length > 0;
}

/**
 * Records a delivery inside the caller's transaction; false when another transaction recorded
 * it first (two copies of one delivery racing), so the caller can roll its work back.
 */
export async function recordReceipt(tx: Queryable, receipt: WebhookReceipt): Promise<boolean> {
  const rows = await tx.query(
    `insert into webhook_receipts (source, delivery_id, topic, sku) values ($1, $2, $3, $4)
     on conflict (source, delivery_id) do nothing returning 1`,
    [receipt.source, receipt.deliveryId, receipt.topic, receipt.sku],
  );
  return rows.length > 0;
}
