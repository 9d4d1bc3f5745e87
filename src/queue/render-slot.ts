import type { BlobStore } from "../blobs/store.js";
import { assetKey, referenceKey } from "../blobs/store.js";
import { sha256Hex } from "../domain/canonical.js";
import { checksPassed } from "../domain/checks.js";
import { errorMessage, ShotlistError } from "../domain/errors.js";
import type { OutputFormat, Recipe } from "../domain/recipe.js";
import { runChecks } from "../pipeline/checks.js";
import { DEFAULT_MAX_PIXELS } from "../pipeline/decode.js";
import { renderCutoutInput, renderOnImage } from "../pipeline/render.js";
import {
  isPaidProvider,
  type PaidProvider,
  ProviderCallError,
  type ProviderRequest,
  type ProviderResult,
} from "../providers/provider.js";
import type { ProviderRegistry } from "../providers/registry.js";
import { TEMPLATE_PROVIDER } from "../providers/template/index.js";
import {
  getRecipes,
  insertAsset,
  markSlotsForReview,
  type OnPublishing,
  publishOnSlots,
} from "../store/assets.js";
import type { Queryable } from "../store/db.js";
import type { AttemptRecord, ClaimedJob } from "../store/jobs.js";
import { type RenderJobPayload, referenceLuminanceGrid } from "../store/products.js";
import { type PaidCallDeps, runPaidCall, settleCallsOfJob } from "./paid-call.js";
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
  /** The ledger and resilience policies every paid provider's call goes through. */
  paid: PaidCallDeps;
  /** Decompression-bomb guard of the local work around paid calls; default 40,000,000 pixels. */
  maxPixels?: number;
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
        let result: ProviderResult;
        let references: Map<string, Buffer>;
        try {
          references = await loadReferences(deps.blobs, recipe);
          const provider = deps.providers.get(recipe.provider);
          result = isPaidProvider(provider)
            ? await runPaidLink(
                deps,
                provider,
                { recipe, recipeHash: hash, references },
                job,
                context,
              )
            : await provider.run({ recipe, recipeHash: hash, references }, context);
        } catch (error) {
          const stop = linkStopOf(error, job);
          if (stop === "retry") {
            // Retryable or unknown: the whole job is retried with backoff (the worker records it).
            throw error;
          }
          const message = errorMessage(error);
          record(stop.outcome, message);
          if (stop.wait) {
            // onBudget wait (the budget allows again at the next UTC day by default), or another
            // worker's call of this recipe under way until its deadline: not a failure.
            return {
              state: "deferred",
              reason: `${label}: ${message}`,
              delayMs: stop.delayMs,
              attempts,
            };
          }
          reasons.push(`${label}: ${stop.reason}: ${message}`);
          continue;
        }
        const inputHash = recipe.references[0];
        const input = inputHash ? references.get(inputHash) : undefined;
        // The input's grid as intake measured it, so the photo is not decoded again here.
        const inputGrid =
          payload.checks.notInput && inputHash && input
            ? await referenceLuminanceGrid(deps.db, inputHash)
            : undefined;
        const checks = await runChecks(
          result.bytes,
          payload.checks,
          recipe.output,
          input,
          inputGrid,
        );
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
          // Provenance (issue 5 §3, §5): the provider's id of the call, and a template's output says so.
          providerRequestId: result.providerRequestId ?? null,
          madeBy:
            recipe.provider === TEMPLATE_PROVIDER ? ("template" as const) : ("provider" as const),
        };
        if (passed) {
          record("succeeded", null, checks);
          return {
            state: "succeeded",
            attempts,
            write: async (tx) => {
              // A call an earlier attempt left pending (its worker died) has no one else to end it.
              // Only paid links make calls: a job of local and template links has none to look for.
              if (mayHaveCalls(deps.providers, recipes.values())) {
                await settleCallsOfJob(tx, deps.blobs, job.id, context.log);
              }
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
      // Given up (perhaps without running: its workers died on every attempt): a call one of
      // them left pending is adopted from its receipt or recorded in doubt, not left open.
      await settleCallsOfJob(tx, deps.blobs, job.id);
      const payload = job.payload as RenderJobPayload;
      const primary = payload.links[0];
      if (!primary) return;
      const slots = await markSlotsForReview(tx, primary, reason);
      await deps.onNeedsReview?.(tx, slots, reason);
    },
  };
}

/**
 * A paid link (issue 5 §2): optionally the local cut-out of the reference as the provider's
 * input (`input: cutout`), the paid call through the ledger (reused on retry: a finished call is
 * never paid again), then the local `then` steps on its output. The ledger is keyed by the link's
 * recipe hash, which covers the paid part and the local part: a change of either is a new recipe.
 * With `then`, the provider is asked for a lossless PNG at the output size so a cut-out's alpha
 * reaches the local steps; the final encoding is the local pipeline's.
 */
async function runPaidLink(
  deps: RenderSlotDeps,
  provider: PaidProvider,
  request: ProviderRequest,
  job: ClaimedJob,
  context: JobContext,
): Promise<ProviderResult> {
  const { recipe, recipeHash } = request;
  const maxPixels = deps.maxPixels ?? DEFAULT_MAX_PIXELS;
  const then = recipe.then ?? [];
  let paidRequest = request;
  if (recipe.input === "cutout") {
    const cut = await localWork(recipe, context.signal, () =>
      renderCutoutInput(recipe, request.references, { maxPixels, signal: context.signal }),
    );
    const cutHash = sha256Hex(cut);
    // The provider's request names its input by content hash, like any reference image.
    paidRequest = {
      ...paidRequest,
      recipe: { ...paidRequest.recipe, references: [cutHash] },
      references: new Map([[cutHash, cut]]),
    };
  }
  if (then.length > 0) {
    paidRequest = {
      ...paidRequest,
      recipe: { ...paidRequest.recipe, output: { ...recipe.output, format: "png" } },
    };
  }
  const paid = await runPaidCall(deps.paid, provider, paidRequest, {
    jobId: job.id,
    signal: context.signal,
  });
  if (then.length === 0) return paid.result;
  const finished = await localWork(recipe, context.signal, () =>
    renderOnImage(recipe, paid.result.bytes, {
      maxPixels,
      recipeHash,
      // A provider's output finished by local steps: AI media combined with other work.
      digitalSourceType: "compositeWithTrainedAlgorithmicMedia",
      signal: context.signal,
    }),
  );
  return {
    ...finished,
    costMicros: paid.result.costMicros,
    ...(paid.result.providerRequestId === undefined
      ? {}
      : { providerRequestId: paid.result.providerRequestId }),
  };
}

/**
 * Local work around a paid call. The pipeline is deterministic, so a libvips failure here fails
 * the same way on every retry: permanent, the slot moves down its chain (as the local provider
 * does). Step-order and missing-reference errors are already permanent ShotlistErrors.
 */
async function localWork<T>(
  recipe: Recipe,
  signal: AbortSignal,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ShotlistError || signal.aborted) throw error;
    throw new ShotlistError(
      "provider_error",
      `local steps of slot ${recipe.slot} failed: ${errorMessage(error)}`,
      { status: 500, retryable: false, cause: error },
    );
  }
}

type LinkStop =
  | "retry"
  | { outcome: AttemptRecord["outcome"]; reason: string; wait?: boolean; delayMs: number };

/**
 * Why a link failed, as a fallback reason (issue 3 §5), or "retry" for a failure the whole job
 * retries. A retryable provider failure on the job's last attempt moves down the chain instead:
 * the next link can still make the slot, and a missing image is the one failure we never choose.
 */
function linkStopOf(error: unknown, job: ClaimedJob): LinkStop {
  const lastAttempt = job.attempts >= job.max_attempts;
  if (error instanceof ProviderCallError) {
    if (error.kind === "timeout") return { outcome: "timeout", reason: "timeout", delayMs: 0 };
    if (error.kind === "bad_output") {
      return { outcome: "check_failed", reason: "check failed (decodes)", delayMs: 0 };
    }
    if (error.retryable) {
      if (!lastAttempt) return "retry";
      const outcome = error.kind === "rate_limited" ? "rate_limited" : "error";
      return { outcome, reason: "provider error", delayMs: 0 };
    }
    return { outcome: "error", reason: "provider error", delayMs: 0 };
  }
  if (error instanceof ShotlistError) {
    if (error.code === "budget_exhausted") {
      const delayMs = Number(error.extra.retryAfterMs ?? 0);
      return {
        outcome: "budget",
        reason: "budget",
        wait: error.extra.onBudget === "wait",
        delayMs,
      };
    }
    if (error.code === "provider_call_in_progress") {
      const delayMs = Number(error.extra.retryAfterMs ?? 0);
      return { outcome: "deferred", reason: "call in progress", wait: true, delayMs };
    }
    if (error.code === "circuit_open") {
      return { outcome: "circuit_open", reason: "circuit open", delayMs: 0 };
    }
    if (error.code === "provider_error" && error.retryable && lastAttempt) {
      // E.g. an async job still running at the provider on the last attempt: the next link
      // can still make the slot (the open call stays in the ledger, counted at its estimate).
      return { outcome: "error", reason: "provider error", delayMs: 0 };
    }
    if (!error.retryable) {
      const outcome = error.code === "cannot_make_locally" ? "cannot_make" : "error";
      return { outcome, reason: outcome === "cannot_make" ? "cannot make" : "error", delayMs: 0 };
    }
  }
  return "retry";
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

/** Whether any of these recipes' providers is paid (or unknown now): only those record calls. */
function mayHaveCalls(providers: ProviderRegistry, recipes: Iterable<Recipe>): boolean {
  const registered = new Set(providers.names());
  for (const recipe of recipes) {
    if (!registered.has(recipe.provider)) return true;
    if (isPaidProvider(providers.get(recipe.provider))) return true;
  }
  return false;
}
