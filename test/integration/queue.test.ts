import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ShotlistError } from "../../src/domain/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { startWorker } from "../../src/queue/worker.js";
import type { Db } from "../../src/store/db.js";
import { claimJobs, enqueueJob, finishJob, getJob, listAttempts } from "../../src/store/jobs.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const log = createLogger("silent");

async function addJobs(db: Db, kind: string, count: number, maxAttempts = 3): Promise<number[]> {
  const ids: number[] = [];
  for (let index = 0; index < count; index++) {
    const job = await db.transaction((tx) =>
      enqueueJob(tx, {
        kind,
        key: `${kind}:${index}:${Math.random()}`,
        payload: { index },
        maxAttempts,
      }),
    );
    ids.push(job.id);
  }
  return ids;
}

for (const backend of BACKENDS) {
  describe(`queue on ${backend}`, () => {
    let env: TestRuntime;
    let db: Db;
    before(async () => {
      env = await createTestRuntime(backend);
      db = env.runtime.db;
    });
    after(() => env.cleanup());

    it("adds no second job for the same key", async () => {
      const first = await db.transaction((tx) =>
        enqueueJob(tx, { kind: "dedupe", key: "dedupe:same", payload: {}, maxAttempts: 3 }),
      );
      const second = await db.transaction((tx) =>
        enqueueJob(tx, {
          kind: "dedupe",
          key: "dedupe:same",
          payload: { other: true },
          maxAttempts: 3,
        }),
      );
      assert.equal(first.created, true);
      assert.equal(second.created, false);
      assert.equal(second.id, first.id);
      const rows = await db.query("select id from jobs where key = 'dedupe:same'");
      assert.equal(rows.length, 1);
    });

    it("never hands the same job to two concurrent claimers", async () => {
      const ids = await addJobs(db, "claim-race", 40);
      const claims = await Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          claimJobs(db, `w${index}`, 7, 60_000, ["claim-race"]),
        ),
      );
      const claimed = claims.flat().map((job) => job.id);
      assert.equal(new Set(claimed).size, claimed.length, "a job was claimed twice");
      assert.deepEqual(
        [...claimed].sort((a, b) => a - b),
        ids.slice(0, claimed.length),
      );
      assert.ok(claimed.length >= 40 || claimed.length === 56, `claimed ${claimed.length}`);
    });

    it("claims a job again once its worker's lease has expired, and fences the old worker off", async () => {
      const [id] = await addJobs(db, "lease", 1);
      const [first] = await claimJobs(db, "dead-worker", 1, 50, ["lease"]);
      assert.equal(first?.id, id);
      assert.deepEqual(
        await claimJobs(db, "other", 1, 60_000, ["lease"]),
        [],
        "the lease still holds",
      );
      const second = await waitFor(
        async () => (await claimJobs(db, "live-worker", 1, 60_000, ["lease"]))[0],
        "the expired lease to be claimable",
        5_000,
      );
      assert.equal(second.id, id);
      assert.equal(second.attempts, 2);
      assert.equal(second.previous_worker, "dead-worker");
      const late = await db.transaction((tx) =>
        finishJob(tx, id ?? 0, "dead-worker", { state: "succeeded" }),
      );
      assert.equal(late, false, "the worker that lost the lease must not finish the job");
      const done = await db.transaction((tx) =>
        finishJob(tx, id ?? 0, "live-worker", { state: "succeeded" }),
      );
      assert.equal(done, true);
      assert.equal((await getJob(db, id ?? 0))?.state, "succeeded");
    });

    it("retries a failing job with backoff and sends it to needs_review with the reason after its last attempt", async () => {
      const [id] = await addJobs(db, "flaky", 1, 3);
      const seen: number[] = [];
      const worker = startWorker({
        db,
        log,
        pollMs: 20,
        retryBaseMs: 10,
        handlers: {
          flaky: {
            async run(job) {
              seen.push(job.attempts);
              throw new Error(`provider hiccup on attempt ${job.attempts}`);
            },
            async onNeedsReview() {},
          },
        },
      });
      try {
        const job = await waitFor(async () => {
          const row = await getJob(db, id ?? 0);
          return row?.state === "needs_review" ? row : undefined;
        }, "the job to give up");
        assert.deepEqual(seen, [1, 2, 3]);
        assert.equal(job.attempts, 3);
        assert.match(job.last_error ?? "", /attempt 3 of 3 failed: provider hiccup on attempt 3/);
        const attempts = await listAttempts(db, id ?? 0);
        assert.deepEqual(
          attempts.map((attempt) => attempt.outcome),
          ["error", "error", "error"],
        );
      } finally {
        await worker.stop();
      }
    });

    it("sends a job that fails permanently to needs_review at once, without retrying", async () => {
      const [id] = await addJobs(db, "permanent", 1, 5);
      let runs = 0;
      const reviewed: string[] = [];
      const worker = startWorker({
        db,
        log,
        pollMs: 20,
        handlers: {
          permanent: {
            async run() {
              runs++;
              throw new ShotlistError("invalid_request", "the provider refused the prompt");
            },
            async onNeedsReview(_tx, _job, reason) {
              reviewed.push(reason);
            },
          },
        },
      });
      try {
        const job = await waitFor(async () => {
          const row = await getJob(db, id ?? 0);
          return row?.state === "needs_review" ? row : undefined;
        }, "the job to give up");
        assert.equal(runs, 1);
        assert.equal(job.attempts, 1);
        assert.deepEqual(reviewed, ["invalid_request: the provider refused the prompt"]);
      } finally {
        await worker.stop();
      }
    });

    it("runs many jobs across two workers exactly once each", async () => {
      const ids = await addJobs(db, "bulk", 60);
      const runs = new Map<number, number>();
      const handler = {
        async run(job: { id: number }) {
          runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
          return { state: "succeeded" as const, attempts: [] };
        },
        async onNeedsReview() {},
      };
      const workers = [1, 2].map(() =>
        startWorker({ db, log, pollMs: 10, concurrency: 3, handlers: { bulk: handler } }),
      );
      try {
        await waitFor(async () => {
          const [row] = await db.query<{ count: number }>(
            "select count(*)::integer as count from jobs where kind = 'bulk' and state = 'succeeded'",
          );
          return row?.count === ids.length;
        }, "all bulk jobs to succeed");
        assert.equal(runs.size, ids.length);
        assert.ok(
          [...runs.values()].every((count) => count === 1),
          "a job ran twice",
        );
      } finally {
        await Promise.all(workers.map((worker) => worker.stop()));
      }
    });
  });
}
