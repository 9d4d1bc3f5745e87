import type { CheckResult } from "../domain/checks.js";
import type { Queryable } from "./db.js";
import type { RenderJobPayload } from "./products.js";

/** Live: the slot is in needs_review. Settled by a decision: approved, requeued, replaced. */
export const REVIEW_STATUSES = [
  "open",
  "rejected",
  "approved",
  "requeued",
  "replaced",
  "closed",
] as const;
export type ReviewStatus = (typeof REVIEW_STATUSES)[number];
export const LIVE_REVIEW_STATUSES = ["open", "rejected"] as const satisfies readonly ReviewStatus[];

export type ReviewDecisionKind = "approved" | "rejected" | "requeued" | "uploaded";

export interface ReviewItemRow {
  id: number;
  sku: string;
  category: string;
  slot: string;
  recipe_hash: string;
  /** The slot's current reason while it is in review, else the reason it went there with. */
  reason: string | null;
  status: ReviewStatus;
  opened_at: Date;
  closed_at: Date | null;
}

const ITEM_COLUMNS = `i.id, i.product_sku as sku, p.category, i.slot, i.recipe_hash,
  coalesce(case when i.status in ('open', 'rejected') then ps.reason end, i.reason) as reason,
  i.status, i.opened_at, i.closed_at`;
const ITEM_FROM = `review_items i join products p on p.sku = i.product_sku
  left join product_slots ps on ps.product_sku = i.product_sku and ps.slot = i.slot`;

export interface ReviewListQuery {
  sku?: string;
  category?: string;
  slot?: string;
  /** Default: both live statuses. */
  status?: (typeof LIVE_REVIEW_STATUSES)[number];
  afterId?: number;
  limit: number;
}

/** Live review items, oldest first (a queue), keyset-paginated by id. */
export async function listReviewItems(
  db: Queryable,
  query: ReviewListQuery,
): Promise<ReviewItemRow[]> {
  return db.query<ReviewItemRow>(
    `select ${ITEM_COLUMNS} from ${ITEM_FROM}
     where i.status = any($1::text[]) and i.id > $2
       and ($3::text is null or i.product_sku = $3)
       and ($4::text is null or p.category = $4)
       and ($5::text is null or i.slot = $5)
     order by i.id limit $6`,
    [
      query.status ? [query.status] : [...LIVE_REVIEW_STATUSES],
      query.afterId ?? 0,
      query.sku ?? null,
      query.category ?? null,
      query.slot ?? null,
      query.limit,
    ],
  );
}

export async function getReviewItem(
  db: Queryable,
  id: number,
  options: { lock?: boolean } = {},
): Promise<ReviewItemRow | undefined> {
  const [row] = await db.query<ReviewItemRow>(
    `select ${ITEM_COLUMNS} from ${ITEM_FROM} where i.id = $1${options.lock ? " for update of i" : ""}`,
    [id],
  );
  return row;
}

export interface ReviewAttemptRow {
  item_id: number;
  job_id: number;
  attempt: number;
  link: number | null;
  provider: string | null;
  outcome: string;
  error: string | null;
  checks: CheckResult[] | null;
  started_at: Date;
  finished_at: Date;
}

/**
 * Every attempt of the render jobs of each item's slot recipe: the job the intake queued and
 * the jobs reviewers requeued for that slot and recipe, in the order they ran.
 */
export async function listReviewAttempts(
  db: Queryable,
  itemIds: readonly number[],
): Promise<ReviewAttemptRow[]> {
  return db.query<ReviewAttemptRow>(
    // Two index lookups joined by union (not one OR'd join, which no index can serve).
    `with item_jobs as (
       select i.id as item_id, j.id as job_id
       from review_items i join jobs j on j.key = 'render:' || i.recipe_hash
       where i.id = any($1::bigint[])
       union
       select i.id, d.job_id
       from review_items i
       join review_items same on same.product_sku = i.product_sku and same.slot = i.slot
         and same.recipe_hash = i.recipe_hash
       join review_decisions d on d.item_id = same.id and d.job_id is not null
       where i.id = any($1::bigint[])
     )
     select ij.item_id, a.job_id, a.attempt, a.link, a.provider, a.outcome, a.error, a.checks,
       a.started_at, a.finished_at
     from item_jobs ij join job_attempts a on a.job_id = ij.job_id
     order by ij.item_id, a.id`,
    [itemIds],
  );
}

export interface ReviewCandidateRow {
  item_id: number;
  id: number;
  sha256: string;
  ext: string;
  link: number;
  provider: string;
  model: string;
  checks: CheckResult[];
  created_at: Date;
}

/** The rejected outputs of each item's chain (any link), newest first: what a reviewer sees. */
export async function listReviewCandidates(
  db: Queryable,
  itemIds: readonly number[],
): Promise<ReviewCandidateRow[]> {
  return db.query<ReviewCandidateRow>(
    `select i.id as item_id, a.id, a.sha256, a.ext, a.link, r.provider, r.model, a.checks, a.created_at
     from review_items i
     join jobs j on j.key = 'render:' || i.recipe_hash
     join assets a on a.state = 'rejected' and a.made_by <> 'human'
       and a.recipe_hash in (select jsonb_array_elements_text(j.payload->'links'))
     join recipes r on r.hash = a.recipe_hash
     where i.id = any($1::bigint[])
     order by i.id, a.id desc`,
    [itemIds],
  );
}

export interface ReviewDecisionRow {
  item_id: number;
  decision: ReviewDecisionKind;
  reason: string | null;
  asset_id: number | null;
  job_id: number | null;
  provider: string | null;
  model: string | null;
  api_key_id: number | null;
  api_key_name: string | null;
  decided_at: Date;
}

const DECISION_COLUMNS = `d.item_id, d.decision, d.reason, d.asset_id, d.job_id, d.provider, d.model,
  d.api_key_id, k.name as api_key_name, d.decided_at`;

export async function listReviewDecisions(
  db: Queryable,
  itemIds: readonly number[],
): Promise<ReviewDecisionRow[]> {
  return db.query<ReviewDecisionRow>(
    `select ${DECISION_COLUMNS}
     from review_decisions d left join api_keys k on k.id = d.api_key_id
     where d.item_id = any($1::bigint[]) order by d.item_id, d.id`,
    [itemIds],
  );
}

/** The human decision that published an asset (approved or uploaded), if one did. */
export async function findPublishingDecision(
  db: Queryable,
  assetId: number,
): Promise<ReviewDecisionRow | undefined> {
  const [row] = await db.query<ReviewDecisionRow>(
    `select ${DECISION_COLUMNS}
     from review_decisions d left join api_keys k on k.id = d.api_key_id
     where d.asset_id = $1 order by d.id desc limit 1`,
    [assetId],
  );
  return row;
}

export interface NewReviewDecision {
  itemId: number;
  decision: ReviewDecisionKind;
  reason?: string | null;
  assetId?: number | null;
  jobId?: number | null;
  provider?: string | null;
  model?: string | null;
  apiKeyId: number | null;
}

export async function insertReviewDecision(
  tx: Queryable,
  decision: NewReviewDecision,
): Promise<void> {
  await tx.query(
    `insert into review_decisions (item_id, decision, reason, asset_id, job_id, provider, model, api_key_id)
     values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      decision.itemId,
      decision.decision,
      decision.reason ?? null,
      decision.assetId ?? null,
      decision.jobId ?? null,
      decision.provider ?? null,
      decision.model ?? null,
      decision.apiKeyId,
    ],
  );
}

/** Sets an item's status; a settling status also closes it. */
export async function setReviewStatus(
  tx: Queryable,
  itemId: number,
  status: ReviewStatus,
): Promise<void> {
  await tx.query(
    `update review_items set status = $2,
       closed_at = case when $2 in ('open', 'rejected') then null else now() end
     where id = $1`,
    [itemId, status],
  );
}

/** The render job the intake queued for a slot recipe: its payload is the slot's whole chain. */
export async function getSlotRenderPlan(
  db: Queryable,
  recipeHash: string,
): Promise<RenderJobPayload | undefined> {
  const [row] = await db.query<{ payload: RenderJobPayload }>(
    "select payload from jobs where key = $1",
    [`render:${recipeHash}`],
  );
  return row?.payload;
}

/** getSlotRenderPlan for many slot recipes at once (a page of the review queue). */
export async function getSlotRenderPlans(
  db: Queryable,
  recipeHashes: readonly string[],
): Promise<Map<string, RenderJobPayload>> {
  const rows = await db.query<{ key: string; payload: RenderJobPayload }>(
    "select key, payload from jobs where key = any($1::text[])",
    [recipeHashes.map((hash) => `render:${hash}`)],
  );
  return new Map(rows.map((row) => [row.key.slice("render:".length), row.payload]));
}

/**
 * Locks a product row and one of its slots, in the order every writer takes them (product,
 * then slots; the slot trigger then reaches review_items), before a decision locks its item.
 */
export async function lockProductSlot(tx: Queryable, sku: string, slot: string): Promise<void> {
  await tx.query("select sku from products where sku = $1 for update", [sku]);
  await tx.query("select slot from product_slots where product_sku = $1 and slot = $2 for update", [
    sku,
    slot,
  ]);
}

/** Returns a slot from review to pending (a requeue): its asset, if any, keeps being served. */
export async function returnSlotToPending(
  tx: Queryable,
  sku: string,
  slot: string,
  recipeHash: string,
): Promise<void> {
  await tx.query(
    `update product_slots set state = 'pending', reason = null, updated_at = now()
     where product_sku = $1 and slot = $2 and recipe_hash = $3`,
    [sku, slot, recipeHash],
  );
}

export interface NewHumanAsset {
  sha256: string;
  ext: string;
  recipeHash: string;
  link: number;
  width: number;
  height: number;
  byteSize: number;
  checks: readonly CheckResult[];
}

/** Records a human-made image, published, on the slot's recipe (DESIGN §8: made_by = human). */
export async function insertHumanAsset(tx: Queryable, asset: NewHumanAsset): Promise<number> {
  const [row] = await tx.query<{ id: number }>(
    `insert into assets (sha256, ext, recipe_hash, link, state, width, height, byte_size, cost_micros, checks, made_by)
     values ($1, $2, $3, $4, 'published', $5, $6, $7, 0, $8, 'human')
     on conflict (recipe_hash, sha256) do update set state = 'published', checks = excluded.checks,
       made_by = 'human'
     returning id`,
    [
      asset.sha256,
      asset.ext,
      asset.recipeHash,
      asset.link,
      asset.width,
      asset.height,
      asset.byteSize,
      JSON.stringify(asset.checks),
    ],
  );
  if (!row) throw new Error("insert into assets returned no id");
  return row.id;
}

/** Counts for tests and metrics: review items by status. */
export async function countReviewItems(db: Queryable): Promise<Record<string, number>> {
  const rows = await db.query<{ status: string; count: number }>(
    "select status, count(*)::integer as count from review_items group by status",
  );
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}
