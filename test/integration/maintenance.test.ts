import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../src/observability/logger.js";
import { type Db, openPglite, openPostgres } from "../../src/store/db.js";
import { claimJobs } from "../../src/store/jobs.js";
import { startMaintenance } from "../../src/store/maintenance.js";
import { migrate } from "../../src/store/migrate.js";
import { createTestDatabase } from "../helpers/backends.js";

const log = createLogger("silent");
const DUE_JOBS = 12_000;

/** The plan PostgreSQL picks for the "due" half of a claim. */
async function duePlan(db: Db): Promise<string> {
  const rows = await db.query<{ "QUERY PLAN": string }>(
    `explain select id from jobs
     where state in ('queued', 'retrying') and run_at <= now() and kind = any($1::text[])
     order by run_at, id limit 1 for update skip locked`,
    [["render"]],
  );
  return rows.map((row) => row["QUERY PLAN"]).join("\n");
}

describe("embedded database maintenance (PGlite runs no autovacuum)", () => {
  let dir: string;
  let db: Db;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "shotlist-maintenance-"));
    db = await openPglite(join(dir, "db"));
    await migrate(db);
    await db.query(
      `insert into jobs (kind, key, payload, max_attempts)
       select 'render', 'render:' || g, '{}'::jsonb, 5 from generate_series(1, ${DUE_JOBS}) g`,
    );
  });

  after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("without statistics a claim reads and sorts every due job; after maintenance it walks the index", async () => {
    const before = await duePlan(db);
    assert.match(before, /Sort/, `expected a sort before maintenance:\n${before}`);

    const maintenance = startMaintenance(db, log, { intervalMs: 60_000 });
    maintenance.noteChanges(DUE_JOBS);
    await maintenance.runNow();
    await maintenance.stop();

    const afterPlan = await duePlan(db);
    assert.doesNotMatch(afterPlan, /Sort/, `expected no sort after maintenance:\n${afterPlan}`);
    assert.match(afterPlan, /Index Scan using jobs_ready/);
    const [claimed] = await claimJobs(db, "w", 1, 30_000, ["render"]);
    assert.equal(claimed?.id, 1, "the oldest due job is claimed first");
  });

  it("runs on the interval once enough rows changed, and not before", async () => {
    const [{ count: analyzedBefore } = { count: 0 }] = await db.query<{ count: number }>(
      "select analyze_count::integer as count from pg_stat_user_tables where relname = 'jobs'",
    );
    const maintenance = startMaintenance(db, log, { intervalMs: 50, minChanges: 10 });
    maintenance.noteChanges(5);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const [{ count: afterFew } = { count: 0 }] = await db.query<{ count: number }>(
      "select analyze_count::integer as count from pg_stat_user_tables where relname = 'jobs'",
    );
    assert.equal(afterFew, analyzedBefore, "5 changes are below the threshold of 10");
    maintenance.noteChanges(5);
    const deadline = Date.now() + 5_000;
    let afterEnough = afterFew;
    while (afterEnough === afterFew && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      [{ count: afterEnough } = { count: 0 }] = await db.query<{ count: number }>(
        "select analyze_count::integer as count from pg_stat_user_tables where relname = 'jobs'",
      );
    }
    await maintenance.stop();
    assert.ok(afterEnough > afterFew, "10 changes trigger a VACUUM ANALYZE on the next tick");
  });
});

describe("maintenance on PostgreSQL is left to autovacuum", () => {
  it("does nothing and never fails", async () => {
    const database = await createTestDatabase();
    const db = await openPostgres(database.url);
    try {
      await migrate(db);
      const maintenance = startMaintenance(db, log, { intervalMs: 20, minChanges: 1 });
      maintenance.noteChanges(100);
      await maintenance.runNow();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await maintenance.stop();
      const [row] = await db.query<{ count: number }>(
        "select analyze_count::integer as count from pg_stat_user_tables where relname = 'jobs'",
      );
      assert.equal(row?.count, 0, "no manual ANALYZE was run on PostgreSQL");
    } finally {
      await db.close();
      await database.drop();
    }
  });
});
