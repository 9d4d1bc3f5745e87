import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SingleBar } from "cli-progress";
import type { Runtime } from "../runtime.js";
import { createApiKey, hasActiveAdminKey } from "../store/api-keys.js";
import { catalogueCoverage } from "../store/coverage.js";
import { countOpenJobs } from "../store/jobs.js";
import { formatCoverage } from "./coverage.js";
import { importCatalogue, printImportReport } from "./import.js";
import { serve, untilSignal } from "./serve.js";

export const SAMPLE_CATALOGUE = fileURLToPath(
  new URL("../../examples/catalogue/catalogue.jsonl", import.meta.url),
);

/**
 * `npm start`: the whole product in one process on the embedded default — API, worker and
 * dashboard — imports the sample catalogue, images it end to end, prints coverage and where
 * the assets are, then keeps serving (unless `once`).
 */
export async function start(
  runtime: Runtime,
  options: { catalogue?: string; once: boolean; print: (line: string) => void },
): Promise<void> {
  const { print } = options;
  const serving = await serve(runtime, { worker: true });
  print(
    `Shotlist is serving ${serving.url} (database: ${runtime.db.kind}, assets: ${runtime.blobs.location})`,
  );
  // DESIGN §3: embedded mode makes an admin key on first start and shows it this once only.
  if (!(await hasActiveAdminKey(runtime.db))) {
    const adminKey = await createApiKey(runtime.db, {
      name: "embedded admin",
      scopes: ["read", "write", "admin"],
    });
    print(`admin API key (shown once; store it now): ${adminKey.key}`);
  }
  const catalogue = options.catalogue ?? SAMPLE_CATALOGUE;
  if (!existsSync(catalogue)) {
    print(`no catalogue at ${catalogue}; run \`npm run examples\` to draw the sample catalogue`);
  } else {
    print(`importing ${catalogue}`);
    const report = await importCatalogue(runtime.intake, catalogue, { dryRun: false, print });
    printImportReport(report, false, print);
    await waitForWork(runtime, print);
    const coverage = await catalogueCoverage(runtime.db);
    print("");
    print(formatCoverage(coverage));
    print("");
    print(`assets: ${runtime.blobs.location} (served at ${serving.url}/a/<sha256>.<ext>)`);
    print(
      `dashboard: ${serving.url}/   API: ${serving.url}/v1/products   metrics: ${serving.url}/metrics`,
    );
  }
  if (!options.once) {
    print("Ctrl-C to stop.");
    await untilSignal();
  }
  await serving.stop();
}

/** Waits until no job is queued, running or retrying, with a progress bar on a terminal. */
async function waitForWork(runtime: Runtime, print: (line: string) => void): Promise<void> {
  const [totalRow] = await runtime.db.query<{ count: number }>(
    "select count(*)::integer as count from jobs",
  );
  const total = totalRow?.count ?? 0;
  const bar = process.stderr.isTTY
    ? new SingleBar({
        format: "imaging   [{bar}] {value}/{total} jobs finished",
        stream: process.stderr,
        hideCursor: true,
      })
    : undefined;
  bar?.start(total, 0);
  let lastPrinted = -1;
  for (;;) {
    const open = await countOpenJobs(runtime.db);
    bar?.update(total - open);
    if (
      !bar &&
      open !== lastPrinted &&
      (open === 0 || lastPrinted - open >= 10 || lastPrinted < 0)
    ) {
      print(`imaging: ${total - open}/${total} jobs finished`);
      lastPrinted = open;
    }
    if (open === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  bar?.stop();
}
