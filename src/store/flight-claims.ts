import type { Queryable } from "./db.js";

/**
 * Claims `key` for `owner` until `ttlMs` from now. True when this owner now holds it: nobody
 * held it, or the holder's claim had expired (that process died or overran; its work is taken
 * over). False while another owner's claim is live.
 */
export async function claimFlight(
  db: Queryable,
  key: string,
  owner: string,
  ttlMs: number,
): Promise<boolean> {
  const rows = await db.query<{ owner: string }>(
    `insert into flight_claims (key, owner, expires_at)
     values ($1, $2, now() + $3 * interval '1 millisecond')
     on conflict (key) do update
       set owner = excluded.owner, claimed_at = now(), expires_at = excluded.expires_at
       where flight_claims.expires_at <= now()
     returning owner`,
    [key, owner, ttlMs],
  );
  return rows[0]?.owner === owner;
}

/** Whether a live (unexpired) claim on `key` exists. */
export async function flightHeld(db: Queryable, key: string): Promise<boolean> {
  const rows = await db.query("select 1 from flight_claims where key = $1 and expires_at > now()", [
    key,
  ]);
  return rows.length > 0;
}

/** Drops `owner`'s claim on `key`; another owner's (a takeover) is left alone. */
export async function releaseFlight(db: Queryable, key: string, owner: string): Promise<void> {
  await db.query("delete from flight_claims where key = $1 and owner = $2", [key, owner]);
}
