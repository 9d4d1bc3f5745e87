import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { type Db, openPostgres } from "../../src/store/db.js";
import { ADMIN_DATABASE_URL, createTestDatabase, waitFor } from "../helpers/backends.js";

// PostgreSQL only: PGlite runs in the process and has no connection to lose. The server ending
// a connection is what a restart (`pg_ctl restart`), a failover or an idle-timeout proxy does;
// pg_terminate_backend does the same to one connection without touching the shared server.
describe("the PostgreSQL pool when the server ends its connections", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Db;
  let admin: pg.Client;
  const idleErrors: Error[] = [];
  before(async () => {
    database = await createTestDatabase();
    db = await openPostgres(database.url, { onIdleError: (error) => idleErrors.push(error) });
    await db.exec("create table marks (label text primary key)");
    admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await db.close();
    await database.drop();
  });

  const terminate = async (pid: number) => {
    const [row] =
      // With a timeout, pg_terminate_backend waits until the backend has exited.
      (
        await admin.query<{ ended: boolean }>("select pg_terminate_backend($1, 5000) as ended", [
          pid,
        ])
      ).rows;
    assert.equal(row?.ended, true, `backend ${pid} was terminated`);
  };
  const marks = async () =>
    (await db.query<{ label: string }>("select label from marks order by label")).map(
      (row) => row.label,
    );

  it("rejects a transaction whose connection ends between statements, without crashing the process", async () => {
    // Before the fix, pg emitted "error" on the checked-out client with nobody listening, and
    // Node ended the process: a worker died with its jobs whenever PostgreSQL restarted.
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query("insert into marks values ('between')");
        const [row] = await tx.query<{ pid: number }>("select pg_backend_pid() as pid");
        await terminate(row?.pid ?? 0);
        // Give the termination notice time to arrive while no query is running.
        await admin.query("select pg_sleep(0.2)");
        await tx.query("insert into marks values ('after')");
      }),
    );
    assert.deepEqual(await marks(), [], "the half-done transaction left nothing");
    await db.transaction((tx) => tx.query("insert into marks values ('next')"));
    assert.deepEqual(await marks(), ["next"], "the pool opened a new connection");
  });

  it("rejects a transaction whose connection ends during a query", async () => {
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query("insert into marks values ('during')");
        const [row] = await tx.query<{ pid: number }>("select pg_backend_pid() as pid");
        // Caught at once, so its rejection is not unhandled while the termination runs.
        const sleeping = tx.query("select pg_sleep(30)").then(
          () => new Error("pg_sleep(30) was not interrupted"),
          (error: unknown) => error,
        );
        await terminate(row?.pid ?? 0);
        throw await sleeping;
      }),
      /terminat/,
    );
    assert.deepEqual(await marks(), ["next"]);
  });

  it("replaces idle connections the server ended", async () => {
    // Fill the pool with a few idle connections, then end them all from outside.
    await Promise.all([1, 2, 3].map(() => db.query("select pg_sleep(0.05)")));
    const before = idleErrors.length;
    // The admin client is on another database: every backend of the test database is the pool's.
    const { rows: ours } = await admin.query<{ pid: number }>(
      "select pid from pg_stat_activity where datname = $1",
      [new URL(database.url).pathname.slice(1)],
    );
    assert.ok(ours.length >= 1, "the pool holds idle connections");
    for (const backend of ours) await terminate(backend.pid);
    await waitFor(
      async () => idleErrors.length >= before + ours.length,
      "the pool to hear that its idle connections ended",
      10_000,
    );
    for (let i = 0; i < 5; i++) await db.query("select 1");
    const { rows: now } = await admin.query<{ pid: number }>(
      "select pid from pg_stat_activity where datname = $1",
      [new URL(database.url).pathname.slice(1)],
    );
    assert.ok(now.length >= 1, "the pool connected again");
    assert.ok(now.every((backend) => !ours.some((old) => old.pid === backend.pid)));
  });
});
