import type { Queryable } from "./db.js";

export type JobState = "queued" | "running" | "retrying" | "succeeded" | "failed" | "needs_review";

export interface JobRow {
  id: number;
  kind: string;
  key: string;
  payload: unknown;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: Date;
  locked_by: string | null;
  lease_until: Date | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export interface ClaimedJob extends JobRow {
  /** The worker that held it before, when this claim took over an expired lease. */
  previous_worker: string | null;
}

export interface NewJob {
  kind: string;
  key: string;
  payload: unknown;
  maxAttempts: number;
}

/** Adds a job unless one with the same key exists; returns its id and whether it is new. */
export async function enqueueJob(
  tx: Queryable,
  job: NewJob,
): Promise<{ id: number; created: boolean }> {
  const inserted = await tx.query<{ id: number }>(
    `insert into jobs (kind, key, payload, max_attempts) values ($1, $2, $3, $4)
     on conflict (key) do nothing returning id`,
    [job.kind, job.key, JSON.stringify(job.payload), job.maxAttempts],
  );
  if (inserted[0]) return { id: inserted[0].id, created: true };
  const [existing] = await tx.query<{ id: number }>("select id from jobs where key = $1", [
    job.key,
  ]);
  if (!existing) throw new Error(`job ${job.key} vanished between insert and select`);
  return { id: existing.id, created: false };
}

/**
 * Claims up to `limit` runnable jobs: queued or retrying ones that are due, and running ones
 * whose lease expired (their worker died). SKIP LOCKED lets many workers claim concurrently
 * without waiting on each other or taking the same row.
 */
export async function claimJobs(
  db: Queryable,
  workerId: string,
  limit: number,
  leaseMs: number,
  kinds: readonly string[],
): Promise<ClaimedJob[]> {
  return db.query<ClaimedJob>(
    // Two index walks instead of one OR: due jobs in run_at order from the jobs_ready partial
    // index, expired leases from jobs_leased. A single OR'd WHERE made PostgreSQL scan and sort
    // every open job on each claim (25 ms at 28,000 queued jobs; now well under 1 ms).
    `with expired as (
       select id, locked_by as previous_worker
       from jobs
       where state = 'running' and lease_until < now() and kind = any($4::text[])
       order by lease_until, id
       limit $3
       for update skip locked
     ), due as (
       select id, null::text as previous_worker
       from jobs
       where state in ('queued', 'retrying') and run_at <= now() and kind = any($4::text[])
       order by run_at, id
       limit $3
       for update skip locked
     ), picked as (
       select id, previous_worker from expired
       union all
       select id, previous_worker from due
       limit $3
     )
     update jobs set state = 'running', attempts = jobs.attempts + 1, locked_by = $1,
       lease_until = now() + $2::integer * interval '1 millisecond', updated_at = now()
     from picked where jobs.id = picked.id
     returning jobs.*, picked.previous_worker`,
    [workerId, leaseMs, limit, kinds],
  );
}

/** Extends a lease; false when the job is no longer ours (taken over or finished). */
export async function extendLease(
  db: Queryable,
  jobId: number,
  workerId: string,
  leaseMs: number,
): Promise<boolean> {
  const rows = await db.query(
    `update jobs set lease_until = now() + $3::integer * interval '1 millisecond', updated_at = now()
     where id = $1 and locked_by = $2 and state = 'running' returning id`,
    [jobId, workerId, leaseMs],
  );
  return rows.length > 0;
}

/**
 * Moves a job we hold to its next state. The `locked_by` guard fences off a worker whose
 * lease expired: its late result changes nothing. Returns false when the job is not ours.
 */
export async function finishJob(
  tx: Queryable,
  jobId: number,
  workerId: string,
  next:
    | { state: "succeeded" }
    | { state: "needs_review" | "failed"; error: string }
    | {
        state: "retrying";
        error: string;
        delayMs: number;
        /** The attempt does not count against max_attempts (a budget wait: nothing failed). */
        refundAttempt?: boolean;
      },
): Promise<boolean> {
  const error = next.state === "succeeded" ? null : next.error;
  const delayMs = next.state === "retrying" ? Math.round(next.delayMs) : 0;
  const finished = next.state === "retrying" ? null : "now";
  const refund = next.state === "retrying" && next.refundAttempt === true;
  const rows = await tx.query(
    `update jobs set state = $3, last_error = $4, locked_by = null, lease_until = null,
       run_at = case when $3 = 'retrying' then now() + $5::bigint * interval '1 millisecond' else run_at end,
       finished_at = case when $6::text is null then null else now() end,
       attempts = case when $7::boolean then attempts - 1 else attempts end,
       updated_at = now()
     where id = $1 and locked_by = $2 and state = 'running' returning id`,
    [jobId, workerId, next.state, error, delayMs, finished, refund],
  );
  return rows.length > 0;
}

export interface AttemptRecord {
  link: number | null;
  provider: string | null;
  recipeHash: string | null;
  outcome:
    | "succeeded"
    | "check_failed"
    | "error"
    | "cannot_make"
    | "lease_expired"
    /** Fallback reasons of paid links (0007): no answer in time, daily budget, circuit open, 429. */
    | "timeout"
    | "budget"
    | "circuit_open"
    | "rate_limited"
    /** The job was put back without counting the attempt (budget wait, call held elsewhere). */
    | "deferred";
  error: string | null;
  checks: unknown;
  startedAt: Date;
}

/** An attempt of a job that calls no provider (intake, write-back, webhook delivery, …). */
export function plainAttempt(
  outcome: AttemptRecord["outcome"],
  error: string | null,
  startedAt: Date,
): AttemptRecord {
  return { link: null, provider: null, recipeHash: null, outcome, error, checks: null, startedAt };
}

export async function recordAttempts(
  tx: Queryable,
  jobId: number,
  attempt: number,
  workerId: string,
  records: readonly AttemptRecord[],
): Promise<void> {
  for (const record of records) {
    await tx.query(
      `insert into job_attempts (job_id, attempt, worker, link, provider, recipe_hash, outcome, error, checks, started_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        jobId,
        attempt,
        workerId,
        record.link,
        record.provider,
        record.recipeHash,
        record.outcome,
        record.error,
        record.checks === undefined || record.checks === null
          ? null
          : JSON.stringify(record.checks),
        record.startedAt,
      ],
    );
  }
}

export async function getJob(db: Queryable, id: number): Promise<JobRow | undefined> {
  const [row] = await db.query<JobRow>("select * from jobs where id = $1", [id]);
  return row;
}

export interface JobListQuery {
  state?: JobState;
  afterId?: number;
  limit: number;
}

export async function listJobs(db: Queryable, query: JobListQuery): Promise<JobRow[]> {
  return db.query<JobRow>(
    `select * from jobs where ($1::text is null or state = $1) and id > $2 order by id limit $3`,
    [query.state ?? null, query.afterId ?? 0, query.limit],
  );
}

export async function listAttempts(db: Queryable, jobId: number) {
  return db.query<{
    attempt: number;
    worker: string;
    link: number | null;
    provider: string | null;
    recipe_hash: string | null;
    outcome: string;
    error: string | null;
    checks: unknown;
    started_at: Date;
    finished_at: Date;
  }>(
    `select attempt, worker, link, provider, recipe_hash, outcome, error, checks, started_at, finished_at
     from job_attempts where job_id = $1 order by id`,
    [jobId],
  );
}

export interface QueueDepth {
  state: JobState;
  count: number;
  oldestAgeSeconds: number | null;
}

export async function queueDepth(db: Queryable): Promise<QueueDepth[]> {
  return db.query<QueueDepth>(
    `select state, count(*)::integer as count,
       extract(epoch from now() - min(created_at))::float8 as "oldestAgeSeconds"
     from jobs group by state order by state`,
  );
}

/** Jobs not yet in a terminal state (queued, running, retrying). */
export async function countOpenJobs(db: Queryable): Promise<number> {
  const [row] = await db.query<{ count: number }>(
    "select count(*)::integer as count from jobs where state in ('queued', 'running', 'retrying')",
  );
  return row?.count ?? 0;
}
