import { randomUUID } from "node:crypto";
import type { Queryable } from "../store/db.js";
import { claimFlight, flightHeld, releaseFlight } from "../store/flight-claims.js";

/**
 * How long a claim holds before another process may take the work over. Far above the
 * slowest rendition measured here (a 2000-px AVIF, ~1 s on a busy 2-core machine), so a live
 * process is not overtaken; it only bounds the wait when the holder died.
 */
export const DEFAULT_CLAIM_TTL_MS = 30_000;
/** How often a waiting process looks whether the holder is done. */
export const DEFAULT_CLAIM_POLL_MS = 25;

export interface FleetFlightOptions {
  /**
   * The database the fleet's processes share claim rows in; without one the flight is this
   * process's only (the embedded database: PGlite is one process, so its fleet is this process).
   */
  db: Queryable | undefined;
  /** This process's claim owner id; default a random UUID. */
  owner?: string;
  claimTtlMs?: number;
  pollMs?: number;
  /** Called when this process waited on another process's claim, with how the wait ended. */
  onWait?: (result: "found" | "took_over") => void;
}

export interface FleetFlight {
  /**
   * The bytes `find` finds, or else the bytes `make` makes, made once across the fleet:
   * callers in this process share one promise per key, and processes share the database's
   * claim on it; a process that finds the key claimed polls until the holder has stored the
   * bytes (then `find` finds them) or given up (then it claims and makes them itself).
   * `make` must store what it makes where `find` looks before it returns.
   */
  run(
    key: string,
    find: () => Promise<Buffer | undefined>,
    make: () => Promise<Buffer>,
  ): Promise<Buffer>;
}

export function createFleetFlight(options: FleetFlightOptions): FleetFlight {
  const owner = options.owner ?? randomUUID();
  const claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
  const pollMs = options.pollMs ?? DEFAULT_CLAIM_POLL_MS;
  const inFlight = new Map<string, Promise<Buffer>>();

  async function acrossProcesses(
    key: string,
    find: () => Promise<Buffer | undefined>,
    make: () => Promise<Buffer>,
  ): Promise<Buffer> {
    const db = options.db;
    if (!db) return (await find()) ?? (await make());
    let waited = false;
    for (;;) {
      const found = await find();
      if (found) {
        if (waited) options.onWait?.("found");
        return found;
      }
      if (await claimFlight(db, key, owner, claimTtlMs)) {
        try {
          // Look again: the previous holder may have stored the bytes and released its claim
          // between our first look and our claim.
          const stored = await find();
          if (stored) {
            if (waited) options.onWait?.("found");
            return stored;
          }
          if (waited) options.onWait?.("took_over");
          return await make();
        } finally {
          await releaseFlight(db, key, owner);
        }
      }
      waited = true;
      // Released (done, or failed: then we try ourselves) or expired (the holder died).
      do {
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      } while (await flightHeld(db, key));
    }
  }

  return {
    run(key, find, make) {
      const pending = inFlight.get(key);
      if (pending) return pending;
      // The first look is inside the shared promise, so no caller can miss the store and then
      // find no work in flight because another one just finished.
      const work = acrossProcesses(key, find, make).finally(() => {
        if (inFlight.get(key) === work) inFlight.delete(key);
      });
      inFlight.set(key, work);
      return work;
    },
  };
}
