import { Mutex, type PGlite, parse, protocol } from "@electric-sql/pglite";
import type { Db, Queryable } from "./db.js";
import { TRANSACTION_ROLLED_BACK, transactionHandle } from "./transaction.js";

type BackendMessage = Awaited<ReturnType<PGlite["execProtocol"]>>["messages"][number];

const { serialize } = protocol;

/**
 * Statements kept prepared at most. The code holds a few dozen distinct statements; past the
 * limit (SQL built with a varying text) every one is dropped and prepared again as it is used.
 */
const MAX_PREPARED_STATEMENTS = 500;
/**
 * What is kept prepared: row statements. Anything else (DDL, SET, TRUNCATE) runs unprepared and
 * drops every prepared statement, since a schema change can change what a statement returns.
 */
const PREPARABLE = /^\s*(select|insert|update|delete|with)\b/i;

interface PreparedStatement {
  name: string;
  /** Parameter type OIDs, as the server inferred them: they choose each value's serializer. */
  paramTypes: number[];
  /** The statement's row description (absent when it returns no rows). */
  rowDescription: BackendMessage | undefined;
}

/**
 * PGlite with named prepared statements. PGlite's `query` parses, describes and plans a statement
 * on every call (six protocol steps); here each distinct SQL text is parsed and described once,
 * and a call is one Bind + Execute + Sync batch, run by the backend in one synchronous step.
 * Measured on a primary-key select: 0.33 ms of CPU per call through `query`, 0.07 ms prepared;
 * the job claim: 0.67 ms against 0.10 ms.
 *
 * PGlite is one backend, so everything here goes through two locks as PGlite's own methods do:
 * one held by a transaction (or a lone statement) for its whole length, one per statement so the
 * statements of one transaction never interleave their protocol messages. `close` waits for both,
 * as PGlite's own close does, so a transaction in flight ends before the backend does. PGlite's
 * own `query`, `exec`, `transaction` and `close` must not be used beside this on the same instance.
 */
export function pgliteStatements(lite: PGlite): Omit<Db, "kind"> {
  const transactionLock = new Mutex();
  const statementLock = new Mutex();
  const prepared = new Map<string, PreparedStatement>();
  let nextName = 1;
  let closed = false;

  const run = async (...messages: Uint8Array[]): Promise<BackendMessage[]> =>
    (await lite.execProtocol(concat(messages), { syncToFs: false })).messages;

  async function prepare(sql: string): Promise<PreparedStatement> {
    if (prepared.size >= MAX_PREPARED_STATEMENTS) await forgetAll();
    const name = `shotlist_${nextName++}`;
    const messages = await run(
      serialize.parse({ name, text: sql }),
      serialize.describe({ type: "S", name }),
      serialize.sync(),
    );
    const statement: PreparedStatement = {
      name,
      paramTypes: parse.parseDescribeStatementResults(messages),
      rowDescription: messages.find((message) => message.name === "rowDescription"),
    };
    prepared.set(sql, statement);
    return statement;
  }

  /** Drops every prepared statement (after DDL, or past the limit). */
  async function forgetAll(): Promise<void> {
    if (prepared.size === 0) return;
    const closes = [...prepared.values()].map((statement) =>
      serialize.close({ type: "S", name: statement.name }),
    );
    prepared.clear();
    // Close is allowed in any state, an aborted transaction included.
    await lite.execProtocol(concat([...closes, serialize.sync()]), {
      syncToFs: false,
      throwOnError: false,
    });
  }

  async function runPrepared<Row>(sql: string, params: readonly unknown[]): Promise<Row[]> {
    const statement = prepared.get(sql) ?? (await prepare(sql));
    // As PGlite's query serialises parameters: by the type the server inferred for each.
    const values = params.map((param, index) => {
      if (param === null || param === undefined) return null;
      const serializer = lite.serializers[statement.paramTypes[index] ?? 0];
      return serializer ? serializer(param) : String(param);
    });
    const messages = await run(
      serialize.bind({ statement: statement.name, values }),
      serialize.execute({}),
      serialize.sync(),
    );
    const described = statement.rowDescription ? [statement.rowDescription, ...messages] : messages;
    return (parse.parseResults(described, lite.parsers)[0]?.rows ?? []) as Row[];
  }

  async function statementIn<Row>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return statementLock.runExclusive(async () => {
      whileOpen();
      if (PREPARABLE.test(sql)) return runPrepared<Row>(sql, params);
      await forgetAll();
      return (await lite.query<Row>(sql, params as unknown[])).rows;
    });
  }

  async function execIn(sql: string): Promise<void> {
    await statementLock.runExclusive(async () => {
      whileOpen();
      await forgetAll();
      await lite.exec(sql);
    });
  }

  function whileOpen(): void {
    if (closed) throw new Error("the embedded database is closed");
  }

  const statements: Queryable = { query: statementIn, exec: execIn };
  return {
    query: (sql, params) => transactionLock.runExclusive(() => statementIn(sql, params)),
    exec: (sql) => transactionLock.runExclusive(() => execIn(sql)),
    transaction: (work) =>
      transactionLock.runExclusive(async () => {
        whileOpen();
        const tx = transactionHandle(statements);
        await lite.exec("begin");
        try {
          const result = await work(tx.handle);
          tx.end();
          const [committed] = await lite.exec("commit");
          // COMMIT in a transaction that failed rolls back and says so.
          if (committed?.command === "ROLLBACK") throw new Error(TRANSACTION_ROLLED_BACK);
          return result;
        } catch (error) {
          if (!tx.ended) {
            tx.end();
            await lite.exec("rollback");
          }
          throw error;
        }
      }),
    close: () =>
      transactionLock.runExclusive(() =>
        statementLock.runExclusive(async () => {
          if (closed) return;
          closed = true;
          await lite.close();
        }),
      ),
  };
}

function concat(messages: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(messages);
}
