import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Db } from "./db.js";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
// Any constant both engines share; serialises concurrent migrators (two processes starting).
const MIGRATION_LOCK = 7_391_201;

export interface MigrationResult {
  applied: string[];
  current: number;
}

/**
 * Applies the numbered plain-SQL migrations that are not yet applied, each in its own
 * transaction that records its row first (graphile-worker's discipline), under an advisory
 * lock so two processes migrating at once cannot both win.
 */
export async function migrate(db: Db): Promise<MigrationResult> {
  await db.exec(`create table if not exists schema_migrations (
    version integer primary key,
    name text not null,
    applied_at timestamptz not null default now()
  )`);
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name))
    .sort();
  const applied: string[] = [];
  for (const file of files) {
    const version = Number(file.slice(0, 4));
    const sql = readFileSync(`${MIGRATIONS_DIR}${file}`, "utf8");
    const ran = await db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      const done = await tx.query("select 1 from schema_migrations where version = $1", [version]);
      if (done.length > 0) return false;
      await tx.query("insert into schema_migrations (version, name) values ($1, $2)", [
        version,
        file,
      ]);
      await tx.exec(sql);
      return true;
    });
    if (ran) applied.push(file);
  }
  const [row] = await db.query<{ version: number | null }>(
    "select max(version) as version from schema_migrations",
  );
  return { applied, current: row?.version ?? 0 };
}
