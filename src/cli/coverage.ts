import type { CatalogueCoverage } from "../store/coverage.js";

const pct = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;

/** The coverage table people read in a terminal. */
export function formatCoverage(coverage: CatalogueCoverage): string {
  // 0 of 0 is 100% by arithmetic, and says nothing: an empty catalogue is told as empty.
  if (coverage.products === 0) {
    return "catalogue coverage: no products yet (import a catalogue with `shotlist import FILE`, or send products to POST /v1/products)";
  }
  const lines = [
    `catalogue coverage: ${pct(coverage.productCoverage)} — ${coverage.completeProducts} of ${coverage.products} products complete`,
    `slot coverage:      ${pct(coverage.slotCoverage)} — ${coverage.publishedSlots} of ${coverage.requiredSlots} required slots published`,
    "",
    `${"slot".padEnd(14)}${"required".padStart(9)}${"published".padStart(10)}${"pending".padStart(9)}${"review".padStart(8)}${"failed".padStart(8)}`,
  ];
  for (const row of coverage.bySlot) {
    lines.push(
      `${row.slot.padEnd(14)}${String(row.required).padStart(9)}${String(row.published).padStart(10)}${String(row.pending).padStart(9)}${String(row.needsReview).padStart(8)}${String(row.failed).padStart(8)}`,
    );
  }
  return lines.join("\n");
}
