import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { loadSettings, type Settings } from "../../src/config/env.js";
import { createLogger } from "../../src/observability/logger.js";
import { createRuntime, type Runtime, type RuntimeOptions } from "../../src/runtime.js";

export type Backend = "pglite" | "postgres";
/** Every integration suite runs on both (STYLE §5). */
export const BACKENDS: readonly Backend[] = ["pglite", "postgres"];

/** The machine's PostgreSQL; each test file gets a database of its own. */
export const ADMIN_DATABASE_URL =
  process.env.SHOTLIST_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `shotlist_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

export interface TestRuntime {
  runtime: Runtime;
  settings: Settings;
  dataDir: string;
  databaseUrl: string | undefined;
  cleanup(): Promise<void>;
}

/** A real runtime on the given backend, in a fresh temp folder and a fresh database. */
export async function createTestRuntime(
  backend: Backend,
  env: Record<string, string> = {},
  options: RuntimeOptions = {},
): Promise<TestRuntime> {
  const dataDir = mkdtempSync(join(tmpdir(), "shotlist-test-"));
  const database = backend === "postgres" ? await createTestDatabase() : undefined;
  const settings = loadSettings({
    SHOTLIST_DATA_DIR: dataDir,
    SHOTLIST_RETRY_BASE_MS: "20",
    SHOTLIST_LEASE_MS: "2000",
    PORT: "0",
    ...(database ? { SHOTLIST_DATABASE_URL: database.url } : {}),
    ...env,
  });
  const runtime = await createRuntime(
    settings,
    createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
    options,
  );
  return {
    runtime,
    settings,
    dataDir,
    databaseUrl: database?.url,
    async cleanup() {
      await runtime.close();
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `condition` until it returns a truthy value or the deadline passes (no blind sleeps). */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | false | null>,
  what: string,
  timeoutMs = 60_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
