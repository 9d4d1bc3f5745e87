import type { Queryable } from "./db.js";

/** What the provider-call ledger knows about the call that made an asset. */
export interface AssetLedgerFacts {
  /** The succeeded call whose output is these bytes (or the recipe's newest succeeded call). */
  callId: string | null;
  /** The async provider's id for that call (prediction id, request id). */
  externalId: string | null;
  costMicros: number;
  /** Every call of the recipe counted as spent: succeeded ones and those in doubt. */
  recipeSpendMicros: number;
}

/**
 * Reads the ledger for one asset (issue 5 §3: provenance shows the cost from the ledger). The
 * call that made the bytes is the succeeded one whose output hash is the asset's; a local asset
 * has no ledger rows and costs 0.
 */
export async function ledgerFactsOfAsset(
  db: Queryable,
  asset: { recipe_hash: string; sha256: string },
): Promise<AssetLedgerFacts> {
  const [made] = await db.query<{ id: string; external_id: string | null; cost_micros: string }>(
    `select id, external_id, coalesce(cost_micros, 0)::text as cost_micros from provider_calls
     where recipe_hash = $1 and state = 'succeeded'
     order by (output_sha256 = $2) desc nulls last, created_at desc limit 1`,
    [asset.recipe_hash, asset.sha256],
  );
  const [spend] = await db.query<{ spent: string }>(
    `select coalesce(sum(case state when 'succeeded' then cost_micros when 'in_doubt' then estimated_cost_micros end), 0)::text as spent
     from provider_calls where recipe_hash = $1`,
    [asset.recipe_hash],
  );
  return {
    callId: made?.id ?? null,
    externalId: made?.external_id ?? null,
    costMicros: Number(made?.cost_micros ?? 0),
    recipeSpendMicros: Number(spend?.spent ?? 0),
  };
}
