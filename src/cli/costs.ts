import { ShotlistError } from "../domain/errors.js";
import type { Db } from "../store/db.js";
import { type CostReport, costReport } from "../store/provider-calls.js";

/** Micros as currency units with 2 decimals (the ledger does not know the currency). */
const money = (micros: number) => (micros / 1_000_000).toFixed(2);

/** The spend table people read in a terminal: by provider and model, in-doubt apart. */
export function formatCosts(report: CostReport): string {
  const header = `${"provider".padEnd(18)}${"model".padEnd(18)}${"calls".padStart(7)}${"ok".padStart(6)}${"failed".padStart(8)}${"open".padStart(6)}${"spent".padStart(12)}${"in doubt".padStart(10)}${"doubt spend".padStart(13)}`;
  const row = (provider: string, model: string, line: CostReport["total"]) =>
    `${provider.padEnd(18)}${model.padEnd(18)}${String(line.calls).padStart(7)}${String(line.succeeded).padStart(6)}${String(line.failed).padStart(8)}${String(line.open).padStart(6)}${money(line.spentMicros).padStart(12)}${String(line.inDoubt).padStart(10)}${money(line.inDoubtMicros).padStart(13)}`;
  const lines = [
    `paid-provider spend ${report.since ? `since ${report.since}` : "(all time)"}`,
    "",
    header,
  ];
  for (const line of report.lines) lines.push(row(line.provider, line.model, line));
  lines.push(row("total", "", report.total));
  lines.push(
    "",
    `spent ${money(report.total.spentMicros)} + in doubt ${money(report.total.inDoubtMicros)} (calls whose outcome is unknown are counted as spent)`,
  );
  return lines.join("\n");
}

/** `shotlist costs [--since ISO-date] [--json]`. */
export async function costsCommand(
  db: Db,
  options: { since?: string; json: boolean },
  print: (line: string) => void,
): Promise<void> {
  let since: Date | null = null;
  if (options.since !== undefined) {
    since = new Date(options.since);
    if (!/^\d{4}-\d{2}-\d{2}/.test(options.since) || Number.isNaN(since.getTime())) {
      throw new ShotlistError(
        "invalid_request",
        `--since must be an ISO 8601 date or date-time (e.g. 2026-11-01), not "${options.since}"`,
      );
    }
  }
  const report = await costReport(db, since);
  print(options.json ? JSON.stringify(report, null, 2) : formatCosts(report));
}
