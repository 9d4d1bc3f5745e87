import type { BlobStore } from "../blobs/store.js";
import { assetKey, referenceKey } from "../blobs/store.js";
import { sha256Hex } from "../domain/canonical.js";
import { checksPassed } from "../domain/checks.js";
import { ShotlistError } from "../domain/errors.js";
import type { OutputFormat } from "../domain/recipe.js";
import { runChecks } from "../pipeline/checks.js";
import { decodeImage } from "../pipeline/decode.js";
import type { ProviderRegistry } from "../providers/registry.js";
import { EXTENSIONS } from "../queue/render-slot.js";
import { getRecipes, type OnPublishing, publishOnSlots } from "../store/assets.js";
import type { Db, Queryable } from "../store/db.js";
import { enqueueJob } from "../store/jobs.js";
import type { RenderJobPayload } from "../store/products.js";
import {
  getReviewItem,
  getSlotRenderPlan,
  insertHumanAsset,
  insertReviewDecision,
  listReviewCandidates,
  lockProductSlot,
  type ReviewItemRow,
  type ReviewStatus,
  returnSlotToPending,
  setReviewStatus,
} from "../store/review.js";

export interface ReviewDeps {
  db: Db;
  blobs: BlobStore;
  providers: ProviderRegistry;
  limits: {
    /** Decompression-bomb guard for uploaded images (SHOTLIST_MAX_PIXELS). */
    maxPixels: number;
    /** Attempts of a requeued render job (SHOTLIST_MAX_ATTEMPTS). */
    maxAttempts: number;
  };
  /** The publish hook every render and intake publish runs (write-back, outbound webhooks). */
  onPublishing?: OnPublishing;
  /** Called after a commit that created jobs (wakes in-process workers). */
  onJobsCreated?: (count: number) => void;
}

/** Who decided: the API key of the request (null only when API keys are off, in benchmarks). */
export interface Decider {
  apiKeyId: number | null;
}

/** The image types a human upload may be, by sharp's format name. */
export const UPLOAD_FORMATS: Readonly<Record<string, OutputFormat>> = {
  "image/jpeg": "jpeg",
  "image/png": "png",
  "image/webp": "webp",
};

const notFound = (id: number) =>
  new ShotlistError("not_found", `no review item ${id}`, { status: 404 });

/**
 * Runs one decision in one transaction: the product and the slot are locked first (the order
 * of every publish: product, then slots), then the item, whose status must be one of `allowed` — so two
 * reviewers deciding at once cannot both win, and the second gets a 409.
 */
async function decide<T>(
  deps: ReviewDeps,
  id: number,
  allowed: readonly ReviewStatus[],
  work: (tx: Queryable, item: ReviewItemRow) => Promise<T>,
): Promise<T> {
  const seen = await getReviewItem(deps.db, id);
  if (!seen) throw notFound(id);
  return deps.db.transaction(async (tx) => {
    await lockProductSlot(tx, seen.sku, seen.slot);
    const item = await getReviewItem(tx, id, { lock: true });
    if (!item) throw notFound(id);
    assertStatus(item, allowed);
    return work(tx, item);
  });
}

function assertStatus(item: ReviewItemRow, allowed: readonly ReviewStatus[]): void {
  if (allowed.includes(item.status)) return;
  throw new ShotlistError(
    "review_item_resolved",
    item.status === "rejected"
      ? `review item ${item.id} was rejected; upload an image or reject it again with requeue`
      : `review item ${item.id} is ${item.status}; it takes no further decision`,
    { status: 409, extra: { itemStatus: item.status } },
  );
}

async function slotPlanOf(db: Queryable, item: ReviewItemRow): Promise<RenderJobPayload> {
  const plan = await getSlotRenderPlan(db, item.recipe_hash);
  if (!plan) {
    throw new ShotlistError(
      "internal",
      `review item ${item.id}: no render job for recipe ${item.recipe_hash}`,
      { status: 500 },
    );
  }
  return plan;
}

/**
 * Publishes a rejected candidate (default: the newest) as the slot's asset despite its failed
 * checks: a human's decision, recorded with the key that made it.
 */
export async function approveReviewItem(
  deps: ReviewDeps,
  id: number,
  request: { assetId?: number; reason?: string },
  decider: Decider,
): Promise<{ assetId: number }> {
  return decide(deps, id, ["open"], async (tx, item) => {
    const candidates = await listReviewCandidates(tx, [id]);
    const chosen =
      request.assetId === undefined
        ? candidates[0]
        : candidates.find((candidate) => candidate.id === request.assetId);
    if (!chosen) {
      throw new ShotlistError(
        "review_candidate_unknown",
        request.assetId === undefined
          ? `review item ${id} has no candidate to approve; upload an image or reject it with requeue`
          : `asset ${request.assetId} is not a candidate of review item ${id}${candidates.length > 0 ? ` (candidates: ${candidates.map((c) => c.id).join(", ")})` : ""}`,
        { status: 422 },
      );
    }
    const afterPublish = await deps.onPublishing?.(tx, { sku: item.sku });
    // The item is settled before its slot leaves review, so the slot trigger leaves it alone.
    await setReviewStatus(tx, id, "approved");
    await tx.query("update assets set state = 'published' where id = $1", [chosen.id]);
    const published = await publishOnSlots(tx, item.recipe_hash, chosen.id);
    await insertReviewDecision(tx, {
      itemId: id,
      decision: "approved",
      reason: request.reason ?? null,
      assetId: chosen.id,
      apiKeyId: decider.apiKeyId,
    });
    await afterPublish?.(published);
    return { assetId: chosen.id };
  });
}

/**
 * Records a rejection. With `requeue`, a new render job runs the slot's chain again from the
 * first link of that provider (and model) and the slot returns to pending; without it the
 * slot stays in review, its item marked rejected.
 */
export async function rejectReviewItem(
  deps: ReviewDeps,
  id: number,
  request: { reason: string; requeue?: { provider: string; model?: string } },
  decider: Decider,
): Promise<{ jobId: number | null }> {
  const requeue = request.requeue;
  if (requeue && !deps.providers.names().includes(requeue.provider)) {
    throw new ShotlistError(
      "requeue_not_allowed",
      `no provider named "${requeue.provider}" is registered (registered: ${deps.providers.names().join(", ")})`,
      { status: 422 },
    );
  }
  // A rejected item can still be requeued later; it cannot be rejected twice.
  const allowed: ReviewStatus[] = requeue ? ["open", "rejected"] : ["open"];
  const jobId = await decide(deps, id, allowed, async (tx, item) => {
    if (!requeue) {
      await setReviewStatus(tx, id, "rejected");
      await insertReviewDecision(tx, {
        itemId: id,
        decision: "rejected",
        reason: request.reason,
        apiKeyId: decider.apiKeyId,
      });
      return null;
    }
    const plan = await slotPlanOf(tx, item);
    const recipes = await getRecipes(tx, plan.links);
    const start = plan.links.findIndex((hash) => {
      const recipe = recipes.get(hash);
      return (
        recipe?.provider === requeue.provider &&
        (requeue.model === undefined || recipe.model === requeue.model)
      );
    });
    const startRecipe = recipes.get(plan.links[start] ?? "");
    if (start < 0 || !startRecipe) {
      const chain = plan.links.map((hash) => {
        const recipe = recipes.get(hash);
        return recipe ? `${recipe.provider}:${recipe.model}` : hash;
      });
      throw new ShotlistError(
        "requeue_not_allowed",
        `the chain of slot ${item.slot} has no link ${requeue.provider}${requeue.model === undefined ? "" : `:${requeue.model}`} (its chain: ${chain.join(" → ")})`,
        { status: 422 },
      );
    }
    await setReviewStatus(tx, id, "requeued");
    const payload: RenderJobPayload = { ...plan, startLink: start };
    // One requeue per item (it settles the item), so the item id makes the job key unique.
    const job = await enqueueJob(tx, {
      kind: "render",
      key: `render:${item.recipe_hash}:review-${id}`,
      payload,
      maxAttempts: deps.limits.maxAttempts,
    });
    await returnSlotToPending(tx, item.sku, item.slot, item.recipe_hash);
    await insertReviewDecision(tx, {
      itemId: id,
      decision: "requeued",
      reason: request.reason,
      jobId: job.id,
      provider: startRecipe.provider,
      model: startRecipe.model,
      apiKeyId: decider.apiKeyId,
    });
    return job.id;
  });
  if (jobId !== null) deps.onJobsCreated?.(1);
  return { jobId };
}

/**
 * A human-made image for the slot: decoded under the pixel limit, held to the slot's own checks
 * (the same `runChecks` as a render), stored content-addressed and published with
 * made_by = human. An image that fails a check is refused (422) and nothing is kept.
 */
export async function uploadReviewImage(
  deps: ReviewDeps,
  id: number,
  upload: { bytes: Buffer; contentType: string },
  decider: Decider,
): Promise<{ assetId: number }> {
  const live: ReviewStatus[] = ["open", "rejected"];
  // Cheap refusals first: an unknown or settled item is not worth decoding an image for.
  const seen = await getReviewItem(deps.db, id);
  if (!seen) throw notFound(id);
  assertStatus(seen, live);
  const declared = UPLOAD_FORMATS[upload.contentType];
  if (!declared) {
    throw new ShotlistError(
      "unsupported_media_type",
      `send the image as ${Object.keys(UPLOAD_FORMATS).join(", ")}; got ${upload.contentType || "no Content-Type"}`,
      { status: 415 },
    );
  }
  if (upload.bytes.length === 0) {
    throw new ShotlistError("image_undecodable", "the body is empty; send the image bytes", {
      status: 400,
    });
  }
  let info: Awaited<ReturnType<typeof decodeImage>>;
  try {
    info = await decodeImage(upload.bytes, { maxPixels: deps.limits.maxPixels });
  } catch (error) {
    // A body that is not an image is a bad request; a bomb keeps its 413 image_too_large.
    if (error instanceof ShotlistError && error.code === "image_undecodable") {
      throw new ShotlistError("image_undecodable", error.message, { status: 400, cause: error });
    }
    throw error;
  }
  if (info.format !== declared) {
    throw new ShotlistError(
      "unsupported_media_type",
      `the body is ${info.format} but Content-Type says ${upload.contentType}`,
      { status: 415 },
    );
  }
  const plan = await slotPlanOf(deps.db, seen);
  const recipe = (await getRecipes(deps.db, [seen.recipe_hash])).get(seen.recipe_hash);
  if (!recipe) {
    throw new ShotlistError("internal", `recipe ${seen.recipe_hash} is missing`, { status: 500 });
  }
  const reference = recipe.references[0];
  const input = reference ? await deps.blobs.get(referenceKey(reference)) : undefined;
  const checks = await runChecks(upload.bytes, plan.checks, recipe.output, input);
  if (!checksPassed(checks)) {
    const failed = checks.filter((check) => !check.passed);
    throw new ShotlistError(
      "check_failed",
      `the image fails the checks of slot ${seen.slot}: ${failed.map((check) => `${check.name}: ${check.detail}`).join("; ")}`,
      { status: 422, extra: { failedChecks: failed, checks } },
    );
  }
  const sha256 = sha256Hex(upload.bytes);
  const ext = EXTENSIONS[declared];
  // Content-addressed: written before the commit, harmless if the commit fails (no row names it).
  await deps.blobs.put(assetKey(sha256, ext), upload.bytes);
  return decide(deps, id, live, async (tx, item) => {
    const afterPublish = await deps.onPublishing?.(tx, { sku: item.sku });
    await setReviewStatus(tx, id, "replaced");
    const assetId = await insertHumanAsset(tx, {
      sha256,
      ext,
      recipeHash: item.recipe_hash,
      // DESIGN §1: the human is the chain's last link, after every automatic one.
      link: plan.links.length,
      width: info.width,
      height: info.height,
      byteSize: upload.bytes.length,
      checks,
    });
    const published = await publishOnSlots(tx, item.recipe_hash, assetId);
    await insertReviewDecision(tx, {
      itemId: id,
      decision: "uploaded",
      assetId,
      apiKeyId: decider.apiKeyId,
    });
    await afterPublish?.(published);
    return { assetId };
  });
}
