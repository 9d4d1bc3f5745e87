import type { FastifyInstance } from "fastify";
import { ShotlistError } from "../../domain/errors.js";
import type { Runtime } from "../../runtime.js";
import { catalogueCoverage } from "../../store/coverage.js";
import { getJob, listAttempts, listJobs } from "../../store/jobs.js";
import { idParamsSchema, jobListQuerySchema, parseRequestPart } from "../schemas.js";

const jobIdParamsSchema = idParamsSchema("job");

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
  app.get("/v1/jobs", async (request) => {
    const { state, cursor, limit } = parseRequestPart(jobListQuerySchema, request.query);
    const jobs = await listJobs(runtime.db, { state, afterId: cursor, limit });
    const last = jobs.at(-1);
    return {
      jobs: jobs.map(jobView),
      nextCursor: jobs.length === limit && last ? String(last.id) : null,
    };
  });

  app.get("/v1/jobs/:id", async (request) => {
    const { id } = parseRequestPart(jobIdParamsSchema, request.params);
    const job = await getJob(runtime.db, id);
    if (!job) throw new ShotlistError("not_found", `no job ${id}`, { status: 404 });
    return { ...jobView(job), attemptLog: await listAttempts(runtime.db, id) };
  });

  app.get("/v1/coverage", async () => catalogueCoverage(runtime.db));
}
