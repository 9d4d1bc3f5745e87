import { canonicalJson, sha256Hex } from "../domain/canonical.js";
import { ShotlistError } from "../domain/errors.js";
import { planProduct, type SlotPlan } from "../domain/plan.js";
import type { ProductInput } from "../domain/product.js";
import type { Recipe } from "../domain/recipe.js";
import type { Queryable } from "../store/db.js";
import { enqueueJob } from "../store/jobs.js";
import {
  getProduct,
  getReferences,
  getVariants,
  type RenderJobPayload,
  takeOverOutcome,
} from "../store/products.js";
import type { IntakeDeps } from "./submit.js";

/** The keys `--where` accepts (issue 5 §4), each matched exactly against the asset's recipe. */
export const REGENERATE_KEYS = ["provider", "model", "slot", "category", "sku"] as const;
export type RegenerateKey = (typeof REGENERATE_KEYS)[number];
export type RegenerateFilter = Partial<Record<RegenerateKey, string>>;

/**
 * Parses `provider=openai,model=gpt-image-1,slot=hero,category=mugs`. An unknown key, a pair
 * without `=`, an empty value or a key given twice is `invalid_request` naming what is wrong,
 * so a typo never silently widens the selection to every asset.
 */
export function parseWhere(text: string): RegenerateFilter {
  const filter: RegenerateFilter = {};
  const pairs = text.split(",").map((pair) => pair.trim());
  if (text.trim() === "" || pairs.some((pair) => pair === "")) {
    throw new ShotlistError(
      "invalid_request",
      `--where "${text}": expected key=value pairs separated by commas (keys: ${REGENERATE_KEYS.join(", ")})`,
      { status: 422 },
    );
  }
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    const key = equals < 0 ? pair : pair.slice(0, equals).trim();
    const value = equals < 0 ? "" : pair.slice(equals + 1).trim();
    if (!(REGENERATE_KEYS as readonly string[]).includes(key)) {
      throw new ShotlistError(
        "invalid_request",
        `--where: unknown key "${key}"; known keys: ${REGENERATE_KEYS.join(", ")}`,
        { status: 422, extra: { key } },
      );
    }
    if (value === "") {
      throw new ShotlistError("invalid_request", `--where: ${key} has no value (${key}=…)`, {
        status: 422,
        extra: { key },
      });
    }
    if (filter[key as RegenerateKey] !== undefined) {
      throw new ShotlistError("invalid_request", `--where: ${key} is given twice`, {
        status: 422,
        extra: { key },
      });
    }
    filter[key as RegenerateKey] = value;
  }
  return filter;
}

/** One published asset whose recipe is out of date with the current shot list and registry. */
export interface AffectedAsset {
  assetId: number;
  sku: string;
  slot: string;
  category: string;
  /** The recipe that made the asset. */
  provider: string;
  model: string;
  modelVersion: string;
  recipeHash: string;
  /** The recipe the slot's chain starts with now (the new job tries it first). */
  newProvider: string;
  newModel: string;
  newModelVersion: string;
  newRecipeHash: string;
  /** The new first link's price: what the slot costs when nothing falls back. */
  estimatedCostMicros: number;
  /** Set after a real run: the render job that makes the new asset. */
  jobId?: number;
  /** False when that job existed already (a regenerate of the same change under way or done). */
  jobCreated?: boolean;
}

export interface RegenerateReport {
  dryRun: boolean;
  filter: RegenerateFilter;
  affected: AffectedAsset[];
  count: number;
  estimatedCostMicros: number;
  jobsCreated: number;
}

interface CandidateRow {
  asset_id: number;
  sku: string;
  slot: string;
  category: string;
  slot_recipe_hash: string;
  asset_recipe_hash: string;
  link: number;
  recipe: Recipe;
}

/**
 * `shotlist regenerate` and `POST /v1/products/{sku}/regenerate` (issue 5 §4, DESIGN §8): finds
 * the published assets whose recipe matches `filter` and whose slot, planned again with the
 * current shot list and model versions, no longer gives the recipe that made them. A dry run
 * only lists them with the estimated cost. A real run, per product in one transaction, records
 * the new recipes, points the slots at them and enqueues their render jobs; the slots keep
 * serving the old asset, which stays published until the new one passes its checks and the
 * render's publish supersedes it. Human-made assets (review uploads) are a person's choice and
 * are never selected.
 */
export async function regenerateAssets(
  deps: Pick<IntakeDeps, "db" | "shotList" | "providers" | "limits" | "onJobsCreated">,
  // `slots` (the HTTP body's list) narrows like `slot`, to any of the names given.
  filter: RegenerateFilter & { slots?: readonly string[] },
  options: { dryRun: boolean },
): Promise<RegenerateReport> {
  const candidates = await deps.db.query<CandidateRow>(
    `select a.id as asset_id, ps.product_sku as sku, ps.slot, p.category,
       ps.recipe_hash as slot_recipe_hash, a.recipe_hash as asset_recipe_hash, a.link, r.recipe
     from product_slots ps
       join products p on p.sku = ps.product_sku
       join assets a on a.id = ps.asset_id
       join recipes r on r.hash = a.recipe_hash
     where a.state = 'published' and a.made_by <> 'human'
       and ($1::text is null or r.provider = $1)
       and ($2::text is null or r.model = $2)
       and ($3::text[] is null or ps.slot = any($3::text[]))
       and ($4::text is null or p.category = $4)
       and ($5::text is null or ps.product_sku = $5)
     order by ps.product_sku, ps.position`,
    [
      filter.provider ?? null,
      filter.model ?? null,
      filter.slots ? [...filter.slots] : filter.slot === undefined ? null : [filter.slot],
      filter.category ?? null,
      filter.sku ?? null,
    ],
  );
  const bySku = new Map<string, CandidateRow[]>();
  for (const row of candidates) bySku.set(row.sku, [...(bySku.get(row.sku) ?? []), row]);

  const report: RegenerateReport = {
    dryRun: options.dryRun,
    filter,
    affected: [],
    count: 0,
    estimatedCostMicros: 0,
    jobsCreated: 0,
  };
  for (const [sku, rows] of bySku) {
    const plans = await planStoredProduct(deps, sku);
    if (!plans) continue;
    const stale: { row: CandidateRow; plan: SlotPlan; affected: AffectedAsset }[] = [];
    for (const row of rows) {
      const plan = plans.find((candidate) => candidate.slot === row.slot);
      const first = plan?.links[0];
      // A slot the shot list no longer has is not regenerated (the next intake removes it).
      if (!plan || !first) continue;
      const sameLink = plan.links[row.link];
      if (sameLink?.recipeHash === row.asset_recipe_hash) continue;
      const affected: AffectedAsset = {
        assetId: Number(row.asset_id),
        sku,
        slot: row.slot,
        category: row.category,
        provider: row.recipe.provider,
        model: row.recipe.model,
        modelVersion: row.recipe.modelVersion,
        recipeHash: row.asset_recipe_hash,
        newProvider: first.recipe.provider,
        newModel: first.recipe.model,
        newModelVersion: first.recipe.modelVersion,
        newRecipeHash: first.recipeHash,
        estimatedCostMicros: deps.providers.get(first.recipe.provider).estimateCostMicros({
          recipe: first.recipe,
          recipeHash: first.recipeHash,
          references: new Map(),
        }),
      };
      stale.push({ row, plan, affected });
    }
    if (stale.length === 0) continue;
    if (!options.dryRun) {
      await deps.db.transaction(async (tx) => {
        // The intake's and the publish's lock order: the product, then its slots.
        await tx.query("select sku from products where sku = $1 for update", [sku]);
        for (const { plan, affected } of stale) {
          const job = await enqueueRegeneration(
            tx,
            sku,
            plan,
            affected.recipeHash,
            deps.limits.maxAttempts,
          );
          affected.jobId = job.id;
          affected.jobCreated = job.created;
        }
      });
    }
    for (const { affected } of stale) {
      report.affected.push(affected);
      report.estimatedCostMicros += affected.estimatedCostMicros;
      if (affected.jobCreated) report.jobsCreated++;
    }
  }
  report.count = report.affected.length;
  if (report.jobsCreated > 0) deps.onJobsCreated?.(report.jobsCreated);
  return report;
}

/** The product as stored, planned again with today's shot list and model versions. */
async function planStoredProduct(
  deps: Pick<IntakeDeps, "db" | "shotList" | "providers">,
  sku: string,
): Promise<SlotPlan[] | undefined> {
  const [product, variants, references] = await Promise.all([
    getProduct(deps.db, sku),
    getVariants(deps.db, sku),
    getReferences(deps.db, sku),
  ]);
  if (!product) return undefined;
  const shotList = deps.shotList.categories.get(product.category);
  if (!shotList) return undefined;
  const input: ProductInput = {
    sku: product.sku,
    title: product.title,
    category: product.category,
    attributes: product.attributes,
    variants: variants.map((variant) => ({ sku: variant.sku, attributes: variant.attributes })),
    referenceImages: [],
  };
  return planProduct(
    input,
    references.map((reference) => reference.sha256),
    shotList,
    deps.providers.modelVersionOf,
  );
}

/**
 * Records the slot's new recipes, enqueues its render job and points the slot at the new first
 * recipe, keeping the slot's state and current asset: the render's publish supersedes that
 * asset only once the new output passed its checks. When only a later link changed, the first
 * recipe (the job key) is the same, so the job gets a key of its own for this chain. Asked
 * again before the job ran, the same key finds the same job: nothing is enqueued twice.
 */
async function enqueueRegeneration(
  tx: Queryable,
  sku: string,
  plan: SlotPlan,
  staleRecipeHash: string,
  maxAttempts: number,
): Promise<{ id: number; created: boolean }> {
  await tx.query(
    `insert into recipes (hash, recipe, provider, model, slot)
     select r.hash, r.recipe, r.provider, r.model, r.slot
     from jsonb_to_recordset($1::jsonb) as r(hash text, recipe jsonb, provider text, model text, slot text)
     on conflict (hash) do nothing`,
    [
      JSON.stringify(
        plan.links.map((link) => ({
          hash: link.recipeHash,
          recipe: link.recipe,
          provider: link.recipe.provider,
          model: link.recipe.model,
          slot: plan.slot,
        })),
      ),
    ],
  );
  const links = plan.links.map((link) => link.recipeHash);
  const primaryKey = `render:${plan.recipeHash}`;
  const [primaryJob] = await tx.query<{ links: string[] }>(
    "select payload->'links' as links from jobs where key = $1",
    [primaryKey],
  );
  // The job of the unchanged first recipe made the stale asset (a later link changed): it is
  // done, so the new chain gets a job of its own, keyed by the whole chain.
  const madeByPrimaryJob = primaryJob?.links.includes(staleRecipeHash) ?? false;
  const payload: RenderJobPayload = { slot: plan.slot, links, checks: plan.checks };
  const job = await enqueueJob(tx, {
    kind: "render",
    key: madeByPrimaryJob
      ? `${primaryKey}:chain-${sha256Hex(canonicalJson(links)).slice(0, 16)}`
      : primaryKey,
    payload,
    maxAttempts,
  });
  await tx.query(
    `update product_slots set recipe_hash = $3, updated_at = now()
     where product_sku = $1 and slot = $2`,
    [sku, plan.slot, plan.recipeHash],
  );
  // The same change regenerated before (or the model switched back): that job's outcome applies.
  if (!job.created) await takeOverOutcome(tx, sku, plan.slot, job.id);
  return job;
}
