import type { FastifyInstance, FastifyRequest } from "fastify";
import type { z } from "zod";
import { ShotlistError } from "../../domain/errors.js";
import {
  approveReviewItem,
  type Decider,
  type ReviewDeps,
  rejectReviewItem,
  uploadReviewImage,
} from "../../review/decisions.js";
import type { Runtime } from "../../runtime.js";
import { getAsset, getRecipes } from "../../store/assets.js";
import type { Queryable } from "../../store/db.js";
import {
  getReviewItem,
  getSlotRenderPlans,
  listReviewAttempts,
  listReviewCandidates,
  listReviewDecisions,
  listReviewItems,
  type ReviewDecisionRow,
  type ReviewItemRow,
} from "../../store/review.js";
import {
  approveReviewSchema,
  idParamsSchema,
  parseRequestPart,
  rejectReviewSchema,
  type reviewDecisionSchema,
  type reviewItemSchema,
  reviewListQuerySchema,
} from "../schemas.js";

const reviewIdParamsSchema = idParamsSchema("review item");

type ReviewItemView = z.output<typeof reviewItemSchema>;
type ReviewDecisionView = z.output<typeof reviewDecisionSchema>;

export function decisionView(row: ReviewDecisionRow): ReviewDecisionView {
  return {
    itemId: row.item_id,
    decision: row.decision,
    reason: row.reason,
    assetId: row.asset_id,
    jobId: row.job_id,
    provider: row.provider,
    model: row.model,
    decidedBy:
      row.api_key_id === null ? null : { keyId: row.api_key_id, name: row.api_key_name ?? "" },
    decidedAt: row.decided_at.toISOString(),
  };
}

/** Review items as the API shows them: each with its attempts, candidates and decisions. */
async function itemViews(
  db: Queryable,
  publicUrl: string,
  rows: readonly ReviewItemRow[],
): Promise<ReviewItemView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => row.id);
  const hashes = [...new Set(rows.map((row) => row.recipe_hash))];
  const [attempts, candidates, decisions, plans, recipes] = await Promise.all([
    listReviewAttempts(db, ids),
    listReviewCandidates(db, ids),
    listReviewDecisions(db, ids),
    getSlotRenderPlans(db, hashes),
    getRecipes(db, hashes),
  ]);
  return rows.map((row) => {
    const output = recipes.get(row.recipe_hash)?.output;
    return {
      id: row.id,
      sku: row.sku,
      category: row.category,
      slot: row.slot,
      status: row.status,
      reason: row.reason,
      since: row.opened_at.toISOString(),
      closedAt: row.closed_at?.toISOString() ?? null,
      recipeHash: row.recipe_hash,
      expected: {
        output: output
          ? { width: output.width, height: output.height, format: output.format }
          : { width: 0, height: 0, format: "unknown" },
        checks: { ...plans.get(row.recipe_hash)?.checks },
      },
      attempts: attempts
        .filter((attempt) => attempt.item_id === row.id)
        .map((attempt) => ({
          jobId: attempt.job_id,
          attempt: attempt.attempt,
          link: attempt.link,
          provider: attempt.provider,
          outcome: attempt.outcome,
          error: attempt.error,
          startedAt: attempt.started_at.toISOString(),
          finishedAt: attempt.finished_at.toISOString(),
        })),
      candidates: candidates
        .filter((candidate) => candidate.item_id === row.id)
        .map((candidate) => ({
          id: candidate.id,
          url: `${publicUrl}/a/${candidate.sha256}.${candidate.ext}`,
          link: candidate.link,
          provider: candidate.provider,
          model: candidate.model,
          failedChecks: candidate.checks.filter((check) => !check.passed),
          createdAt: candidate.created_at.toISOString(),
        })),
      decisions: decisions.filter((decision) => decision.item_id === row.id).map(decisionView),
    };
  });
}

/** The base media type of a request, lower-case, without parameters. */
function mediaTypeOf(request: FastifyRequest): string {
  return (
    String(request.headers["content-type"] ?? "")
      .split(";", 1)[0]
      ?.trim()
      .toLowerCase() ?? ""
  );
}

/**
 * The review queue (DESIGN §1: the fallback chain's last link is a human): the open items,
 * and the three decisions on one — approve a candidate, reject (optionally requeue), or upload
 * a human-made image. Each decision is one transaction; a publish runs the same hook as a
 * render's (Shopify write-back, outbound webhooks).
 */
export function reviewRoutes(app: FastifyInstance, runtime: Runtime) {
  const deps: ReviewDeps = {
    db: runtime.db,
    blobs: runtime.blobs,
    providers: runtime.providers,
    limits: { maxPixels: runtime.settings.maxPixels, maxAttempts: runtime.settings.maxAttempts },
    onPublishing: runtime.intake.onPublishing,
    onJobsCreated: runtime.intake.onJobsCreated,
  };
  const publicUrl = runtime.settings.publicUrl;
  const deciderOf = (request: FastifyRequest): Decider => ({
    apiKeyId: request.apiKey?.id ?? null,
  });

  /** The item after a decision, with the asset it published or the job it queued. */
  async function decisionAnswer(id: number, result: { assetId?: number; jobId?: number | null }) {
    const row = await getReviewItem(runtime.db, id);
    if (!row) throw new ShotlistError("not_found", `no review item ${id}`, { status: 404 });
    const [item] = await itemViews(runtime.db, publicUrl, [row]);
    const asset =
      result.assetId === undefined ? undefined : await getAsset(runtime.db, result.assetId);
    return {
      item,
      asset: asset
        ? { id: asset.id, sha256: asset.sha256, url: `${publicUrl}/a/${asset.sha256}.${asset.ext}` }
        : null,
      jobId: result.jobId ?? null,
    };
  }

  app.get("/v1/review", async (request) => {
    const { cursor, limit, ...filters } = parseRequestPart(reviewListQuerySchema, request.query);
    const rows = await listReviewItems(runtime.db, { ...filters, afterId: cursor, limit });
    const last = rows.at(-1);
    return {
      items: await itemViews(runtime.db, publicUrl, rows),
      nextCursor: rows.length === limit && last ? String(last.id) : null,
    };
  });

  app.get("/v1/review/:id", async (request) => {
    const { id } = parseRequestPart(reviewIdParamsSchema, request.params);
    const row = await getReviewItem(runtime.db, id);
    if (!row) throw new ShotlistError("not_found", `no review item ${id}`, { status: 404 });
    const [item] = await itemViews(runtime.db, publicUrl, [row]);
    return item;
  });

  app.post("/v1/review/:id/approve", async (request) => {
    const { id } = parseRequestPart(reviewIdParamsSchema, request.params);
    // No body means "the newest candidate".
    const body = parseRequestPart(approveReviewSchema, request.body ?? {});
    const result = await approveReviewItem(deps, id, body, deciderOf(request));
    return decisionAnswer(id, result);
  });

  app.post("/v1/review/:id/reject", async (request) => {
    const { id } = parseRequestPart(reviewIdParamsSchema, request.params);
    const body = parseRequestPart(rejectReviewSchema, request.body ?? {});
    const result = await rejectReviewItem(deps, id, body, deciderOf(request));
    return decisionAnswer(id, result);
  });

  // The image route reads its body as raw bytes, whatever the Content-Type says, so that a
  // wrong type is our 415 naming the accepted ones (not the JSON API's), within the image limit.
  app.register(async (images) => {
    images.removeAllContentTypeParsers();
    images.addContentTypeParser(
      "*",
      { parseAs: "buffer", bodyLimit: runtime.settings.maxImageBytes },
      (_request, body, done) => done(null, body),
    );
    images.post("/v1/review/:id/image", async (request, reply) => {
      const { id } = parseRequestPart(reviewIdParamsSchema, request.params);
      const bytes = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const result = await uploadReviewImage(
        deps,
        id,
        { bytes, contentType: mediaTypeOf(request) },
        deciderOf(request),
      );
      return reply
        .code(201)
        .header("location", `/v1/assets/${result.assetId}`)
        .send(await decisionAnswer(id, result));
    });
  });
}
