import type { WebhookEventType } from "../domain/webhook-events.js";
import type { Queryable } from "./db.js";

export interface WebhookEndpoint {
  id: number;
  url: string;
  events: WebhookEventType[];
  createdAt: Date;
  disabledAt: Date | null;
  disabledReason: string | null;
}

const COLUMNS = `id, url, events, created_at as "createdAt", disabled_at as "disabledAt",
  disabled_reason as "disabledReason"`;

export async function createWebhookEndpoint(
  db: Queryable,
  endpoint: { url: string; events: readonly WebhookEventType[]; secret: string },
): Promise<WebhookEndpoint> {
  const [row] = await db.query<WebhookEndpoint>(
    `insert into webhook_endpoints (url, events, secret) values ($1, $2, $3) returning ${COLUMNS}`,
    [endpoint.url, endpoint.events, endpoint.secret],
  );
  if (!row) throw new Error("insert into webhook_endpoints returned no row");
  return row;
}

/** Endpoints not deleted (disabled ones included, with why); never their secrets. */
export async function listWebhookEndpoints(db: Queryable): Promise<WebhookEndpoint[]> {
  return db.query<WebhookEndpoint>(
    `select ${COLUMNS} from webhook_endpoints where deleted_at is null order by id`,
  );
}

/** Deletes an endpoint (its delivery log stays); false when there is no such endpoint. */
export async function deleteWebhookEndpoint(db: Queryable, id: number): Promise<boolean> {
  const rows = await db.query(
    "update webhook_endpoints set deleted_at = now() where id = $1 and deleted_at is null returning id",
    [id],
  );
  return rows.length > 0;
}

export async function disableWebhookEndpoint(
  db: Queryable,
  id: number,
  reason: string,
): Promise<void> {
  await db.query(
    `update webhook_endpoints set disabled_at = now(), disabled_reason = $2
     where id = $1 and disabled_at is null`,
    [id, reason],
  );
}

/** Active endpoints and their events: the one query an event costs when none are configured. */
export async function activeSubscriptions(
  db: Queryable,
): Promise<{ id: number; events: WebhookEventType[] }[]> {
  return db.query(
    "select id, events from webhook_endpoints where disabled_at is null and deleted_at is null",
  );
}
