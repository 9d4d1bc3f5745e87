/**
 * The Db interface answers alike on both engines. On PGlite every row statement is kept prepared
 * (src/store/pglite-statements.ts), so these cases are the ones a statement cache can get wrong:
 * value types both ways, a schema change under a prepared statement, errors in and out of a
 * transaction, statements of one transaction in flight together, and more distinct statements
 * than the cache keeps.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Db, openPglite, openPostgres, TRANSACTION_ROLLED_BACK } from "../../src/store/db.js";
import { BACKENDS, createTestDatabase } from "../helpers/backends.js";

for (const backend of BACKENDS) {
  describe(`Db statements on ${backend}`, () => {
    let db: Db;
    let drop: (() => Promise<void>) | undefined;
    let database: { url: string; drop(): Promise<void> } | undefined;
    const databaseOf = async () => {
      if (!database) throw new Error("no test database on this backend");
      return database;
    };

    before(async () => {
      if (backend === "postgres") {
        database = await createTestDatabase();
        drop = database.drop;
        db = await openPostgres(database.url);
      } else {
        db = await openPglite(undefined);
      }
      await db.exec(
        `create table things (
           id bigserial primary key,
           name text not null unique,
           tags text[] not null default '{}',
           doc jsonb,
           bytes bytea,
           at timestamptz,
           ratio double precision,
           flag boolean
         )`,
      );
    });
    after(async () => {
      await db.close();
      await drop?.();
    });

    it("passes values of every type the code uses both ways, the same on every call", async () => {
      const at = new Date("2026-11-27T04:05:06.789Z");
      const insert =
        "insert into things (name, tags, doc, bytes, at, ratio, flag) values ($1, $2, $3, $4, $5, $6, $7) returning id, name, tags, doc, bytes, at, ratio, flag";
      const first = await db.query(insert, [
        "alpha",
        ["a", "b,c", 'quote"d'],
        { nested: { list: [1, 2] }, text: "é" },
        Buffer.from([0, 1, 254, 255]),
        at,
        0.125,
        true,
      ]);
      const second = await db.query(insert, ["beta", [], null, null, null, null, false]);
      // pg answers bytea as a Buffer, PGlite as a Uint8Array: the bytes are what count.
      for (const row of [...first, ...second])
        if (row.bytes) row.bytes = Buffer.from(row.bytes as Uint8Array);
      assert.deepEqual(first, [
        {
          id: 1,
          name: "alpha",
          tags: ["a", "b,c", 'quote"d'],
          doc: { nested: { list: [1, 2] }, text: "é" },
          bytes: Buffer.from([0, 1, 254, 255]),
          at,
          ratio: 0.125,
          flag: true,
        },
      ]);
      assert.deepEqual(second, [
        {
          id: 2,
          name: "beta",
          tags: [],
          doc: null,
          bytes: null,
          at: null,
          ratio: null,
          flag: false,
        },
      ]);
      const counted = await db.query<{ count: number }>(
        "select count(*) as count from things where name = any($1::text[])",
        [["alpha", "beta", "gamma"]],
      );
      assert.deepEqual(counted, [{ count: 2 }]);
    });

    it("sees a schema change under a statement it ran before", async () => {
      const select = "select * from things where name = $1";
      assert.deepEqual(Object.keys((await db.query(select, ["alpha"]))[0]!).length, 8);
      await db.exec("alter table things add column note text default 'n'");
      const [row] = await db.query<{ note: string }>(select, ["alpha"]);
      assert.equal(row?.note, "n");
      await db.exec("alter table things drop column note");
      assert.equal(Object.keys((await db.query(select, ["alpha"]))[0]!).length, 8);
    });

    it("reports a failed statement with its SQLSTATE and keeps working", async () => {
      const insert = "insert into things (name) values ($1)";
      await assert.rejects(db.query(insert, ["alpha"]), (error: Error & { code?: string }) => {
        assert.equal(error.code, "23505");
        return true;
      });
      await assert.rejects(db.query("selec nothing", []), /syntax error/);
      await assert.rejects(db.query("select $1::integer", ["not a number"]), /invalid input/);
      await db.query(insert, ["gamma"]);
      const rows = await db.query<{ name: string }>("select name from things order by id");
      assert.deepEqual(
        rows.map((row) => row.name),
        ["alpha", "beta", "gamma"],
      );
    });

    it("rolls back a transaction whose work throws, and commits one that does not", async () => {
      const insert = "insert into things (name) values ($1)";
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query(insert, ["delta"]);
          await tx.query(insert, ["alpha"]);
        }),
        (error: Error & { code?: string }) => error.code === "23505",
      );
      assert.deepEqual(await db.query("select id from things where name = 'delta'"), []);
      const ids = await db.transaction(async (tx) => {
        // Statements of one transaction in flight together.
        const rows = await Promise.all(
          ["d1", "d2", "d3", "d4"].map((name) =>
            tx.query<{ id: number }>(`${insert} returning id`, [name]),
          ),
        );
        return rows.map(([row]) => row!.id);
      });
      assert.equal(new Set(ids).size, 4);
      const [count] = await db.query<{ count: number }>(
        "select count(*)::integer as count from things where name like 'd_'",
      );
      assert.equal(count?.count, 4);
    });

    it("rejects a transaction whose work caught a failed statement: nothing of it is kept", async () => {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query("insert into things (name) values ($1)", ["epsilon"]);
          await tx.query("insert into things (name) values ($1)", ["alpha"]).catch(() => {});
          return "done";
        }),
        new RegExp(TRANSACTION_ROLLED_BACK),
      );
      assert.deepEqual(await db.query("select id from things where name = 'epsilon'"), []);
    });

    it("refuses a transaction's handle after the transaction ended", async () => {
      let handle: Parameters<Parameters<Db["transaction"]>[0]>[0] | undefined;
      await db.transaction(async (tx) => {
        handle = tx;
      });
      await assert.rejects(handle!.query("select 1"));
    });

    it("lets a transaction in flight finish before close, and refuses statements after it", async () => {
      const own =
        backend === "postgres"
          ? await openPostgres((await databaseOf()).url)
          : await openPglite(undefined);
      await own.exec("create table if not exists marks (name text primary key)");
      let release: () => void = () => {};
      const paused = new Promise<void>((resolve) => {
        release = resolve;
      });
      const committed = own.transaction(async (tx) => {
        await tx.query("insert into marks (name) values ($1)", ["before close"]);
        await paused;
        await tx.query("insert into marks (name) values ($1)", ["after close was asked"]);
        return (
          await tx.query<{ count: number }>("select count(*)::integer as count from marks")
        )[0]?.count;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closed = own.close();
      let closedFirst = false;
      void closed.then(() => {
        closedFirst = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(closedFirst, false, "close waited for the transaction");
      release();
      assert.equal(await committed, 2);
      await closed;
      await assert.rejects(own.query("select 1"));
    });

    it("runs more distinct statements than it keeps prepared, and each answers its own", async () => {
      for (let index = 0; index < 620; index++) {
        const [row] = await db.query<{ value: number }>(
          `select $1::integer + ${index} as value`,
          [1],
        );
        assert.equal(row?.value, index + 1);
      }
      const [row] = await db.query<{ value: number }>("select $1::integer + 0 as value", [7]);
      assert.equal(row?.value, 7);
    });
  });
}
