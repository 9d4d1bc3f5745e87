import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { errorMessage, ShotlistError } from "../domain/errors.js";
import type { Db, Queryable } from "../store/db.js";
import {
  type AttemptRecord,
  type ClaimedJob,
  claimJobs,
  extendLease,
  finishJob,
  plainAttempt,
  recordAttempts,
} from "../store/jobs.js";
import { fullJitterDelayMs } from "./backoff.js";

export type JobOutcome =
  | { state: "succeeded"; attempts: AttemptRecord[]; write?: (tx: Queryable) => Promise<void> }
  | { state: "needs_review"; reason: string; attempts: AttemptRecord[] }
  /**
   * Not now, and not a failure (a provider's daily budget is spent): the job sleeps `delayMs`
   * and the attempt is not counted, so a job that waits for days is never given up on.
   */
  | { state: "deferred"; reason: string; delayMs: number; attempts: AttemptRecord[] };

export interface JobContext {
  workerId: string;
  /** Aborted when the lease is lost or the worker is stopping hard. */
  signal: AbortSignal;
  log: Logger;
}

export interface JobHandler {
  run(job: ClaimedJob, context: JobContext): Promise<JobOutcome>;
  /** Runs in the transaction that moves the job to needs_review, to record why on its subject. */
  onNeedsReview(tx: Queryable, job: ClaimedJob, reason: string): Promise<void>;
}

export interface WorkerOptions {
  db: Db;
  handlers: Readonly<Record<string, JobHandler>>;
  log: Logger;
  /** Jobs run at once; default 2. */
  concurrency?: number;
  /** Lease length; heartbeats renew it every third of it. Default 30 s. */
  leaseMs?: number;
  /** Idle poll interval; a wake() call cuts it short. Default 500 ms. */
  pollMs?: number;
  /** Retry backoff base and cap; defaults 1 s and 5 min. */
  retryBaseMs?: number;
  retryCapMs?: number;
  workerId?: string;
  /**
   * Runs in the transaction that moves a job to needs_review (after its handler's
   * onNeedsReview), e.g. to write a `job.failed` webhook event with it.
   */
  onGaveUp?: (
    tx: Queryable,
    job: ClaimedJob,
    state: "needs_review",
    reason: string,
  ) => Promise<void>;
  /** Called after each job reaches a state (for metrics and progress). */
  onFinished?: (job: ClaimedJob, state: string, durationMs: number) => void;
}

export interface Worker {
  readonly workerId: string;
  /** Cuts the idle wait short (new jobs were enqueued in this process). */
  wake(): void;
  /** Stops claiming, waits for running jobs to finish. */
  stop(): Promise<void>;
  /** Number of jobs running now. */
  running(): number;
}

/**
 * The worker loop: claim with SKIP LOCKED, run under a heartbeated lease, and finish each job
 * in a transaction fenced by `locked_by` so a worker that lost its lease changes nothing.
 */
export function startWorker(options: WorkerOptions): Worker {
  const workerId =
    options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  const concurrency = options.concurrency ?? 2;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollMs = options.pollMs ?? 500;
  const retryBaseMs = options.retryBaseMs ?? 1_000;
  const retryCapMs = options.retryCapMs ?? 300_000;
  const kinds = Object.keys(options.handlers);
  const log = options.log.child({ workerId });
  const inFlight = new Set<Promise<void>>();
  let stopping = false;
  let wakeUp: (() => void) | undefined;
  let consecutiveClaimErrors = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
    });

  async function runJob(job: ClaimedJob): Promise<void> {
    const started = Date.now();
    const jobLog = log.child({ jobId: job.id, kind: job.kind, key: job.key });
    const handler = options.handlers[job.kind];
    const controller = new AbortController();
    const heartbeat = setInterval(
      () => {
        extendLease(options.db, job.id, workerId, leaseMs)
          .then((ours) => {
            if (!ours) {
              jobLog.warn("lease lost; abandoning the job to its new owner");
              controller.abort(new Error("lease lost"));
            }
          })
          .catch((error: unknown) => jobLog.warn({ err: error }, "heartbeat failed"));
      },
      Math.max(250, Math.floor(leaseMs / 3)),
    );
    let finalState = "unknown";
    try {
      if (!handler) throw new ShotlistError("internal", `no handler for job kind ${job.kind}`);
      if (job.previous_worker) {
        jobLog.warn({ previousWorker: job.previous_worker }, "took over a job whose lease expired");
      }
      if (job.attempts > job.max_attempts) {
        // Its worker died on every attempt (e.g. an image that crashes the process): stop here.
        const reason = `gave up after ${job.max_attempts} attempts; the last worker (${job.previous_worker ?? "unknown"}) stopped while running it`;
        finalState = await giveUp(job, handler, reason, [leaseRecord(job)]);
        return;
      }
      jobLog.debug(`attempt ${job.attempts} of ${job.max_attempts}`);
      const outcome = await handler.run(job, { workerId, signal: controller.signal, log: jobLog });
      const records = job.previous_worker
        ? [leaseRecord(job), ...outcome.attempts]
        : outcome.attempts;
      if (outcome.state === "succeeded") {
        await options.db.transaction(async (tx) => {
          if (!(await finishJob(tx, job.id, workerId, { state: "succeeded" })))
            throw new LeaseLost();
          await recordAttempts(tx, job.id, job.attempts, workerId, records);
          await outcome.write?.(tx);
        });
        finalState = "succeeded";
      } else if (outcome.state === "deferred") {
        await options.db.transaction(async (tx) => {
          const next = {
            state: "retrying" as const,
            error: outcome.reason,
            delayMs: outcome.delayMs,
            refundAttempt: true,
          };
          if (!(await finishJob(tx, job.id, workerId, next))) throw new LeaseLost();
          await recordAttempts(tx, job.id, job.attempts, workerId, records);
        });
        finalState = "deferred";
        jobLog.info({ delayMs: outcome.delayMs }, `job deferred: ${outcome.reason}`);
      } else {
        finalState = await giveUp(job, handler, outcome.reason, records);
      }
    } catch (error) {
      if (error instanceof LeaseLost || controller.signal.aborted) {
        finalState = "abandoned";
        jobLog.warn("job finished after its lease was lost; result discarded");
        return;
      }
      const message = errorMessage(error);
      const permanent = error instanceof ShotlistError && !error.retryable;
      const records: AttemptRecord[] = [plainAttempt("error", message, new Date(started))];
      try {
        if (permanent || job.attempts >= job.max_attempts) {
          const reason = permanent
            ? message
            : `attempt ${job.attempts} of ${job.max_attempts} failed: ${message}`;
          finalState = await giveUp(job, handler ?? noHandler, reason, records);
          jobLog.error({ err: error }, `job gave up: ${reason}`);
        } else {
          // A delay the failure itself asks for (e.g. a 429's Retry-After) is a floor.
          const hinted = error instanceof ShotlistError ? error.extra.retryAfterMs : undefined;
          const delayMs = Math.max(
            fullJitterDelayMs(job.attempts, retryBaseMs, retryCapMs),
            typeof hinted === "number" ? hinted : 0,
          );
          await options.db.transaction(async (tx) => {
            if (
              !(await finishJob(tx, job.id, workerId, {
                state: "retrying",
                error: message,
                delayMs,
              }))
            ) {
              throw new LeaseLost();
            }
            await recordAttempts(tx, job.id, job.attempts, workerId, records);
          });
          finalState = "retrying";
          jobLog.warn(
            { err: error, delayMs },
            `attempt ${job.attempts} of ${job.max_attempts} failed; retrying`,
          );
        }
      } catch (finishError) {
        // The database is unreachable or the lease is gone: the lease expiry hands the job to
        // another worker (or to us again), so nothing is lost.
        finalState = "abandoned";
        jobLog.error(
          { err: finishError },
          "could not record the job's failure; its lease will expire",
        );
      }
    } finally {
      clearInterval(heartbeat);
      options.onFinished?.(job, finalState, Date.now() - started);
    }
  }

  async function giveUp(
    job: ClaimedJob,
    handler: JobHandler,
    reason: string,
    records: AttemptRecord[],
  ): Promise<string> {
    await options.db.transaction(async (tx) => {
      if (!(await finishJob(tx, job.id, workerId, { state: "needs_review", error: reason }))) {
        throw new LeaseLost();
      }
      await recordAttempts(tx, job.id, job.attempts, workerId, records);
      await handler.onNeedsReview(tx, job, reason);
      await options.onGaveUp?.(tx, job, "needs_review", reason);
    });
    return "needs_review";
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      const free = concurrency - inFlight.size;
      if (free <= 0) {
        await Promise.race(inFlight);
        continue;
      }
      let claimed: ClaimedJob[] = [];
      try {
        claimed = await claimJobs(options.db, workerId, free, leaseMs, kinds);
        consecutiveClaimErrors = 0;
      } catch (error) {
        consecutiveClaimErrors++;
        // The database went away (restart, network): back off and keep trying; never exit.
        const delayMs = fullJitterDelayMs(consecutiveClaimErrors, 200, 5_000);
        log.warn({ err: error, delayMs }, "claiming jobs failed; retrying");
        await sleep(delayMs);
        continue;
      }
      for (const job of claimed) {
        const running = runJob(job).finally(() => inFlight.delete(running));
        inFlight.add(running);
      }
      if (claimed.length === 0) {
        await sleep(pollMs);
      }
    }
  }

  const looping = loop();
  log.info({ concurrency, leaseMs }, "worker started");
  return {
    workerId,
    wake: () => wakeUp?.(),
    running: () => inFlight.size,
    async stop() {
      stopping = true;
      wakeUp?.();
      await looping;
      await Promise.allSettled([...inFlight]);
      log.info("worker stopped");
    },
  };
}

class LeaseLost extends Error {
  constructor() {
    super("the job's lease was lost");
  }
}

const noHandler: JobHandler = {
  run: async () => {
    throw new Error("no handler");
  },
  onNeedsReview: async () => {},
};

function leaseRecord(job: ClaimedJob): AttemptRecord {
  return plainAttempt(
    "lease_expired",
    `worker ${job.previous_worker ?? "unknown"} stopped holding the lease (attempt ${job.attempts - 1})`,
    new Date(),
  );
}
