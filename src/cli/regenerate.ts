import { parseWhere, type RegenerateReport, regenerateAssets } from "../intake/regenerate.js";
import type { Runtime } from "../runtime.js";

/** Micros as currency units with 2 decimals (the price table does not know the currency). */
const money = (micros: number) => (micros / 1_000_000).toFixed(2);

/** The affected assets, their count and the estimated cost, as people read it in a terminal. */
export function formatRegenerate(report: RegenerateReport): string {
  const lines = report.affected.map(
    (asset) =>
      `asset ${asset.assetId}  ${asset.sku}/${asset.slot} (${asset.category})  ${asset.provider}:${asset.model} [${asset.modelVersion}] -> ${asset.newProvider}:${asset.newModel} [${asset.newModelVersion}]  est. ${money(asset.estimatedCostMicros)}${asset.jobId === undefined ? "" : `  job ${asset.jobId}${asset.jobCreated ? "" : " (already queued)"}`}`,
  );
  lines.push(
    `${report.count} asset${report.count === 1 ? "" : "s"} out of date; estimated cost ${money(report.estimatedCostMicros)}`,
  );
  lines.push(
    report.dryRun
      ? "dry run: nothing was enqueued"
      : `${report.jobsCreated} render job${report.jobsCreated === 1 ? "" : "s"} enqueued; old assets stay published until the new ones pass their checks`,
  );
  return lines.join("\n");
}

/** `shotlist regenerate --where provider=…,model=…,slot=…,category=… [--dry-run] [--json]`. */
export async function regenerateCommand(
  runtime: Runtime,
  options: { where: string; dryRun: boolean; json: boolean },
  print: (line: string) => void,
): Promise<RegenerateReport> {
  const filter = parseWhere(options.where);
  const report = await regenerateAssets(runtime.intake, filter, { dryRun: options.dryRun });
  print(options.json ? JSON.stringify(report, null, 2) : formatRegenerate(report));
  return report;
}
