import { parseRequestPart, reviewListQuerySchema } from "../http/schemas.js";
import type { Queryable } from "../store/db.js";
import { listReviewCandidates, listReviewItems, type ReviewItemRow } from "../store/review.js";

/** The review queue as a terminal table: one line per item, oldest first. */
export function formatReviewItems(
  items: readonly ReviewItemRow[],
  candidates: ReadonlyMap<number, number>,
): string {
  if (items.length === 0) return "the review queue is empty";
  return items
    .map((item) =>
      [
        String(item.id).padStart(6),
        item.sku.padEnd(20),
        item.slot.padEnd(12),
        item.status.padEnd(8),
        item.opened_at.toISOString(),
        `${candidates.get(item.id) ?? 0} candidates`.padEnd(13),
        (item.reason ?? "").replace(/\s+/g, " ").slice(0, 160),
      ].join("  "),
    )
    .join("\n");
}

/**
 * `shotlist review list`: the live review items (the same filters as GET /v1/review, checked by
 * the same schema). Decisions are made over HTTP, where they are attributed to an API key.
 */
export async function listReviewCommand(
  db: Queryable,
  options: { sku?: string; category?: string; slot?: string; status?: string; limit?: string },
  print: (line: string) => void,
): Promise<void> {
  const query = parseRequestPart(reviewListQuerySchema, options);
  const items = await listReviewItems(db, query);
  const counts = new Map<number, number>();
  for (const candidate of await listReviewCandidates(
    db,
    items.map((item) => item.id),
  )) {
    counts.set(candidate.item_id, (counts.get(candidate.item_id) ?? 0) + 1);
  }
  print(formatReviewItems(items, counts));
}
