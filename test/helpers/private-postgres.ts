import { execFile, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./net.js";

const run = promisify(execFile);

/**
 * A PostgreSQL server of one test file's own, for tests that stop or restart the server: the
 * machine's server on 5432 is shared by every test file running at the same time and must never
 * be restarted. Started with initdb in a temp folder on a free port; fsync off and small buffers
 * keep start-up well under a second (the data is thrown away).
 */
export interface PrivatePostgres {
  readonly port: number;
  /** A connection URL for `database` (default `postgres`). */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** `pg_ctl stop`: `fast` ends sessions cleanly, `immediate` is a crash (recovery on start). */
  stop(mode: "fast" | "immediate"): Promise<void>;
  /** `pg_ctl start`, waiting until the server accepts connections. */
  start(): Promise<void>;
  /** Whether the server is running (its postmaster.pid exists). */
  running(): boolean;
  /** The server's log so far (for a failing test's message). */
  log(): string;
  /** Stops the server (immediate) and deletes its folder. Safe to call twice. */
  destroy(): Promise<void>;
}

/** Where the PostgreSQL server binaries are: SHOTLIST_TEST_PG_BIN, else the newest Debian one. */
export function postgresBinDir(): string {
  const fromEnv = process.env.SHOTLIST_TEST_PG_BIN;
  if (fromEnv) return fromEnv;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((version) => existsSync(join(root, version, "bin", "pg_ctl")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0]) {
    throw new Error(`no PostgreSQL server binaries under ${root}; set SHOTLIST_TEST_PG_BIN`);
  }
  return join(root, versions[0], "bin");
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  // PostgreSQL refuses to run as root; tests do, so the server runs as the postgres user.
  const asRoot = process.getuid?.() === 0;
  const command = (tool: string, args: readonly string[]): [string, string[]] =>
    asRoot
      ? ["runuser", ["-u", "postgres", "--", join(bin, tool), ...args]]
      : [join(bin, tool), [...args]];
  const root = mkdtempSync(join(tmpdir(), "shotlist-pg-"));
  if (asRoot) {
    const uid = Number(spawnSync("id", ["-u", "postgres"]).stdout.toString().trim());
    const gid = Number(spawnSync("id", ["-g", "postgres"]).stdout.toString().trim());
    chownSync(root, uid, gid);
  }
  const dataDir = join(root, "data");
  const logFile = join(root, "server.log");
  const port = await freePort();
  const tool = async (name: string, args: readonly string[]) => {
    const [file, argv] = command(name, args);
    try {
      await run(file, argv, { timeout: 60_000 });
    } catch (error) {
      const log = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-4000) : "";
      throw new Error(`${name} ${args.join(" ")} failed: ${(error as Error).message}\n${log}`, {
        cause: error,
      });
    }
  };
  let destroyed = false;
  // If the test process exits without its after() hook (a crash), do not leave a server behind.
  const onExit = () => {
    const [file, argv] = command("pg_ctl", ["-D", dataDir, "-m", "immediate", "stop"]);
    spawnSync(file, argv, { stdio: "ignore" });
    rmSync(root, { recursive: true, force: true });
  };
  process.once("exit", onExit);

  await tool("initdb", [
    "-D",
    dataDir,
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--no-sync",
    "--no-instructions",
  ]);
  const serverOptions = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${root}`,
    // Throwaway data: no fsync. Commits stay synchronous so that an immediate stop (a crash of
    // the server, not of the machine) loses nothing that was acknowledged, as in production.
    "-c fsync=off",
    "-c full_page_writes=off",
    "-c shared_buffers=16MB",
    "-c max_connections=60",
  ].join(" ");
  const start = () =>
    tool("pg_ctl", ["-D", dataDir, "-l", logFile, "-o", serverOptions, "-w", "-t", "60", "start"]);
  await start();

  const url = (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const admin = new pg.Client({ connectionString: url() });
      await admin.connect();
      try {
        await admin.query(`create database ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    stop: (mode) => tool("pg_ctl", ["-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"]),
    start,
    running: () => existsSync(join(dataDir, "postmaster.pid")),
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      process.off("exit", onExit);
      // postmaster.pid exists while the server runs (a test may have stopped it and failed).
      if (existsSync(join(dataDir, "postmaster.pid"))) {
        await tool("pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
