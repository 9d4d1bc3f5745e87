import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { pgliteStatements } from "./pglite-statements.js";
import { TRANSACTION_ROLLED_BACK, transactionHandle } from "./transaction.js";

export { TRANSACTION_ROLLED_BACK };

/** What a repository function needs: parameterised queries and multi-statement text. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** PGlite or PostgreSQL behind one tiny interface: same SQL, same migrations (DESIGN §5). */
export interface Db extends Queryable {
  readonly kind: "pglite" | "postgres";
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// int8 as a JS number on both engines: ids and counts stay far below 2^53, and one
// representation keeps repository code free of engine checks.
const INT8_OID = 20;
const parseInt8 = (value: string): number => Number(value);

/** The file in a PGlite data folder naming the process that has it open. */
export const PGLITE_LOCK_FILE = "shotlist.lock";

/** Data folders this process has open (a lock file naming our pid may be an earlier process's). */
const heldFolders = new Set<string>();

/**
 * Takes the data folder for this process: PGlite is PostgreSQL in single-user mode, and two
 * processes writing one folder corrupt it. A lock left by a process that is gone (SIGKILL,
 * power loss) is taken over, also when it names this process's pid (a container restarted with
 * the same pid) but this process does not hold the folder. Returns the release.
 */
function lockPgliteFolder(dataDir: string): () => void {
  const path = join(dataDir, PGLITE_LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (heldFolders.has(path)) {
      throw new Error(
        `the embedded database in ${dataDir} is already open in this process (${process.pid})`,
      );
    }
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" });
      heldFolders.add(path);
      return () => {
        heldFolders.delete(path);
        rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number.parseInt(readFileSync(path, "utf8"), 10);
    if (
      Number.isInteger(holder) &&
      holder > 0 &&
      holder !== process.pid &&
      processIsAlive(holder)
    ) {
      throw new Error(
        `the embedded database in ${dataDir} is open in process ${holder}; ` +
          "PGlite is one process's database: stop that process, use another SHOTLIST_DATA_DIR, " +
          `or set SHOTLIST_DATABASE_URL for several processes (if no process uses it, delete ${path})`,
      );
    }
    rmSync(path, { force: true });
  }
  throw new Error(`could not take ${path}: another process keeps taking it`);
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function openPglite(dataDir: string | undefined): Promise<Db> {
  let unlock = () => {};
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
    unlock = lockPgliteFolder(dataDir);
  }
  let lite: PGlite;
  try {
    lite = new PGlite(dataDir, { parsers: { [INT8_OID]: parseInt8 } });
    await lite.waitReady;
  } catch (error) {
    unlock();
    throw error;
  }
  const statements = pgliteStatements(lite);
  return {
    kind: "pglite",
    ...statements,
    close: async () => {
      try {
        await statements.close();
      } finally {
        unlock();
      }
    },
  };
}

export interface PostgresOptions {
  /** Connections in the pool; default 10. */
  max?: number;
  /** Called when an idle connection fails (e.g. the server restarted); default ignores it. */
  onIdleError?: (error: Error) => void;
}

export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: 10_000,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID
          ? parseInt8
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client's error (server restart, network cut) must not crash the process: the pool
  // drops that client and the next query opens a new connection.
  pool.on("error", (error) => options.onIdleError?.(error));
  const wrap = (target: pg.Pool | pg.PoolClient): Queryable => ({
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      const result = await target.query(sql, params as unknown[]);
      return result.rows as Row[];
    },
    async exec(sql: string) {
      await target.query(sql);
    },
  });
  const root = wrap(pool);
  await root.query("select 1");
  return {
    kind: "postgres",
    query: root.query,
    exec: root.exec,
    async transaction(work) {
      const client = await pool.connect();
      let broken: Error | undefined;
      // A checked-out client has no listener of the pool's: when the server ends the connection
      // (restart, pg_terminate_backend) pg emits "error" on it, and an unheard "error" event
      // kills the process. Hear it, and destroy the client at release; the query in flight (or
      // the next one) fails on its own and the transaction rolls back or throws.
      const onError = (error: Error) => {
        broken = error;
      };
      client.on("error", onError);
      const tx = transactionHandle(wrap(client));
      try {
        await client.query("begin");
        const result = await work(tx.handle);
        tx.end();
        const committed = await client.query("commit");
        // COMMIT in a transaction where a statement failed rolls back and says so; the work may
        // have caught that statement's error, but nothing it wrote was kept.
        if (committed.command === "ROLLBACK") throw new Error(TRANSACTION_ROLLED_BACK);
        return result;
      } catch (error) {
        tx.end();
        try {
          await client.query("rollback");
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        throw error;
      } finally {
        client.off("error", onError);
        // A client whose connection failed or whose rollback failed is in an unknown state:
        // destroy it, do not reuse it.
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/** PostgreSQL when a URL is given, else PGlite in `dataDir`. */
export function openDb(settings: {
  databaseUrl: string | undefined;
  dataDir: string;
}): Promise<Db> {
  return settings.databaseUrl
    ? openPostgres(settings.databaseUrl)
    : openPglite(`${settings.dataDir}/db`);
}
