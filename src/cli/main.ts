#!/usr/bin/env node
import { Command } from "commander";
import { loadSettings } from "../config/env.js";
import { loadShotList } from "../config/shotlist.js";
import { errorMessage, ShotlistError } from "../domain/errors.js";
import { createLogger } from "../observability/logger.js";
import { createLocalProvider } from "../providers/local/index.js";
import { assertProvidersConfigured, createRegistry } from "../providers/registry.js";
import { createRuntime, type Runtime } from "../runtime.js";
import { catalogueCoverage } from "../store/coverage.js";
import { openDb } from "../store/db.js";
import { migrate } from "../store/migrate.js";
import { formatCoverage } from "./coverage.js";
import { importCatalogue, printImportReport } from "./import.js";
import { serve, untilSignal } from "./serve.js";
import { start } from "./start.js";

const print = (line: string) => process.stdout.write(`${line}\n`);

async function withRuntime<T>(work: (runtime: Runtime) => Promise<T>): Promise<T> {
  const settings = loadSettings();
  const runtime = await createRuntime(settings, createLogger(settings.logLevel));
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
    withRuntime((runtime) => start(runtime, { ...options, print })),
  );

program
  .command("serve")
  .description("serve the HTTP API and dashboard (with a worker unless --no-worker)")
  .option("--no-worker", "do not run jobs in this process")
  .action((options: { worker: boolean }) =>
    withRuntime(async (runtime) => {
      const serving = await serve(runtime, { worker: options.worker });
      print(`Shotlist is serving ${serving.url}${options.worker ? " with a worker" : ""}`);
      await untilSignal();
      await serving.stop();
    }),
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
    if (options.dryRun) {
      const settings = loadSettings();
      const shotList = loadShotList(settings.shotListPath);
      const providers = createRegistry([createLocalProvider({ maxPixels: settings.maxPixels })]);
      assertProvidersConfigured(shotList, providers);
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

program
  .command("coverage")
  .description("catalogue coverage: products complete, by slot and state")
  .option("--json", "print JSON", false)
  .action((options: { json: boolean }) =>
    withRuntime(async (runtime) => {
      const coverage = await catalogueCoverage(runtime.db);
      print(options.json ? JSON.stringify(coverage, null, 2) : formatCoverage(coverage));
    }),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  // STYLE §3: the CLI prints `code: detail` and exits non-zero.
  process.stderr.write(`${errorMessage(error)}\n`);
  process.exitCode = error instanceof ShotlistError ? 1 : 70;
});
