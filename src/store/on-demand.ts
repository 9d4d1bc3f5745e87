import type { Queryable } from "./db.js";

/** An asset an /i/ request can be answered from. */
export interface SourceAsset {
  sha256: string;
  ext: string;
  created_at: Date;
}

export interface SlotSources {
  slotState: "pending" | "published" | "needs_review" | "failed";
  recipeHash: string;
  /** The slot's asset: its current one when published, else an older recipe's (kept serving). */
  slotAsset: SourceAsset | undefined;
  /** The product's hero, else its first published slot: the fallback when the slot has nothing. */
  heroAsset: SourceAsset | undefined;
  /** State of the slot's render job (job key `render:<recipe hash>`), if one exists. */
  jobState: string | undefined;
}

/**
 * Everything an /i/{sku}/{slot} request needs, in one round trip. Undefined when the product
 * has no such slot (or no such product).
 */
export async function findSlotSources(
  db: Queryable,
  sku: string,
  slot: string,
): Promise<SlotSources | undefined> {
  const [row] = await db.query<{
    state: SlotSources["slotState"];
    recipe_hash: string;
    sha256: string | null;
    ext: string | null;
    created_at: Date | null;
    hero_sha256: string | null;
    hero_ext: string | null;
    hero_created_at: Date | null;
    job_state: string | null;
  }>(
    `select ps.state, ps.recipe_hash, a.sha256, a.ext, a.created_at,
       hero.sha256 as hero_sha256, hero.ext as hero_ext, hero.created_at as hero_created_at,
       (select j.state from jobs j where j.key = 'render:' || ps.recipe_hash) as job_state
     from product_slots ps
     left join assets a on a.id = ps.asset_id
     left join lateral (
       select ha.sha256, ha.ext, ha.created_at from product_slots hs join assets ha on ha.id = hs.asset_id
       where hs.product_sku = ps.product_sku and hs.state = 'published'
       order by (hs.slot = 'hero') desc, hs.position limit 1
     ) hero on true
     where ps.product_sku = $1 and ps.slot = $2`,
    [sku, slot],
  );
  if (!row) return undefined;
  const asset = (sha256: string | null, ext: string | null, createdAt: Date | null) =>
    sha256 && ext && createdAt ? { sha256, ext, created_at: new Date(createdAt) } : undefined;
  return {
    slotState: row.state,
    recipeHash: row.recipe_hash,
    slotAsset: asset(row.sha256, row.ext, row.created_at),
    heroAsset: asset(row.hero_sha256, row.hero_ext, row.hero_created_at),
    jobState: row.job_state ?? undefined,
  };
}

/** The slot's state, for polling an in-progress generation cheaply. */
export async function slotState(
  db: Queryable,
  sku: string,
  slot: string,
): Promise<string | undefined> {
  const [row] = await db.query<{ state: string }>(
    "select state from product_slots where product_sku = $1 and slot = $2",
    [sku, slot],
  );
  return row?.state;
}
