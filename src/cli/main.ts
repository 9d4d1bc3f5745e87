#!/usr/bin/env node
import { availableParallelism } from "node:os";
import { Command } from "commander";
import { loadSettings } from "../config/env.js";
import { errorMessage, ShotlistError } from "../domain/errors.js";
import type { Runtime, RuntimeOptions } from "../runtime.js";
import type { Db } from "../store/db.js";

// Commands load their modules when they run: `import --dry-run` then never loads the database,
// HTTP or queue code, which keeps its peak memory low on a 100,000-row file (bench/).

const print = (line: string) => process.stdout.write(`${line}\n`);
/** A process that answers HTTP keeps cut-outs off its event loop (decision 0009). */
const HTTP_PROCESS: RuntimeOptions = { pixelThreads: availableParallelism() };

async function withRuntime<T>(
  work: (runtime: Runtime) => Promise<T>,
  options: RuntimeOptions = {},
): Promise<T> {
  const settings = loadSettings();
  const [{ createRuntime }, { createLogger }] = await Promise.all([
    import("../runtime.js"),
    import("../observability/logger.js"),
  ]);
  const runtime = await createRuntime(settings, createLogger(settings.logLevel), options);
  try {
    return await work(runtime);
  } finally {
    await runtime.close();
  }
}

const program = new Command()
  .name("shotlist")
  .description(
    "Product imagery orchestration: shot lists, recipes, a Postgres job queue and workers",
  )
  .showHelpAfterError();

program
  .command("start")
  .description(
    "embedded all-in-one: API + worker + dashboard, import the sample catalogue and image it",
  )
  .option("--catalogue <file>", "catalogue to import instead of the shipped sample")
  .option("--once", "exit after the catalogue is imaged instead of serving on", false)
  .action((options: { catalogue?: string; once: boolean }) =>
    withRuntime(async (runtime) => {
      const { start } = await import("./start.js");
      await start(runtime, { ...options, print });
    }, HTTP_PROCESS),
  );

program
  .command("serve")
  .description("serve the HTTP API and dashboard (with a worker unless --no-worker)")
  .option("--no-worker", "do not run jobs in this process")
  .action((options: { worker: boolean }) =>
    withRuntime(async (runtime) => {
      const { serve, untilSignal } = await import("./serve.js");
      const serving = await serve(runtime, { worker: options.worker });
      print(`Shotlist is serving ${serving.url}${options.worker ? " with a worker" : ""}`);
      await untilSignal();
      await serving.stop();
    }, HTTP_PROCESS),
  );

program
  .command("worker")
  .description("run jobs (needs SHOTLIST_DATABASE_URL: the embedded database is one process)")
  .option("--concurrency <n>", "jobs at once", (value) => Number.parseInt(value, 10))
  .action((options: { concurrency?: number }) => {
    if (!process.env.SHOTLIST_DATABASE_URL) {
      throw new ShotlistError(
        "invalid_env",
        "a separate worker process needs PostgreSQL (SHOTLIST_DATABASE_URL); with the embedded database run `shotlist serve`, which includes a worker",
      );
    }
    return withRuntime(async (runtime) => {
      const { untilSignal } = await import("./serve.js");
      const worker = runtime.startWorker({ concurrency: options.concurrency });
      print(`worker ${worker.workerId} running`);
      await untilSignal();
      await worker.stop();
    });
  });

program
  .command("migrate")
  .description("apply database migrations")
  .action(async () => {
    const settings = loadSettings();
    const [{ openDb }, { migrate }] = await Promise.all([
      import("../store/db.js"),
      import("../store/migrate.js"),
    ]);
    const db = await openDb(settings);
    try {
      const result = await migrate(db);
      print(
        result.applied.length > 0
          ? `applied ${result.applied.join(", ")}; schema version ${result.current}`
          : `schema is up to date (version ${result.current})`,
      );
    } finally {
      await db.close();
    }
  });

program
  .command("import")
  .description("import a CSV or JSONL catalogue (streamed; bad rows reported by line)")
  .argument("<file>", "catalogue.csv or catalogue.jsonl")
  .option("--dry-run", "validate and print the plan and estimated cost; write nothing", false)
  .option("--no-progress", "no progress bar")
  .action(async (file: string, options: { dryRun: boolean; progress: boolean }) => {
    const progress = options.progress && process.stderr.isTTY === true;
    const { importCatalogue, printImportReport } = await import("./import.js");
    if (options.dryRun) {
      const settings = loadSettings();
      const [{ loadShotList }, { buildProviderRegistry }] = await Promise.all([
        import("../config/shotlist.js"),
        import("../providers/configured.js"),
      ]);
      const shotList = loadShotList(settings.shotListPath);
      const providers = buildProviderRegistry(shotList, {
        env: settings.env,
        maxPixels: settings.maxPixels,
      });
      const report = await importCatalogue({ shotList, providers }, file, {
        dryRun: true,
        progress,
        print,
      });
      printImportReport(report, true, print);
      if (report.rejected.length > 0) process.exitCode = 2;
      return;
    }
    await withRuntime(async (runtime) => {
      const report = await importCatalogue(runtime.intake, file, {
        dryRun: false,
        progress,
        print,
      });
      printImportReport(report, false, print);
      if (report.rejected.length > 0) process.exitCode = 2;
    });
  });

/** Commands that need only the migrated database, not the shot list or providers. */
async function withDb<T>(work: (db: Db) => Promise<T>): Promise<T> {
  const settings = loadSettings();
  const [{ openDb }, { migrate }] = await Promise.all([
    import("../store/db.js"),
    import("../store/migrate.js"),
  ]);
  const db = await openDb(settings);
  try {
    await migrate(db);
    return await work(db);
  } finally {
    await db.close();
  }
}

const keys = program.command("keys").description("API keys for the /v1 routes (stored hashed)");
keys
  .command("create")
  .description("make a key and print it once, alone on its line")
  .requiredOption("--scopes <list>", "comma-separated: read, write, admin")
  .option("--name <name>", "a label shown by `keys list`")
  .action((options: { scopes: string; name?: string }) =>
    withDb(async (db) => (await import("./keys.js")).createKeyCommand(db, options, print)),
  );
keys
  .command("list")
  .description("list keys (id, prefix, scopes, state); never prints a key")
  .action(() => withDb(async (db) => (await import("./keys.js")).listKeysCommand(db, print)));
keys
  .command("revoke")
  .description("revoke a key by id; it stops working at once")
  .argument("<id>", "key id from `keys list`")
  .action((id: string) =>
    withDb(async (db) => (await import("./keys.js")).revokeKeyCommand(db, id, print)),
  );

program
  .command("review")
  .description("the review queue (decisions are made over HTTP: POST /v1/review/{id}/…)")
  .command("list")
  .description("slots in review, oldest first: id, sku, slot, status, since, candidates, reason")
  .option("--sku <sku>", "only this product")
  .option("--category <category>", "only this category")
  .option("--slot <slot>", "only this slot")
  .option("--status <status>", "open or rejected; default both")
  .option("--limit <n>", "at most this many items (1–1000)", "100")
  .action(
    (options: { sku?: string; category?: string; slot?: string; status?: string; limit: string }) =>
      withDb(async (db) => (await import("./review.js")).listReviewCommand(db, options, print)),
  );

program
  .command("coverage")
  .description("catalogue coverage: products complete, by slot and state")
  .option("--json", "print JSON", false)
  .action((options: { json: boolean }) =>
    withRuntime(async (runtime) => {
      const [{ catalogueCoverage }, { formatCoverage }] = await Promise.all([
        import("../store/coverage.js"),
        import("./coverage.js"),
      ]);
      const coverage = await catalogueCoverage(runtime.db);
      print(options.json ? JSON.stringify(coverage, null, 2) : formatCoverage(coverage));
    }),
  );

program
  .command("costs")
  .description("paid-provider spend by provider and model, from the call ledger; in-doubt apart")
  .option("--since <date>", "only calls made at or after this ISO 8601 date or date-time")
  .option("--json", "print JSON", false)
  .action((options: { since?: string; json: boolean }) =>
    withDb(async (db) => (await import("./costs.js")).costsCommand(db, options, print)),
  );

program
  .command("regenerate")
  .description(
    "regenerate published assets whose recipe changed (a new model version, an edited shot list)",
  )
  .requiredOption(
    "--where <filter>",
    "provider=…,model=…,slot=…,category=…,sku=… (any of them; matched against the recipe that made the asset)",
  )
  .option(
    "--dry-run",
    "list the affected assets, their count and the estimated cost; spend nothing",
    false,
  )
  .option("--json", "print JSON", false)
  .action(async (options: { where: string; dryRun: boolean; json: boolean }) => {
    const { parseWhere } = await import("../intake/regenerate.js");
    // A bad --where is refused before the database is opened.
    parseWhere(options.where);
    await withRuntime(async (runtime) =>
      (await import("./regenerate.js")).regenerateCommand(runtime, options, print),
    );
  });

program
  .command("verify-asset")
  .description("render an asset's recipe again and compare the bytes (reproducibility check)")
  .argument("<id>", "asset id")
  .action((id: string) =>
    withRuntime(async (runtime) => {
      const { verifyAssetCommand } = await import("./verify-asset.js");
      await verifyAssetCommand(runtime, id, print);
    }),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  // STYLE §3: the CLI prints `code: detail` and exits non-zero.
  process.stderr.write(`${errorMessage(error)}\n`);
  process.exitCode = error instanceof ShotlistError ? 1 : 70;
});
