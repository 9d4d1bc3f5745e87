import { stat } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { SingleBar } from "cli-progress";
import { errorMessage, ShotlistError } from "../domain/errors.js";
import { type CatalogueFormat, formatOf, readCatalogue } from "../intake/catalogue-file.js";
import {
  type IntakeDeps,
  parseProductInput,
  planWithoutReferences,
  submitProduct,
} from "../intake/submit.js";

export interface ImportOptions {
  dryRun: boolean;
  /** Draw a progress bar on stderr; default when stderr is a terminal. */
  progress?: boolean;
  /** Products submitted at once (reference decoding overlaps); default 4. */
  concurrency?: number;
  /** Where a line of output goes; default stdout. */
  print?: (line: string) => void;
}

export interface ImportReport {
  rows: number;
  accepted: number;
  created: number;
  changed: number;
  unchanged: number;
  /** The first MAX_REPORTED_REJECTIONS bad rows (memory stays flat on a file of bad rows). */
  rejected: { line: number; sku?: string; error: string }[];
  /** Every bad row, including those past the reported ones. */
  rejectedCount: number;
  jobsCreated: number;
  slotsPlanned: number;
  slotsByName: Record<string, number>;
  estimatedCostMicros: Record<string, number>;
}

/**
 * `shotlist import FILE`: streams a CSV or JSONL catalogue through the one intake. Bad rows are
 * reported by line and the rest goes on. `--dry-run` validates and plans without writing
 * anything (no database, no blobs): products, slots, jobs and estimated provider cost.
 */
export async function importCatalogue(
  deps: IntakeDeps | Pick<IntakeDeps, "shotList" | "providers">,
  path: string,
  options: ImportOptions,
): Promise<ImportReport> {
  const format: CatalogueFormat | undefined = formatOf(path);
  if (!format)
    throw new ShotlistError("invalid_request", `${path}: expected a .csv, .jsonl or .ndjson file`);
  const absolute = isAbsolute(path) ? path : resolve(path);
  const size = (
    await stat(absolute).catch((cause) => {
      throw new ShotlistError("invalid_request", `cannot read ${path}`, { cause });
    })
  ).size;
  const baseDir = dirname(absolute);
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const report: ImportReport = {
    rows: 0,
    accepted: 0,
    created: 0,
    changed: 0,
    unchanged: 0,
    rejected: [],
    rejectedCount: 0,
    jobsCreated: 0,
    slotsPlanned: 0,
    slotsByName: {},
    estimatedCostMicros: {},
  };
  const showProgress = options.progress ?? process.stderr.isTTY === true;
  const bar = showProgress
    ? new SingleBar({
        format: "importing [{bar}] {percentage}% | {rows} rows | {rejected} rejected",
        stream: process.stderr,
        hideCursor: true,
      })
    : undefined;
  bar?.start(size, 0, { rows: 0, rejected: 0 });
  const update = (bytes?: number) =>
    bar?.update(bytes ?? bar.getProgress() * size, {
      rows: report.rows,
      rejected: report.rejectedCount,
    });

  const concurrency = options.dryRun ? 1 : (options.concurrency ?? 4);
  const inFlight = new Set<Promise<void>>();
  const skuOf = (body: unknown) =>
    body && typeof body === "object" && "sku" in body && typeof body.sku === "string"
      ? body.sku
      : undefined;

  const handle = async (line: number, body: unknown) => {
    try {
      if (options.dryRun) {
        const product = parseProductInput(body, deps.shotList);
        for (const [index, reference] of product.referenceImages.entries()) {
          if ("path" in reference) {
            const file = isAbsolute(reference.path)
              ? reference.path
              : resolve(baseDir, reference.path);
            await stat(file).catch(() => {
              throw new ShotlistError(
                "reference_image_missing",
                `referenceImages.${index}: cannot read ${reference.path}`,
              );
            });
          }
        }
        const plans = planWithoutReferences(product, deps);
        report.accepted++;
        report.jobsCreated += plans.length;
        for (const plan of plans) {
          // The first link's price: what the slot costs when nothing falls back.
          const first = plan.links[0];
          const costMicros = first
            ? deps.providers.get(first.recipe.provider).estimateCostMicros({
                recipe: first.recipe,
                recipeHash: first.recipeHash,
                references: new Map(),
              })
            : 0;
          countPlan(report, plan.slot, first?.recipe.provider ?? "?", costMicros);
        }
        if (report.accepted <= 20) {
          print(
            `plan ${product.sku} (${product.category}): ${plans.map((plan) => plan.slot).join(", ")}`,
          );
        }
        return;
      }
      const result = await submitProduct(deps as IntakeDeps, body, { baseDir });
      report.accepted++;
      if (result.created) report.created++;
      else if (result.changed) report.changed++;
      else report.unchanged++;
      report.jobsCreated += result.jobsCreated;
      for (const slot of result.slots) countPlan(report, slot.slot, "", 0);
    } catch (error) {
      if (!(error instanceof ShotlistError)) throw error;
      reject(report, { line, sku: skuOf(body), error: errorMessage(error) });
    }
  };

  for await (const record of readCatalogue(absolute, format, (bytes) => update(bytes))) {
    report.rows++;
    if ("error" in record) {
      reject(report, { line: record.line, error: record.error });
      continue;
    }
    const task = handle(record.line, record.body).finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  update(size);
  bar?.stop();
  if (options.dryRun && report.accepted > 20) print(`… and ${report.accepted - 20} more products`);
  report.rejected.sort((a, b) => a.line - b.line);
  return report;
}

export const MAX_REPORTED_REJECTIONS = 1000;

function reject(report: ImportReport, bad: ImportReport["rejected"][number]) {
  report.rejectedCount++;
  if (report.rejected.length < MAX_REPORTED_REJECTIONS) report.rejected.push(bad);
}

function countPlan(report: ImportReport, slot: string, provider: string, costMicros: number) {
  report.slotsPlanned++;
  report.slotsByName[slot] = (report.slotsByName[slot] ?? 0) + 1;
  if (provider)
    report.estimatedCostMicros[provider] = (report.estimatedCostMicros[provider] ?? 0) + costMicros;
}

export function printImportReport(
  report: ImportReport,
  dryRun: boolean,
  print: (line: string) => void,
) {
  for (const bad of report.rejected) {
    print(`line ${bad.line}${bad.sku ? ` (${bad.sku})` : ""}: ${bad.error}`);
  }
  if (report.rejectedCount > report.rejected.length) {
    print(`… and ${report.rejectedCount - report.rejected.length} more rejected rows`);
  }
  const slots = Object.entries(report.slotsByName)
    .map(([slot, count]) => `${slot} ${count}`)
    .join(", ");
  if (dryRun) {
    const cost = Object.entries(report.estimatedCostMicros)
      .map(([provider, micros]) => `${provider} $${(micros / 1e6).toFixed(2)}`)
      .join(", ");
    print(
      `dry run: ${report.rows} rows, ${report.accepted} products valid, ${report.rejectedCount} rejected; ` +
        `${report.slotsPlanned} slots planned (${slots}); up to ${report.jobsCreated} jobs; ` +
        `estimated provider cost: ${cost || "$0.00"}. Nothing was written.`,
    );
  } else {
    print(
      `imported ${report.rows} rows: ${report.created} new, ${report.changed} changed, ${report.unchanged} unchanged, ` +
        `${report.rejectedCount} rejected; ${report.jobsCreated} jobs created for ${report.slotsPlanned} slots.`,
    );
  }
}
