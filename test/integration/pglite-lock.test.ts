/**
 * PGlite is one process's database (README "Scale out"): a second opener of the same data
 * folder, in this process or another, is refused with a clear error and the holder keeps
 * working; a lock left by a process that is gone is taken over.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Db, openPglite, PGLITE_LOCK_FILE } from "../../src/store/db.js";
import { migrate } from "../../src/store/migrate.js";
import { runCli } from "../helpers/cli.js";

describe("the embedded database's folder lock", () => {
  let dataDir: string;
  let dbDir: string;
  let db: Db | undefined;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "shotlist-lock-"));
    dbDir = join(dataDir, "db");
    db = await openPglite(dbDir);
    await migrate(db);
    await db.query(
      "insert into products (sku, title, category, input_hash) values ('LOCK-1', 'Kept', 'home', 'x')",
    );
  });
  after(async () => {
    await db?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("refuses a second open in this process, naming the holder, and the holder keeps working", async () => {
    await assert.rejects(openPglite(dbDir), (error: Error) => {
      assert.match(error.message, new RegExp(`already open in this process \\(${process.pid}\\)`));
      return true;
    });
    const rows = await db!.query<{ title: string }>(
      "select title from products where sku = 'LOCK-1'",
    );
    assert.deepEqual(rows, [{ title: "Kept" }]);
  });

  it("refuses another process (`shotlist coverage` on the same folder) with a clear error", async () => {
    const cli = runCli(["coverage"], { SHOTLIST_DATA_DIR: dataDir });
    const code = await cli.exited;
    assert.notEqual(code, 0, cli.output());
    assert.match(cli.output(), new RegExp(`open in process ${process.pid};`));
    assert.match(cli.output(), /SHOTLIST_DATABASE_URL/);
    assert.equal(readFileSync(join(dbDir, PGLITE_LOCK_FILE), "utf8").trim(), String(process.pid));
    const rows = await db!.query("select sku from products where sku = 'LOCK-1'");
    assert.equal(rows.length, 1, "nothing lost");
  });

  it("is released on close, and a lock left by a process that is gone is taken over", async () => {
    await db!.close();
    db = undefined;
    assert.throws(() => readFileSync(join(dbDir, PGLITE_LOCK_FILE)), /ENOENT/);
    // A process that held the folder and died without closing (SIGKILL): its pid is gone.
    const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
    writeFileSync(join(dbDir, PGLITE_LOCK_FILE), `${gone.stdout.toString()}\n`);
    db = await openPglite(dbDir);
    assert.equal(readFileSync(join(dbDir, PGLITE_LOCK_FILE), "utf8").trim(), String(process.pid));
    // A lock naming this process's own pid that this process does not hold: an earlier process
    // with the same pid (a container restarted, its server as pid 1 again) left it.
    await db.close();
    writeFileSync(join(dbDir, PGLITE_LOCK_FILE), `${process.pid}\n`);
    db = await openPglite(dbDir);
    const rows = await db.query<{ title: string }>(
      "select title from products where sku = 'LOCK-1'",
    );
    assert.deepEqual(rows, [{ title: "Kept" }]);
  });
});
