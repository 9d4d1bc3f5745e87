import type { Queryable } from "./db.js";

/** What a transaction throws when COMMIT rolled back (a statement in it failed), on both engines. */
export const TRANSACTION_ROLLED_BACK =
  "the transaction was rolled back at commit: a statement in it failed";

/**
 * The handle a transaction's work gets, refusing every call once the transaction has ended: a
 * handle kept past it would run on a connection that has moved on (pg's pool hands the client
 * to someone else; PGlite's one backend is in another transaction or none).
 */
export function transactionHandle(tx: Queryable): {
  handle: Queryable;
  end(): void;
  readonly ended: boolean;
} {
  let open = true;
  const whileOpen = () => {
    if (!open) throw new Error("Transaction is closed");
  };
  return {
    handle: {
      query: async (sql, params) => {
        whileOpen();
        return tx.query(sql, params);
      },
      exec: async (sql) => {
        whileOpen();
        await tx.exec(sql);
      },
    },
    end: () => {
      open = false;
    },
    get ended() {
      return !open;
    },
  };
}
