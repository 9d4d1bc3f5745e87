import type { BlobStore } from "../blobs/store.js";
import { assetKey, referenceKey } from "../blobs/store.js";
import { sha256Hex } from "../domain/canonical.js";
import { checksPassed } from "../domain/checks.js";
import { errorMessage, ShotlistError } from "../domain/errors.js";
import type { OutputFormat, Recipe } from "../domain/recipe.js";
import { runChecks } from "../pipeline/checks.js";
import type { ProviderRegistry } from "../providers/registry.js";
import {
  getRecipes,
  insertAsset,
  markSlotsForReview,
  type OnPublishing,
  publishOnSlots,
} from "../store/assets.js";
import type { Queryable } from "../store/db.js";
import type { AttemptRecord, ClaimedJob } from "../store/jobs.js";
import type { RenderJobPayload } from "../store/products.js";
import type { JobContext, JobHandler, JobOutcome } from "./worker.js";

export const EXTENSIONS: Readonly<Record<OutputFormat, string>> = {
  jpeg: "jpg",
  webp: "webp",
  avif: "avif",
  png: "png",
};

export interface RenderSlotDeps {
  blobs: BlobStore;
  providers: ProviderRegistry;
  db: Queryable;
  /** Called for each link tried, for metrics. */
  onLinkFinished?: (event: {
    provider: string;
    slot: string;
    outcome: string;
    durationMs: number;
  }) => void;
  /** Write-back and outbound webhooks of a publish; the intake's takeovers call the same. */
  onPublishing?: OnPublishing;
  /** Runs in the transaction that sends slots to the review queue (outbound webhooks). */
  onNeedsReview?: (
    tx: Queryable,
    slots: { sku: string; slot: string }[],
    reason: string,
  ) => Promise<void>;
}

/**
 * Renders one slot: tries the chain links in order; the first output that passes the slot's
 * checks is published on every product slot whose recipe this is. A link that cannot make the
 * slot, fails permanently or fails its checks moves down the chain; after the last link the
 * slot goes to the review queue with every reason. A retryable error retries the whole job.
 */
export function createRenderSlotHandler(deps: RenderSlotDeps): JobHandler {
  return {
    async run(job: ClaimedJob, context: JobContext): Promise<JobOutcome> {
      const payload = job.payload as RenderJobPayload;
      const recipes = await getRecipes(deps.db, payload.links);
      const attempts: AttemptRecord[] = [];
      const reasons: string[] = [];
      for (const [link, hash] of payload.links.entries()) {
        if (link < (payload.startLink ?? 0)) continue;
        const recipe = recipes.get(hash);
        if (!recipe)
          throw new ShotlistError("internal", `recipe ${hash} of job ${job.id} is missing`);
        const startedAt = new Date();
        const label = `link ${link} ${recipe.provider}:${recipe.model}`;
        const record = (
          outcome: AttemptRecord["outcome"],
          error: string | null,
          checks: unknown = null,
        ) => {
          attempts.push({
            link,
            provider: recipe.provider,
            recipeHash: hash,
            outcome,
            error,
            checks,
            startedAt,
          });
          deps.onLinkFinished?.({
            provider: recipe.provider,
            slot: payload.slot,
            outcome,
            durationMs: Date.now() - startedAt.getTime(),
          });
        };
        let result: Awaited<ReturnType<ReturnType<ProviderRegistry["get"]>["run"]>>;
        let references: Map<string, Buffer>;
        try {
          references = await loadReferences(deps.blobs, recipe);
          result = await deps.providers
            .get(recipe.provider)
            .run({ recipe, recipeHash: hash, references }, context);
        } catch (error) {
          if (error instanceof ShotlistError && !error.retryable) {
            const outcome = error.code === "cannot_make_locally" ? "cannot_make" : "error";
            record(outcome, errorMessage(error));
            reasons.push(`${label}: ${errorMessage(error)}`);
            continue;
          }
          // Retryable or unknown: the whole job is retried with backoff (the worker records it).
          throw error;
        }
        const input = recipe.references[0] ? references.get(recipe.references[0]) : undefined;
        const checks = await runChecks(result.bytes, payload.checks, recipe.output, input);
        const passed = checksPassed(checks);
        const sha256 = sha256Hex(result.bytes);
        const ext = EXTENSIONS[result.format];
        // Rejected outputs are kept too: a reviewer sees what failed and why.
        await deps.blobs.put(assetKey(sha256, ext), result.bytes);
        const asset = {
          sha256,
          ext,
          recipeHash: hash,
          link,
          width: result.width,
          height: result.height,
          byteSize: result.bytes.length,
          costMicros: result.costMicros,
          checks,
        };
        if (passed) {
          record("succeeded", null, checks);
          return {
            state: "succeeded",
            attempts,
            write: async (tx) => {
              const assetId = await insertAsset(tx, { ...asset, state: "published" });
              const primary = payload.links[0] ?? hash;
              const afterPublish = await deps.onPublishing?.(tx, { recipeHash: primary });
              const published = await publishOnSlots(tx, primary, assetId);
              await afterPublish?.(published);
            },
          };
        }
        const failed = checks
          .filter((check) => !check.passed)
          .map((check) => `${check.name}: ${check.detail}`);
        record("check_failed", failed.join("; "), checks);
        reasons.push(`${label}: checks failed (${failed.join("; ")})`);
        await insertAsset(deps.db, { ...asset, state: "rejected" });
      }
      return {
        state: "needs_review",
        reason: reasons.join(" | ") || "no link could make the slot",
        attempts,
      };
    },
    async onNeedsReview(tx: Queryable, job: ClaimedJob, reason: string) {
      const payload = job.payload as RenderJobPayload;
      const primary = payload.links[0];
      if (!primary) return;
      const slots = await markSlotsForReview(tx, primary, reason);
      await deps.onNeedsReview?.(tx, slots, reason);
    },
  };
}

async function loadReferences(blobs: BlobStore, recipe: Recipe): Promise<Map<string, Buffer>> {
  const references = new Map<string, Buffer>();
  for (const sha256 of recipe.references) {
    const bytes = await blobs.get(referenceKey(sha256));
    if (!bytes) {
      throw new ShotlistError(
        "reference_image_missing",
        `reference image ${sha256} is not in the blob store`,
        {
          status: 500,
        },
      );
    }
    references.set(sha256, bytes);
  }
  return references;
}
