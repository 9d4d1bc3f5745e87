import type { Queryable } from "./db.js";

/** How long a finished response is replayed (Stripe and the IETF draft: 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * A 'started' row older than this is a request whose process died mid-way: the next retry
 * takes it over. Safe because the work itself is deduplicated by recipe hash (DESIGN §1).
 */
export const IDEMPOTENCY_STALE_LOCK_MS = 10 * 60 * 1000;

export type IdempotencyClaim =
  | { kind: "claimed" }
  | { kind: "in_flight" }
  | { kind: "mismatch" }
  | { kind: "replay"; status: number; contentType: string; body: string };

interface IdempotencyRow {
  request_hash: string;
  state: "started" | "finished";
  status: number | null;
  content_type: string | null;
  body: string | null;
  stale: boolean;
}

/**
 * The in-flight lock: inserts a 'started' row, committed before any work, unique per
 * (API key, Idempotency-Key). Whoever inserts it does the work; everyone else learns why not.
 */
export async function claimIdempotencyKey(
  db: Queryable,
  apiKeyId: number,
  key: string,
  requestHash: string,
): Promise<IdempotencyClaim> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const inserted = await db.query(
      `insert into idempotency_keys (api_key_id, key, request_hash, state, expires_at)
       values ($1, $2, $3, 'started', now() + make_interval(secs => $4))
       on conflict (api_key_id, key) do nothing returning 1`,
      [apiKeyId, key, requestHash, IDEMPOTENCY_TTL_MS / 1000],
    );
    if (inserted.length > 0) return { kind: "claimed" };
    const [row] = await db.query<IdempotencyRow>(
      `select request_hash, state, status, content_type, body,
              expires_at < now()
                or (state = 'started' and created_at < now() - make_interval(secs => $3))
                as stale
       from idempotency_keys where api_key_id = $1 and key = $2`,
      [apiKeyId, key, IDEMPOTENCY_STALE_LOCK_MS / 1000],
    );
    // Released between our insert and select: try again.
    if (!row) continue;
    if (row.stale) {
      // An expired record or an abandoned lock makes room for a fresh claim; the conditional
      // delete lets only one of several racing retries remove it.
      await db.query(
        `delete from idempotency_keys where api_key_id = $1 and key = $2
         and (expires_at < now()
              or (state = 'started' and created_at < now() - make_interval(secs => $3)))`,
        [apiKeyId, key, IDEMPOTENCY_STALE_LOCK_MS / 1000],
      );
      continue;
    }
    if (row.request_hash !== requestHash) return { kind: "mismatch" };
    if (row.state === "started") return { kind: "in_flight" };
    return {
      kind: "replay",
      status: row.status ?? 200,
      contentType: row.content_type ?? "application/json; charset=utf-8",
      body: row.body ?? "",
    };
  }
  return { kind: "in_flight" };
}

/** Stores the first response for replay. */
export async function finishIdempotencyKey(
  db: Queryable,
  apiKeyId: number,
  key: string,
  response: { status: number; contentType: string; body: string },
): Promise<void> {
  await db.query(
    `update idempotency_keys set state = 'finished', status = $3, content_type = $4, body = $5
     where api_key_id = $1 and key = $2 and state = 'started'`,
    [apiKeyId, key, response.status, response.contentType, response.body],
  );
}

/** Drops a claim whose request failed, so a retry runs it again. */
export async function releaseIdempotencyKey(
  db: Queryable,
  apiKeyId: number,
  key: string,
): Promise<void> {
  await db.query(
    "delete from idempotency_keys where api_key_id = $1 and key = $2 and state = 'started'",
    [apiKeyId, key],
  );
}
