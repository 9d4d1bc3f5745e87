import type { FastifyInstance } from "fastify";
import { ShotlistError } from "../../domain/errors.js";
import type { Runtime } from "../../runtime.js";
import { catalogueCoverage } from "../../store/coverage.js";
import { getJob, type JobState, listAttempts, listJobs } from "../../store/jobs.js";

const STATES: readonly JobState[] = [
  "queued",
  "running",
  "retrying",
  "succeeded",
  "failed",
  "needs_review",
];

function jobView(job: NonNullable<Awaited<ReturnType<typeof getJob>>>) {
  return {
    id: job.id,
    kind: job.kind,
    key: job.key,
    state: job.state,
    attempts: job.attempts,
    maxAttempts: job.max_attempts,
    runAt: job.run_at,
    lastError: job.last_error,
    payload: job.payload,
    createdAt: job.created_at,
    updatedAt: job.updated_at,
    finishedAt: job.finished_at,
  };
}

export function jobRoutes(app: FastifyInstance, runtime: Runtime) {
  app.get<{ Querystring: { state?: string; cursor?: string; limit?: string } }>(
    "/v1/jobs",
    async (request) => {
      const { state, cursor } = request.query;
      if (state !== undefined && !STATES.includes(state as JobState)) {
        throw new ShotlistError("invalid_request", `state must be one of ${STATES.join(", ")}`);
      }
      const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new ShotlistError("invalid_request", "limit must be an integer from 1 to 1000");
      }
      const afterId = cursor === undefined ? 0 : Number(cursor);
      if (!Number.isSafeInteger(afterId) || afterId < 0) {
        throw new ShotlistError("invalid_request", "cursor is not one this API returned");
      }
      const jobs = await listJobs(runtime.db, {
        state: state as JobState | undefined,
        afterId,
        limit,
      });
      const last = jobs.at(-1);
      return {
        jobs: jobs.map(jobView),
        nextCursor: jobs.length === limit && last ? String(last.id) : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>("/v1/jobs/:id", async (request) => {
    const id = Number(request.params.id);
    if (!Number.isSafeInteger(id) || id <= 0) {
      throw new ShotlistError("invalid_request", "job id must be a positive integer");
    }
    const job = await getJob(runtime.db, id);
    if (!job) throw new ShotlistError("not_found", `no job ${id}`, { status: 404 });
    return { ...jobView(job), attemptLog: await listAttempts(runtime.db, id) };
  });

  app.get("/v1/coverage", async () => catalogueCoverage(runtime.db));
}
