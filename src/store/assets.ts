import type { CheckResult } from "../domain/checks.js";
import type { Recipe } from "../domain/recipe.js";
import type { Queryable } from "./db.js";

export type AssetState = "published" | "in_review" | "rejected" | "superseded";

export interface NewAsset {
  sha256: string;
  ext: string;
  recipeHash: string;
  link: number;
  state: AssetState;
  width: number;
  height: number;
  byteSize: number;
  costMicros: number;
  checks: readonly CheckResult[];
  /** The provider's own id for the call that made the bytes (absent for local work). */
  providerRequestId?: string | null;
  /** DESIGN §8: who made the bytes; default "provider". */
  madeBy?: "provider" | "template";
}

export interface AssetRow {
  id: number;
  sha256: string;
  ext: string;
  recipe_hash: string;
  link: number;
  state: AssetState;
  width: number;
  height: number;
  byte_size: number;
  cost_micros: number;
  checks: CheckResult[];
  /**
   * DESIGN §8: "provider" (the recipe's output), "human" (uploaded in the review queue) or
   * "template" (the stock-template fallback link).
   */
  made_by: "provider" | "human" | "template";
  provider_request_id: string | null;
  created_at: Date;
}

/** Records an asset; the same bytes from the same recipe are one asset (returns the existing id). */
export async function insertAsset(tx: Queryable, asset: NewAsset): Promise<number> {
  const [row] = await tx.query<{ id: number }>(
    `insert into assets (sha256, ext, recipe_hash, link, state, width, height, byte_size, cost_micros, checks,
       provider_request_id, made_by)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     on conflict (recipe_hash, sha256) do update set state = excluded.state, checks = excluded.checks
     returning id`,
    [
      asset.sha256,
      asset.ext,
      asset.recipeHash,
      asset.link,
      asset.state,
      asset.width,
      asset.height,
      asset.byteSize,
      asset.costMicros,
      JSON.stringify(asset.checks),
      asset.providerRequestId ?? null,
      asset.madeBy ?? "provider",
    ],
  );
  if (!row) throw new Error("insert into assets returned no id");
  return row.id;
}

/**
 * Which product slots a publish is about to change: every slot on a recipe (a render finished),
 * or one product's (its slots took over recipes that had finished before, at intake).
 */
export type PublishScope = { recipeHash: string } | { sku: string };

/** The products a publish touches, as a subquery and its one parameter. */
export function productsOfScope(scope: PublishScope): { sql: string; param: string } {
  return "recipeHash" in scope
    ? {
        sql: "select product_sku from product_slots where recipe_hash = $1",
        param: scope.recipeHash,
      }
    : { sql: "select $1::text", param: scope.sku };
}

/**
 * Locks the products a publish touches, in SKU order and before their slots change (the
 * intake's order: product, then slots). Two publishes of one product then run one after the
 * other, so the second sees the first's slots: whoever decides "the product is now complete"
 * (product.complete, the Shopify write-back) cannot be missed by both.
 */
export async function lockProductsOfScope(tx: Queryable, scope: PublishScope): Promise<void> {
  const products = productsOfScope(scope);
  await tx.query(
    `select sku from products where sku in (${products.sql}) order by sku for update`,
    [products.param],
  );
}

/**
 * Runs in a publishing transaction before the slots of `scope` change (to take locks in the
 * intake's order: product, then slots); the function it returns runs after them with the
 * product slots just published (write-back, outbound webhooks). Render and intake call the same.
 */
export type OnPublishing = (
  tx: Queryable,
  scope: PublishScope,
) => Promise<((published: { sku: string; slot: string }[]) => Promise<void>) | undefined>;

/**
 * Publishes an asset on every slot whose current recipe is `primaryRecipeHash`; the asset the
 * slot showed before (an older recipe's) becomes superseded.
 */
export async function publishOnSlots(
  tx: Queryable,
  primaryRecipeHash: string,
  assetId: number,
): Promise<{ sku: string; slot: string }[]> {
  await tx.query(
    `update assets set state = 'superseded'
     where id in (select asset_id from product_slots where recipe_hash = $1 and asset_id is not null and asset_id <> $2)`,
    [primaryRecipeHash, assetId],
  );
  return tx.query<{ sku: string; slot: string }>(
    `update product_slots set state = 'published', asset_id = $2, reason = null, updated_at = now()
     where recipe_hash = $1 returning product_sku as sku, slot`,
    [primaryRecipeHash, assetId],
  );
}

/** Sends every slot on `primaryRecipeHash` to the review queue, saying why. */
export async function markSlotsForReview(
  tx: Queryable,
  primaryRecipeHash: string,
  reason: string,
): Promise<{ sku: string; slot: string }[]> {
  return tx.query<{ sku: string; slot: string }>(
    `update product_slots set state = 'needs_review', reason = $2, updated_at = now()
     where recipe_hash = $1 returning product_sku as sku, slot`,
    [primaryRecipeHash, reason],
  );
}

export async function getAsset(db: Queryable, id: number): Promise<AssetRow | undefined> {
  const [row] = await db.query<AssetRow>("select * from assets where id = $1", [id]);
  return row;
}

export async function findAssetBySha(db: Queryable, sha256: string): Promise<AssetRow | undefined> {
  const [row] = await db.query<AssetRow>(
    "select * from assets where sha256 = $1 order by id limit 1",
    [sha256],
  );
  return row;
}

export async function getRecipes(
  db: Queryable,
  hashes: readonly string[],
): Promise<Map<string, Recipe>> {
  const rows = await db.query<{ hash: string; recipe: Recipe }>(
    "select hash, recipe from recipes where hash = any($1::text[])",
    [hashes],
  );
  return new Map(rows.map((row) => [row.hash, row.recipe]));
}

export async function countAssets(db: Queryable): Promise<number> {
  const [row] = await db.query<{ count: number }>("select count(*)::integer as count from assets");
  return row?.count ?? 0;
}
