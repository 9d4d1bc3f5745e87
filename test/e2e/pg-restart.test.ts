import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSettings } from "../../src/config/env.js";
import { submitProduct } from "../../src/intake/submit.js";
import { createLogger } from "../../src/observability/logger.js";
import { createRuntime } from "../../src/runtime.js";
import type { Queryable } from "../../src/store/db.js";
import { startFakePaidProvider } from "../fakes/paid-provider.js";
import { waitFor } from "../helpers/backends.js";
import { assertBillReconciles, reconcileBill } from "../helpers/ledger-reconciliation.js";
import { type PrivatePostgres, startPrivatePostgres } from "../helpers/private-postgres.js";
import {
  drawSyntheticCatalogue,
  localShotList,
  paidShotList,
  type SyntheticProduct,
} from "../helpers/synthetic-catalogue.js";
import { startWorkerFleet } from "../helpers/worker-fleet.js";

const PRODUCTS = 16;
const SLOTS = 3;
const CATEGORY = "home";
const API_KEY_ENV = "SHOTLIST_RESTART_PROVIDER_KEY";

/** Job and slot figures of a run, in one query. */
async function runFigures(db: Queryable) {
  const [row] = await db.query<{
    jobs: number;
    succeeded: number;
    open: number;
    running: number;
    slots: number;
    published: number;
    reviewed: number;
    unreasoned: number;
  }>(
    `select
       (select count(*)::integer from jobs where kind = 'render') as jobs,
       (select count(*)::integer from jobs where kind = 'render' and state = 'succeeded') as succeeded,
       (select count(*)::integer from jobs where state in ('queued', 'running', 'retrying')) as open,
       (select count(*)::integer from jobs where state = 'running') as running,
       (select count(*)::integer from product_slots) as slots,
       (select count(*)::integer from product_slots where state = 'published') as published,
       (select count(*)::integer from product_slots where state = 'needs_review') as reviewed,
       (select count(*)::integer from product_slots
         where state = 'needs_review' and coalesce(reason, '') = '') as unreasoned`,
  );
  if (!row) throw new Error("no figures");
  return row;
}

/** A poll that treats "the database is not back yet" as "not yet", not as a failure. */
const tolerant =
  <T>(condition: () => Promise<T>) =>
  async (): Promise<T | undefined> => {
    try {
      return await condition();
    } catch {
      return undefined;
    }
  };

// A private server (test/helpers/private-postgres.ts): the machine's PostgreSQL is shared by the
// test files running alongside this one and must never be restarted.
describe("PostgreSQL restarted in the middle of a run with two worker processes", () => {
  let server: PrivatePostgres;
  let products: SyntheticProduct[];
  before(async () => {
    server = await startPrivatePostgres();
    products = await drawSyntheticCatalogue({
      count: PRODUCTS,
      views: SLOTS,
      sidePx: 320,
      category: CATEGORY,
      skuPrefix: "RESTART",
      seed: 7,
    });
  });
  after(async () => {
    await server?.destroy();
  });

  const cases = [
    { mode: "fast", paid: false },
    { mode: "immediate", paid: false },
    { mode: "fast", paid: true },
  ] as const;
  for (const { mode, paid } of cases) {
    const title = paid
      ? `closes paid calls answered during the outage once it is back, pays no recipe twice, and the bill reconciles (pg_ctl stop -m ${mode}, then start)`
      : `keeps its workers, which reconnect and finish every job (pg_ctl stop -m ${mode}, then start)`;
    it(title, async (t) => {
      const databaseUrl = await server.createDatabase(`restart_${mode}_${paid ? "paid" : "local"}`);
      const dataDir = mkdtempSync(join(tmpdir(), "shotlist-restart-"));
      const configPath = join(dataDir, "shots.yaml");
      // Paid: every call answers after 1.5 s, so the calls open when the server stops are
      // still waiting for their answer; their ledger rows cannot be closed until it is back.
      const fake = paid
        ? await startFakePaidProvider({ faults: { rates: { slow: 1 }, slowMs: 1_500 } })
        : undefined;
      writeFileSync(
        configPath,
        fake
          ? paidShotList({
              category: CATEGORY,
              slots: SLOTS,
              sidePx: 400,
              baseUrl: fake.url,
              apiKeyEnv: API_KEY_ENV,
              timeoutMs: 4_000,
            })
          : localShotList({ category: CATEGORY, slots: SLOTS, sidePx: 400 }),
      );
      const env = {
        ...(fake ? { [API_KEY_ENV]: fake.apiKey } : {}),
        SHOTLIST_DATABASE_URL: databaseUrl,
        SHOTLIST_DATA_DIR: dataDir,
        SHOTLIST_CONFIG: configPath,
        SHOTLIST_LEASE_MS: "3000",
        SHOTLIST_RETRY_BASE_MS: "100",
        SHOTLIST_MAX_ATTEMPTS: "8",
        SHOTLIST_WORKER_CONCURRENCY: "2",
      };
      const runtime = await createRuntime(
        loadSettings(env),
        createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
      );
      const fleet = startWorkerFleet({ count: 2, env });
      let exitCodes: (number | null)[] = [];
      try {
        for (const product of products) await submitProduct(runtime.intake, product);
        await fleet.ready();
        const pids = fleet.current().map((worker) => worker.pid);

        const under = await waitFor(
          async () => {
            const figures = await runFigures(runtime.db);
            if (figures.succeeded < 3) return false;
            if (!fake) return figures;
            // A call opened in the last half second is certainly still waiting for its answer.
            const [young] = await runtime.db.query<{ n: number }>(
              `select count(*)::integer as n from provider_calls
               where state = 'pending' and created_at > now() - interval '500 milliseconds'`,
            );
            return (young?.n ?? 0) > 0 && figures;
          },
          "the run to be under way",
          120_000,
          20,
        );
        assert.ok(under.open > 0, "the run was in its middle when the server stopped");
        const [stoppedAt] = await runtime.db.query<{ at: Date }>("select now() as at");
        await server.stop(mode);
        // Every worker process saw the outage: each logged a claim that failed.
        await waitFor(
          async () =>
            fleet.current().every((worker) => /claiming jobs failed/.test(worker.process.output())),
          "both workers to notice the server is gone",
          30_000,
          50,
        );
        if (fake) {
          // Stay down until a paid call has been answered into the outage: its output is stored
          // (with its receipt) but its worker cannot close the ledger row, and keeps trying.
          await waitFor(
            async () =>
              fleet
                .current()
                .some((worker) =>
                  /could not close the ledger row of an answered call/.test(
                    worker.process.output(),
                  ),
                ),
            "a worker to hold an answered paid call it cannot record",
            30_000,
            50,
          );
        }
        await server.start();
        const [restart] = await waitFor(
          tolerant(() => runtime.db.query<{ at: Date }>("select now() as at")),
          "the test's own pool to reconnect",
          30_000,
          100,
        );
        const done = await waitFor(
          tolerant(async () => {
            const figures = await runFigures(runtime.db);
            return figures.open === 0 && figures;
          }),
          "every job to reach a final state",
          180_000,
          200,
        );
        const [afterRestart] = await runtime.db.query<{ finished: number }>(
          "select count(*)::integer as finished from jobs where kind = 'render' and finished_at > $1",
          [restart?.at],
        );
        t.diagnostic(
          `mode ${mode}: ${done.jobs} jobs; ${under.succeeded} done when the server stopped, ${afterRestart?.finished} finished after it came back`,
        );

        for (const worker of fleet.current()) {
          assert.equal(worker.process.child.exitCode, null, `worker ${worker.pid} is alive`);
          assert.equal(worker.process.child.signalCode, null, `worker ${worker.pid} is alive`);
        }
        assert.deepEqual(
          fleet.current().map((worker) => worker.pid),
          pids,
          "the same two processes ran the whole run",
        );
        assert.equal(fleet.all().length, 2, "no worker was restarted");
        assert.equal(
          done.jobs,
          PRODUCTS * SLOTS,
          "one render job per slot: none lost, none doubled",
        );
        assert.equal(done.running, 0, "no job is stuck running");
        assert.equal(done.slots, PRODUCTS * SLOTS);
        assert.equal(done.published, done.slots, "every slot is published");
        assert.ok((afterRestart?.finished ?? 0) > 0, "workers finished jobs after the restart");
        if (fake) {
          const bill = await reconcileBill(runtime.db, fake);
          t.diagnostic(`billing: ${bill.summary}`);
          assertBillReconciles(bill);
          // Every call answered into the outage had its output stored: the row is closed once
          // the server is back (or adopted from its receipt by the job's retry), never paid again.
          assert.deepEqual(
            bill.billedTwice,
            [],
            "no recipe whose output was stored is billed twice",
          );
          const [closedLate] = await runtime.db.query<{ n: number }>(
            `select count(*)::integer as n from provider_calls
             where state = 'succeeded' and created_at < $1 and finished_at > $1`,
            [stoppedAt?.at],
          );
          assert.ok(
            (closedLate?.n ?? 0) > 0,
            "a call opened before the outage was recorded succeeded after it",
          );
        }
      } catch (error) {
        t.diagnostic(fleet.output().slice(-6000));
        t.diagnostic(server.log().slice(-3000));
        throw error;
      } finally {
        exitCodes = await fleet.stop();
        // A failure while it was down must not leave the next case without a server.
        if (!server.running()) await server.start();
        await runtime.close();
        await fake?.close();
        rmSync(dataDir, { recursive: true, force: true });
      }
      assert.deepEqual(exitCodes, [0, 0], "both workers stopped cleanly on SIGTERM");
    });
  }
});
