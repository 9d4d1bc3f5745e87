import type { SlotPlan } from "../domain/plan.js";
import type { ProductInput, ReferenceImage } from "../domain/product.js";
import type { OnPublishing } from "./assets.js";
import type { Queryable } from "./db.js";
import { enqueueJob } from "./jobs.js";

export interface SavedSlot {
  slot: string;
  recipeHash: string;
  state: string;
  jobId: number;
  jobCreated: boolean;
}

export interface SaveProductResult {
  /** False when an identical product (same input hash) was already stored. */
  changed: boolean;
  created: boolean;
  slots: SavedSlot[];
}

export interface RenderJobPayload {
  slot: string;
  /** Recipe hashes of the chain links, in fallback order. */
  links: string[];
  checks: SlotPlan["checks"];
  /**
   * Index of the first link to try; default 0. A reviewer's requeue starts later in the chain
   * (the links stay the slot's whole chain, so links[0] still names the slot's recipe).
   */
  startLink?: number;
}

/**
 * Writes a product, its variants, references, recipes, slots and render jobs in the caller's
 * transaction (graphile-worker's add_job model): either all of it exists afterwards or none.
 */
export async function saveProductPlan(
  tx: Queryable,
  product: ProductInput,
  references: readonly ReferenceImage[],
  origins: readonly string[],
  plans: readonly SlotPlan[],
  inputHash: string,
  maxAttempts: number,
  /** Write-back and outbound webhooks for slots that take over a finished recipe's asset. */
  onPublishing?: OnPublishing,
): Promise<SaveProductResult> {
  const [existing] = await tx.query<{ input_hash: string }>(
    "select input_hash from products where sku = $1 for update",
    [product.sku],
  );
  const created = existing === undefined;
  const changed = existing?.input_hash !== inputHash;
  if (changed) {
    await tx.query(
      `insert into products (sku, title, category, attributes, input_hash) values ($1, $2, $3, $4, $5)
       on conflict (sku) do update set title = excluded.title, category = excluded.category,
         attributes = excluded.attributes, input_hash = excluded.input_hash, updated_at = now()`,
      [product.sku, product.title, product.category, JSON.stringify(product.attributes), inputHash],
    );
    await tx.query("delete from variants where product_sku = $1", [product.sku]);
    // One statement for all variants (up to 250), not one per variant.
    await tx.query(
      `insert into variants (product_sku, sku, position, attributes)
       select $1::text, v.sku, v.position, v.attributes
       from jsonb_to_recordset($2::jsonb) as v(sku text, position integer, attributes jsonb)
       on conflict (product_sku, sku) do update set position = excluded.position, attributes = excluded.attributes`,
      [
        product.sku,
        JSON.stringify(
          product.variants.map((variant, position) => ({
            sku: variant.sku,
            position,
            attributes: variant.attributes,
          })),
        ),
      ],
    );
    await tx.query("delete from product_references where product_sku = $1", [product.sku]);
    for (const [position, reference] of references.entries()) {
      await tx.query(
        `insert into reference_images (sha256, width, height, format, byte_size, luminance_grid)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (sha256) do update set luminance_grid = excluded.luminance_grid
           where reference_images.luminance_grid is null and excluded.luminance_grid is not null`,
        [
          reference.sha256,
          reference.width,
          reference.height,
          reference.format,
          reference.byteSize,
          reference.luminanceGrid ? gridBytes(reference.luminanceGrid) : null,
        ],
      );
      await tx.query(
        "insert into product_references (product_sku, position, sha256, origin) values ($1, $2, $3, $4)",
        [product.sku, position, reference.sha256, origins[position] ?? reference.origin],
      );
    }
  }

  const slots: SavedSlot[] = [];
  // Every chain link's recipe in one statement, not one per link.
  await tx.query(
    `insert into recipes (hash, recipe, provider, model, slot)
     select r.hash, r.recipe, r.provider, r.model, r.slot
     from jsonb_to_recordset($1::jsonb) as r(hash text, recipe jsonb, provider text, model text, slot text)
     on conflict (hash) do nothing`,
    [
      JSON.stringify(
        plans.flatMap((plan) =>
          plan.links.map((link) => ({
            hash: link.recipeHash,
            recipe: link.recipe,
            provider: link.recipe.provider,
            model: link.recipe.model,
            slot: plan.slot,
          })),
        ),
      ),
    ],
  );
  // Slots that were made before (by this product earlier, with the same inputs): they take
  // over the finished job's outcome instead of waiting for a job that already ran.
  const takeovers: { index: number; jobId: number }[] = [];
  for (const [position, plan] of plans.entries()) {
    const payload: RenderJobPayload = {
      slot: plan.slot,
      links: plan.links.map((link) => link.recipeHash),
      checks: plan.checks,
    };
    const job = await enqueueJob(tx, {
      kind: "render",
      key: `render:${plan.recipeHash}`,
      payload,
      maxAttempts,
    });
    // A new recipe for a slot starts pending but keeps serving its current asset until the new
    // one is published. An unchanged recipe keeps its state.
    const [slotRow] = await tx.query<{ state: string }>(
      `insert into product_slots (product_sku, slot, position, required, alt, recipe_hash)
       values ($1, $2, $3, $4, $5, $6)
       on conflict (product_sku, slot) do update set position = excluded.position,
         required = excluded.required, alt = excluded.alt, recipe_hash = excluded.recipe_hash,
         state = case when product_slots.recipe_hash = excluded.recipe_hash then product_slots.state else 'pending' end,
         reason = case when product_slots.recipe_hash = excluded.recipe_hash then product_slots.reason else null end,
         updated_at = now()
       returning state`,
      [product.sku, plan.slot, position, plan.required, plan.alt, plan.recipeHash],
    );
    const state = slotRow?.state ?? "pending";
    if (!job.created && state === "pending") takeovers.push({ index: slots.length, jobId: job.id });
    slots.push({
      slot: plan.slot,
      recipeHash: plan.recipeHash,
      state,
      jobId: job.id,
      jobCreated: job.created,
    });
  }
  const planned = plans.map((plan) => plan.slot);
  await tx.query(
    "delete from product_slots where product_sku = $1 and not (slot = any($2::text[]))",
    [product.sku, planned],
  );
  if (takeovers.length > 0) {
    // After every slot of the new plan is written and the old ones are gone, so "complete" is
    // judged on the product as it now is, exactly as a render's publish judges it.
    const afterPublish = await onPublishing?.(tx, { sku: product.sku });
    const published: { sku: string; slot: string }[] = [];
    for (const { index, jobId } of takeovers) {
      const saved = slots[index];
      if (!saved) continue;
      saved.state = await takeOverOutcome(tx, product.sku, saved.slot, jobId);
      if (saved.state === "published") published.push({ sku: product.sku, slot: saved.slot });
    }
    if (published.length > 0) await afterPublish?.(published);
  }
  return { changed, created, slots };
}

/**
 * Gives a pending slot the outcome of its recipe's finished job. A succeeded job's asset may
 * have been superseded since (the slot moved to another recipe and back): it is published
 * again and the asset the slot showed meanwhile is superseded, as a render's publish does.
 */
export async function takeOverOutcome(
  tx: Queryable,
  sku: string,
  slot: string,
  jobId: number,
): Promise<string> {
  const [before] = await tx.query<{ asset_id: number | null }>(
    "select asset_id from product_slots where product_sku = $1 and slot = $2",
    [sku, slot],
  );
  const [synced] = await tx.query<{ state: string; asset_id: number | null }>(
    `update product_slots ps set
       state = case j.state when 'succeeded' then 'published' when 'needs_review' then 'needs_review'
                 when 'failed' then 'failed' else ps.state end,
       asset_id = coalesce((select a.id from assets a
                             where a.state in ('published', 'superseded') and a.recipe_hash = any(
                               select jsonb_array_elements_text(j.payload->'links'))
                             order by a.id desc limit 1), ps.asset_id),
       reason = case when j.state in ('needs_review', 'failed') then j.last_error else ps.reason end,
       updated_at = now()
     from jobs j
     where ps.product_sku = $1 and ps.slot = $2 and j.id = $3
     returning ps.state, ps.asset_id`,
    [sku, slot, jobId],
  );
  if (!synced) return "pending";
  if (synced.state === "published" && synced.asset_id !== null) {
    await tx.query(
      `update assets set state = case when id = $1 then 'published' else 'superseded' end
       where id = $1 or id = $2`,
      [synced.asset_id, before?.asset_id ?? null],
    );
  }
  return synced.state;
}

export interface ProductRow {
  sku: string;
  title: string;
  category: string;
  attributes: Record<string, string>;
  created_at: Date;
  updated_at: Date;
}

export interface ProductSlotRow {
  slot: string;
  position: number;
  required: boolean;
  alt: string;
  recipe_hash: string;
  state: "pending" | "published" | "needs_review" | "failed";
  reason: string | null;
  asset_id: number | null;
  asset_sha256: string | null;
  asset_ext: string | null;
  asset_made_by: "provider" | "human" | "template" | null;
  updated_at: Date;
}

export async function getProduct(db: Queryable, sku: string): Promise<ProductRow | undefined> {
  const [row] = await db.query<ProductRow>(
    "select sku, title, category, attributes, created_at, updated_at from products where sku = $1",
    [sku],
  );
  return row;
}

export async function getProductSlots(db: Queryable, sku: string): Promise<ProductSlotRow[]> {
  return db.query<ProductSlotRow>(
    `select ps.slot, ps.position, ps.required, ps.alt, ps.recipe_hash, ps.state, ps.reason, ps.asset_id,
       a.sha256 as asset_sha256, a.ext as asset_ext, a.made_by as asset_made_by, ps.updated_at
     from product_slots ps left join assets a on a.id = ps.asset_id
     where ps.product_sku = $1 order by ps.position`,
    [sku],
  );
}

export async function getVariants(db: Queryable, sku: string) {
  return db.query<{ sku: string; attributes: Record<string, string> }>(
    "select sku, attributes from variants where product_sku = $1 order by position",
    [sku],
  );
}

export async function getReferences(db: Queryable, sku: string) {
  return db.query<{
    position: number;
    sha256: string;
    origin: string;
    width: number;
    height: number;
  }>(
    `select pr.position, pr.sha256, pr.origin, ri.width, ri.height
     from product_references pr join reference_images ri on ri.sha256 = pr.sha256
     where pr.product_sku = $1 order by pr.position`,
    [sku],
  );
}

export interface ProductListItem extends ProductRow {
  required_slots: number;
  published_slots: number;
}

/** Products by SKU, keyset-paginated (`afterSku`), optionally only (in)complete ones. */
export async function listProducts(
  db: Queryable,
  query: { coverage?: "complete" | "incomplete"; afterSku?: string; limit: number },
): Promise<ProductListItem[]> {
  return db.query<ProductListItem>(
    `select * from (
       select p.sku, p.title, p.category, p.attributes, p.created_at, p.updated_at,
         count(ps.slot) filter (where ps.required)::integer as required_slots,
         count(ps.slot) filter (where ps.required and ps.state = 'published')::integer as published_slots
       from products p left join product_slots ps on ps.product_sku = p.sku
       where p.sku > $1
       group by p.sku
     ) listed
     where $2::text is null
        or ($2 = 'complete' and published_slots = required_slots)
        or ($2 = 'incomplete' and published_slots < required_slots)
     order by sku limit $3`,
    [query.afterSku ?? "", query.coverage ?? null, query.limit],
  );
}

/** A luminance grid as stored: float4 values, little-endian, row by row. */
function gridBytes(grid: ArrayLike<number>): Buffer {
  const bytes = Buffer.alloc(grid.length * 4);
  for (let i = 0; i < grid.length; i++) bytes.writeFloatLE(grid[i]!, i * 4);
  return bytes;
}

/** The luminance grid intake stored for a reference photo; undefined for older rows. */
export async function referenceLuminanceGrid(
  db: Queryable,
  sha256: string,
): Promise<Float32Array | undefined> {
  const [row] = await db.query<{ luminance_grid: Uint8Array | null }>(
    "select luminance_grid from reference_images where sha256 = $1",
    [sha256],
  );
  const stored = row?.luminance_grid;
  if (!stored || stored.byteLength % 4 !== 0) return undefined;
  const view = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  const grid = new Float32Array(stored.byteLength / 4);
  for (let i = 0; i < grid.length; i++) grid[i] = view.readFloatLE(i * 4);
  return grid;
}
