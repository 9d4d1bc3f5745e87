import type { Queryable } from "./db.js";
import type { ProviderCallRow } from "./provider-calls.js";

/**
 * Callbacks from async providers (migration 0010). A callback wakes the job polling its ledger
 * row; it never writes the row's outcome (the poll that follows reads the provider's own answer,
 * so the ledger keeps one writer). Every verified callback is recorded, a known one with its row.
 */

/** The ledger row of an async call by the provider's own id (a callback names nothing else). */
export async function findCallByProviderId(
  db: Queryable,
  provider: string,
  providerId: string,
): Promise<ProviderCallRow | undefined> {
  // external_id is `<provider id>|<model>|…` (src/providers/async-handle.ts); indexed in 0010.
  const [row] = await db.query<ProviderCallRow>(
    `select * from provider_calls where provider = $1 and split_part(external_id, '|', 1) = $2
     order by created_at desc limit 1`,
    [provider, providerId],
  );
  return row;
}

export interface ProviderWebhookRecord {
  provider: string;
  deliveryId: string;
  providerId: string;
  /** The ledger row it woke; null for an unknown prediction. */
  callId: string | null;
  status: string;
}

/** Records a verified callback; false when this delivery was recorded before (a replay). */
export async function recordProviderWebhook(
  db: Queryable,
  record: ProviderWebhookRecord,
): Promise<boolean> {
  const rows = await db.query(
    `insert into provider_webhooks (provider, delivery_id, provider_id, call_id, status)
     values ($1, $2, $3, $4, $5) on conflict (provider, delivery_id) do nothing returning 1`,
    [record.provider, record.deliveryId, record.providerId, record.callId, record.status],
  );
  return rows.length > 0;
}

/**
 * Makes a job waiting between attempts due now, so a worker claims it and polls its call at once.
 * A running job is left alone (its worker is woken in process, or polls at its interval).
 */
export async function wakeJob(db: Queryable, jobId: number): Promise<boolean> {
  const rows = await db.query(
    `update jobs set run_at = now(), updated_at = now()
     where id = $1 and state in ('queued', 'retrying') and run_at > now() returning id`,
    [jobId],
  );
  return rows.length > 0;
}

export async function listProviderWebhooks(
  db: Queryable,
  provider: string,
): Promise<(ProviderWebhookRecord & { receivedAt: Date })[]> {
  return db.query(
    `select provider, delivery_id as "deliveryId", provider_id as "providerId",
       call_id as "callId", status, received_at as "receivedAt"
     from provider_webhooks where provider = $1 order by received_at`,
    [provider],
  );
}
