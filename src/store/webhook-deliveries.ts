import type { WebhookEvent } from "../domain/webhook-events.js";
import type { Queryable } from "./db.js";

/** The job kind that sends one outbound webhook delivery. */
export const WEBHOOK_DELIVERY_KIND = "webhook-delivery";

export const webhookJobKey = (deliveryId: string) => `webhook:${deliveryId}`;

export interface WebhookJobPayload {
  deliveryId: string;
}

export type DeliveryStatus = "pending" | "succeeded" | "failed";
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["pending", "succeeded", "failed"];

export interface NewDelivery {
  /** The Standard Webhooks msg id (`webhook-id`). */
  id: string;
  endpointId: number;
  event: WebhookEvent;
}

/**
 * Writes deliveries and their `webhook-delivery` jobs in one statement, in the caller's
 * transaction (the outbox: the event exists exactly when the state change that caused it does).
 */
export async function insertDeliveries(
  tx: Queryable,
  deliveries: readonly NewDelivery[],
  maxAttempts: number,
): Promise<void> {
  if (deliveries.length === 0) return;
  await tx.query(
    `with input as (
       select e->>'id' as id, (e->>'endpointId')::bigint as endpoint_id,
         e->'event'->>'type' as event_type, e->'event' as payload, ordinality
       from jsonb_array_elements($1::jsonb) with ordinality as t(e, ordinality)
     ), delivery as (
       insert into webhook_deliveries (id, endpoint_id, event_type, payload)
       select id, endpoint_id, event_type, payload from input order by ordinality
       returning id
     )
     insert into jobs (kind, key, payload, max_attempts)
     select $2::text, 'webhook:' || delivery.id, jsonb_build_object('deliveryId', delivery.id),
       $3::integer
     from delivery
     on conflict (key) do nothing`,
    [JSON.stringify(deliveries), WEBHOOK_DELIVERY_KIND, maxAttempts],
  );
}

export interface DeliveryToSend {
  id: string;
  endpointId: number;
  url: string;
  secret: string;
  payload: WebhookEvent;
  status: DeliveryStatus;
  cycleStartedAt: Date;
  /** Why the endpoint takes no deliveries (disabled after a 410, or deleted); null when it does. */
  endpointClosed: string | null;
}

export async function getDeliveryToSend(
  db: Queryable,
  id: string,
): Promise<DeliveryToSend | undefined> {
  const [row] = await db.query<DeliveryToSend>(
    `select d.id, d.endpoint_id as "endpointId", e.url, e.secret, d.payload, d.status,
       d.cycle_started_at as "cycleStartedAt",
       case when e.deleted_at is not null then 'the endpoint was deleted'
            when e.disabled_at is not null then 'the endpoint is disabled: ' || coalesce(e.disabled_reason, '')
       end as "endpointClosed"
     from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
     where d.id = $1`,
    [id],
  );
  return row;
}

export interface AttemptResult {
  deliveryId: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  /** The delivery's status after this attempt. */
  status: DeliveryStatus;
  /** When the next attempt is due (null when none is planned). */
  nextAttemptInMs: number | null;
}

/** Records one HTTP attempt and the delivery's new status together. */
export async function recordDeliveryAttempt(tx: Queryable, attempt: AttemptResult): Promise<void> {
  await tx.query(
    `insert into webhook_delivery_attempts (delivery_id, status_code, error, duration_ms)
     values ($1, $2, $3, $4)`,
    [attempt.deliveryId, attempt.statusCode, attempt.error, Math.round(attempt.durationMs)],
  );
  await tx.query(
    `update webhook_deliveries set attempts = attempts + 1, status = $2, last_status_code = $3,
       last_error = $4,
       next_attempt_at = case when $5::integer is null then null
                              else now() + $5::integer * interval '1 millisecond' end,
       updated_at = now()
     where id = $1`,
    [
      attempt.deliveryId,
      attempt.status,
      attempt.statusCode,
      attempt.error,
      attempt.nextAttemptInMs === null ? null : Math.round(attempt.nextAttemptInMs),
    ],
  );
}

/** The delivery's job gave up: no more attempts. */
export async function markDeliveryFailed(tx: Queryable, id: string, reason: string) {
  await tx.query(
    `update webhook_deliveries set status = 'failed', next_attempt_at = null,
       last_error = coalesce(last_error, $2), updated_at = now()
     where id = $1 and status = 'pending'`,
    [id, reason],
  );
}

export interface DeliveryRow {
  seq: number;
  id: string;
  endpointId: number;
  event: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: Date | null;
  payload: WebhookEvent;
  createdAt: Date;
  updatedAt: Date;
}

const DELIVERY_COLUMNS = `seq, id, endpoint_id as "endpointId", event_type as event, status,
  attempts, last_status_code as "lastStatusCode", last_error as "lastError",
  next_attempt_at as "nextAttemptAt", payload, created_at as "createdAt",
  updated_at as "updatedAt"`;

export interface DeliveryListQuery {
  endpointId?: number;
  event?: string;
  status?: DeliveryStatus;
  /** Newest first: only deliveries older than this `seq`. */
  beforeSeq?: number;
  limit: number;
}

export async function listDeliveries(
  db: Queryable,
  query: DeliveryListQuery,
): Promise<DeliveryRow[]> {
  return db.query<DeliveryRow>(
    `select ${DELIVERY_COLUMNS} from webhook_deliveries
     where ($1::bigint is null or endpoint_id = $1) and ($2::text is null or event_type = $2)
       and ($3::text is null or status = $3) and ($4::bigint is null or seq < $4)
     order by seq desc limit $5`,
    [
      query.endpointId ?? null,
      query.event ?? null,
      query.status ?? null,
      query.beforeSeq ?? null,
      query.limit,
    ],
  );
}

export async function getDelivery(db: Queryable, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await db.query<DeliveryRow>(
    `select ${DELIVERY_COLUMNS} from webhook_deliveries where id = $1`,
    [id],
  );
  return row;
}

export interface DeliveryAttemptRow {
  deliveryId: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  attemptedAt: Date;
}

export async function listDeliveryAttempts(
  db: Queryable,
  deliveryIds: readonly string[],
): Promise<DeliveryAttemptRow[]> {
  return db.query<DeliveryAttemptRow>(
    `select delivery_id as "deliveryId", status_code as "statusCode", error,
       duration_ms as "durationMs", attempted_at as "attemptedAt"
     from webhook_delivery_attempts where delivery_id = any($1::text[]) order by id`,
    [deliveryIds],
  );
}

export type RedeliveryRefusal = "not_found" | "endpoint_closed" | "in_progress";

/**
 * Queues a delivery again, now, with a fresh retry cycle (same msg id, so a receiver that
 * deduplicates on `webhook-id` sees it as the same message). Returns why not, if it cannot.
 */
export async function requeueDelivery(
  tx: Queryable,
  id: string,
  maxAttempts: number,
): Promise<RedeliveryRefusal | undefined> {
  const [delivery] = await tx.query<{ closed: boolean }>(
    `select (e.disabled_at is not null or e.deleted_at is not null) as closed
     from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
     where d.id = $1 for update of d`,
    [id],
  );
  if (!delivery) return "not_found";
  if (delivery.closed) return "endpoint_closed";
  const key = webhookJobKey(id);
  const [job] = await tx.query<{ state: string }>(
    "select state from jobs where key = $1 for update",
    [key],
  );
  if (job?.state === "running") return "in_progress";
  if (job) {
    await tx.query(
      `update jobs set state = 'queued', attempts = 0, max_attempts = $2, run_at = now(),
         last_error = null, finished_at = null, updated_at = now()
       where key = $1`,
      [key, maxAttempts],
    );
  } else {
    await tx.query("insert into jobs (kind, key, payload, max_attempts) values ($1, $2, $3, $4)", [
      WEBHOOK_DELIVERY_KIND,
      key,
      JSON.stringify({ deliveryId: id }),
      maxAttempts,
    ]);
  }
  await tx.query(
    `update webhook_deliveries set status = 'pending', next_attempt_at = now(),
       cycle_started_at = now(), updated_at = now()
     where id = $1`,
    [id],
  );
  return undefined;
}
