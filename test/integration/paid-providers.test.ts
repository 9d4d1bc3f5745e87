import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { assetKey } from "../../src/blobs/store.js";
import { costsCommand } from "../../src/cli/costs.js";
import { sha256Hex } from "../../src/domain/canonical.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { buildApp } from "../../src/http/app.js";
import { submitProduct } from "../../src/intake/submit.js";
import type { AsyncPaidProvider, SyncPaidProvider } from "../../src/providers/provider.js";
import { type PaidCallDeps, runPaidCall } from "../../src/queue/paid-call.js";
import { getRecipes } from "../../src/store/assets.js";
import type { Db } from "../../src/store/db.js";
import { type JobRow, listAttempts } from "../../src/store/jobs.js";
import {
  callIdsByState,
  costReport,
  finishCall,
  listCalls,
  markSubmitted,
  openCall,
} from "../../src/store/provider-calls.js";
import { type FakePaidProvider, startFakePaidProvider } from "../fakes/paid-provider.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
const API_KEY = "sk_test_paid_providers";
const PRICE = 40_000;

/** Provider name → its policy (YAML flow mapping) and mode; each gets a fake of its own. */
const PROVIDERS: Record<string, { mode: "sync" | "async"; policy: string; noLocal?: true }> = {
  "studio-sync": { mode: "sync", policy: "{ retryBaseMs: 10, retryCapMs: 50 }" },
  "studio-async": { mode: "async", policy: "{ pollIntervalMs: 20, retryBaseMs: 10 }" },
  "studio-crash": { mode: "sync", policy: "{ retryBaseMs: 10 }" },
  "studio-flaky": { mode: "sync", policy: "{ retries: 3, retryBaseMs: 10, retryCapMs: 20 }" },
  "studio-breaker": {
    mode: "sync",
    policy: "{ retries: 0, breaker: { failures: 2, halfOpenAfterMs: 600000 } }",
  },
  "studio-budget": {
    mode: "sync",
    policy: `{ dailyBudgetMicros: ${PRICE * 2}, onBudget: fallback, concurrency: 4 }`,
  },
  "studio-wait": {
    mode: "sync",
    policy: `{ dailyBudgetMicros: ${PRICE}, onBudget: wait, budgetRetryMs: 3600000 }`,
  },
  "studio-timeout": { mode: "sync", policy: "{ timeoutMs: 400, retries: 0 }" },
  "studio-review": {
    mode: "sync",
    policy: "{ dailyBudgetMicros: 0, onBudget: fallback }",
    noLocal: true,
  },
  "studio-down": {
    mode: "sync",
    policy: "{ retries: 0, breaker: { failures: 100, halfOpenAfterMs: 1000 } }",
  },
  "studio-outage": { mode: "sync", policy: "{ retryBaseMs: 10 }" },
  "studio-orphan": { mode: "sync", policy: "{ retryBaseMs: 10 }" },
};

/** The statement that closes a ledger row (finishCall). */
const CLOSE_CALL_SQL = /^\s*update provider_calls set state = \$2/;

/**
 * The database as a worker sees it in an outage, for the one statement that matters here: the
 * close of a ledger row fails as pg fails a statement whose session the server ended (57P01),
 * `failures` times (Infinity: until the end); every other statement goes through. The real
 * outage, with a PostgreSQL server stopped under worker processes, is pg-restart.test.ts.
 */
function closingUnreachable(db: Db, failures: number): Db & { refused(): number } {
  let refused = 0;
  return {
    kind: db.kind,
    exec: (sql) => db.exec(sql),
    transaction: (work) => db.transaction(work),
    close: () => db.close(),
    refused: () => refused,
    async query<Row>(sql: string, params?: readonly unknown[]) {
      if (CLOSE_CALL_SQL.test(sql) && refused < failures) {
        refused++;
        throw Object.assign(new Error("terminating connection due to administrator command"), {
          code: "57P01",
        });
      }
      return db.query<Row>(sql, params);
    },
  };
}

const LOCAL_LINK = `{ provider: local, model: sharp, steps: [{ op: cutout }, { op: crop }, { op: place, fill: 0.85, background: "#ffffff" }] }`;

function shotListYaml(fakes: Map<string, FakePaidProvider>): string {
  const providers = Object.entries(PROVIDERS)
    .map(
      ([name, { mode, policy }]) =>
        `  ${name}: { kind: http, baseUrl: "${fakes.get(name)?.url}", apiKeyEnv: STUDIO_API_KEY, mode: ${mode}, price: { perCallMicros: ${PRICE} }, policy: ${policy} }`,
    )
    .join("\n");
  const categories = Object.entries(PROVIDERS)
    .map(
      ([name, { noLocal }]) =>
        `  ${name.replace("studio-", "cat-")}:\n    slots: [hero]\n    overrides:\n      hero:\n        chain:\n          - { provider: ${name}, model: studio-1, prompt: "{{title}} on white" }${noLocal ? "" : `\n          - ${LOCAL_LINK}`}`,
    )
    .join("\n");
  return `version: 1
defaults:
  output: { width: 800, height: 800, format: jpeg, quality: 85 }
providers:
${providers}
slots:
  hero:
    source: { reference: 0 }
    chain:
      - ${LOCAL_LINK}
    checks:
      whiteBorder: { minValue: 250 }
      fill: { min: 0.80, max: 0.95 }
      notBlank: { minStdDev: 4 }
      notInput: true
categories:
${categories}
`;
}

for (const backend of BACKENDS) {
  describe(`paid providers, the call ledger and fallbacks on ${backend}`, () => {
    let env: TestRuntime;
    let configDir: string;
    const fakes = new Map<string, FakePaidProvider>();
    before(async () => {
      for (const name of Object.keys(PROVIDERS)) {
        fakes.set(name, await startFakePaidProvider({ apiKey: API_KEY, asyncDurationMs: 40 }));
      }
      configDir = mkdtempSync(join(tmpdir(), "shotlist-paid-"));
      const configPath = join(configDir, "shotlist.yaml");
      writeFileSync(configPath, shotListYaml(fakes));
      env = await createTestRuntime(backend, {
        SHOTLIST_CONFIG: configPath,
        STUDIO_API_KEY: API_KEY,
      });
    });
    after(async () => {
      await env.cleanup();
      for (const fake of fakes.values()) await fake.close();
      rmSync(configDir, { recursive: true, force: true });
    });

    const fake = (name: string) => {
      const found = fakes.get(name);
      if (!found) throw new Error(`no fake ${name}`);
      return found;
    };
    const category = (provider: string) => provider.replace("studio-", "cat-");

    async function submit(sku: string, provider: string): Promise<string> {
      const result = await submitProduct(env.runtime.intake, {
        sku,
        title: `Stoneware mug ${sku}`,
        category: category(provider),
        referenceImages: [{ base64: photo.toString("base64") }],
      });
      assert.ok(result);
      const [slot] = await env.runtime.db.query<{ recipe_hash: string }>(
        "select recipe_hash from product_slots where product_sku = $1 and slot = 'hero'",
        [sku],
      );
      assert.ok(slot, `no hero slot for ${sku}`);
      return slot.recipe_hash;
    }

    async function jobOf(recipeHash: string): Promise<JobRow> {
      const [job] = await env.runtime.db.query<JobRow>("select * from jobs where key = $1", [
        `render:${recipeHash}`,
      ]);
      assert.ok(job, `no job for ${recipeHash}`);
      return job;
    }

    /** Runs a worker until every given recipe's job is finished (or, with `until`, that holds). */
    async function work(
      recipeHashes: string[],
      until: (jobs: JobRow[]) => boolean = (jobs) =>
        jobs.every((job) => job.state === "succeeded" || job.state === "needs_review"),
      concurrency = 2,
    ): Promise<JobRow[]> {
      const worker = env.runtime.startWorker({ pollMs: 20, retryBaseMs: 20, concurrency });
      try {
        return await waitFor(
          async () => {
            const jobs = await Promise.all(recipeHashes.map(jobOf));
            return until(jobs) ? jobs : undefined;
          },
          "the jobs to finish",
          60_000,
        );
      } finally {
        await worker.stop();
      }
    }

    async function publishedLink(sku: string): Promise<number | null> {
      const [row] = await env.runtime.db.query<{ state: string; link: number | null }>(
        `select ps.state, a.link from product_slots ps left join assets a on a.id = ps.asset_id
         where ps.product_sku = $1 and ps.slot = 'hero'`,
        [sku],
      );
      assert.equal(row?.state, "published", `hero of ${sku} is ${row?.state}`);
      return row?.link ?? null;
    }

    const paidDeps = (): PaidCallDeps => ({
      db: env.runtime.db,
      blobs: env.runtime.blobs,
      resilience: new Map(),
    });

    it("publishes a sync provider's image after exactly one billable call, recorded in the ledger", async () => {
      const studio = fake("studio-sync");
      const billed = studio.billable;
      const primary = await submit("SYNC-1", "studio-sync");
      const [job] = await work([primary]);
      assert.equal(job?.state, "succeeded");
      assert.equal(await publishedLink("SYNC-1"), 0);
      assert.equal(studio.billable, billed + 1);
      const calls = await listCalls(env.runtime.db, primary);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.state, "succeeded");
      assert.equal(Number(calls[0]?.cost_micros), PRICE);
      assert.equal(calls[0]?.attempt, 1);
      assert.deepEqual(studio.billedKeys().slice(-1), [calls[0]?.id]);
      const [asset] = await env.runtime.db.query<{ sha256: string; cost_micros: number }>(
        "select a.sha256, a.cost_micros from assets a join product_slots ps on ps.asset_id = a.id where ps.product_sku = 'SYNC-1'",
      );
      assert.equal(
        asset?.sha256,
        calls[0]?.output_sha256,
        "the published bytes are the call's output",
      );
      assert.equal(Number(asset?.cost_micros), PRICE);
    });

    it("submits an async job once, stores its external id and polls it to the published image", async () => {
      const studio = fake("studio-async");
      const billed = studio.billable;
      const primary = await submit("ASYNC-1", "studio-async");
      await work([primary]);
      assert.equal(await publishedLink("ASYNC-1"), 0);
      assert.equal(studio.billable, billed + 1);
      const [call] = await listCalls(env.runtime.db, primary);
      assert.equal(call?.state, "succeeded");
      assert.ok(call?.external_id && studio.jobs.has(call.external_id));
      const polls = studio.requests.filter(
        (request) => request.path === `/v1/jobs/${call.external_id}`,
      );
      assert.ok(polls.length >= 1, "the job was polled");
    });

    it("resumes polling after a crash between submit and poll, without a second submit", async () => {
      const studio = fake("studio-async");
      const primary = await submit("ASYNC-CRASH", "studio-async");
      // What a worker did before it died: the ledger row, the submit, the external id.
      const provider = env.runtime.providers.get("studio-async") as AsyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      const opened = await openCall(env.runtime.db, {
        recipeHash: primary,
        provider: "studio-async",
        model: "studio-1",
        jobId: (await jobOf(primary)).id,
        estimatedCostMicros: PRICE,
        holdMs: 60_000,
        dailyBudgetMicros: null,
      });
      assert.equal(opened.kind, "opened");
      if (opened.kind !== "opened") return;
      const { externalId } = await provider.submit(
        { recipe, recipeHash: primary, references: new Map([[recipe.references[0] ?? "", photo]]) },
        { callId: opened.call.id, signal: new AbortController().signal },
      );
      await markSubmitted(env.runtime.db, opened.call.id, externalId);
      const submitsBefore = studio.requests.filter((r) => r.path === "/v1/jobs").length;
      const billed = studio.billable;
      await work([primary]);
      assert.equal(await publishedLink("ASYNC-CRASH"), 0);
      assert.equal(studio.requests.filter((r) => r.path === "/v1/jobs").length, submitsBefore);
      assert.equal(studio.billable, billed, "no second submit was billed");
      const calls = await listCalls(env.runtime.db, primary);
      assert.deepEqual(
        calls.map((call) => [call.state, call.external_id]),
        [["succeeded", externalId]],
      );
    });

    it("reuses a succeeded call's output when the job runs again, without a new call", async () => {
      const studio = fake("studio-sync");
      const primary = await submit("SYNC-REUSE", "studio-sync");
      const provider = env.runtime.providers.get("studio-sync") as SyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      const request = {
        recipe,
        recipeHash: primary,
        references: new Map([[recipe.references[0] ?? "", photo]]),
      };
      // A worker paid for the call, then died before it could finish the job.
      const first = await runPaidCall(paidDeps(), provider, request, {
        jobId: null,
        signal: new AbortController().signal,
      });
      assert.equal(first.reused, false);
      const billed = studio.billable;
      await work([primary]);
      assert.equal(await publishedLink("SYNC-REUSE"), 0);
      assert.equal(studio.billable, billed, "the retry made no new call");
      const calls = await listCalls(env.runtime.db, primary);
      assert.equal(calls.length, 1);
      const again = await runPaidCall(paidDeps(), provider, request, {
        jobId: null,
        signal: new AbortController().signal,
      });
      assert.equal(again.reused, true);
      assert.equal(again.callId, first.callId);
      assert.deepEqual(again.result.bytes, first.result.bytes);
      assert.equal(studio.billable, billed);
    });

    it("marks a dead worker's pending sync call in doubt, counts it as spent, and only then calls again", async () => {
      const studio = fake("studio-crash");
      const primary = await submit("SYNC-DEAD", "studio-crash");
      const provider = env.runtime.providers.get("studio-crash") as SyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      // The dead worker's row: committed, its call sent (and billed), then nothing.
      const opened = await openCall(env.runtime.db, {
        recipeHash: primary,
        provider: "studio-crash",
        model: "studio-1",
        jobId: null,
        estimatedCostMicros: PRICE,
        holdMs: 1,
        dailyBudgetMicros: null,
      });
      assert.equal(opened.kind, "opened");
      if (opened.kind !== "opened") return;
      await provider.run(
        { recipe, recipeHash: primary, references: new Map([[recipe.references[0] ?? "", photo]]) },
        { callId: opened.call.id, signal: new AbortController().signal },
      );
      assert.equal(studio.billable, 1);
      await work([primary]);
      assert.equal(await publishedLink("SYNC-DEAD"), 0);
      const calls = await listCalls(env.runtime.db, primary);
      assert.deepEqual(
        calls.map((call) => call.state),
        ["in_doubt", "succeeded"],
      );
      assert.equal(studio.billable, 2);
      const report = await costReport(env.runtime.db, null);
      const line = report.lines.find((row) => row.provider === "studio-crash");
      assert.equal(line?.inDoubt, 1);
      assert.equal(line?.inDoubtMicros, PRICE);
      assert.equal(line?.succeeded, 1);
      assert.equal(line?.spentMicros, PRICE);
    });

    it("defers a job whose recipe's call another worker holds, then reuses that call's output", async () => {
      const studio = fake("studio-crash");
      const primary = await submit("SYNC-HELD", "studio-crash");
      const provider = env.runtime.providers.get("studio-crash") as SyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      // A live holder: its call is under way for up to a minute.
      const opened = await openCall(env.runtime.db, {
        recipeHash: primary,
        provider: "studio-crash",
        model: "studio-1",
        jobId: null,
        estimatedCostMicros: PRICE,
        holdMs: 60_000,
        dailyBudgetMicros: null,
      });
      assert.equal(opened.kind, "opened");
      if (opened.kind !== "opened") return;
      const startedAt = Date.now();
      const [deferred] = await work([primary], ([job]) => job?.state === "retrying");
      assert.equal(deferred?.attempts, 0, "waiting for the holder does not use up an attempt");
      assert.ok(
        new Date(deferred?.run_at ?? 0).getTime() >= startedAt + 55_000,
        "until its deadline",
      );
      const attempts = await listAttempts(env.runtime.db, deferred?.id ?? 0);
      assert.equal(attempts.at(-1)?.outcome, "deferred");
      // The holder finishes; the job, when due, reuses its output.
      const billed = studio.billable;
      const result = await provider.run(
        { recipe, recipeHash: primary, references: new Map([[recipe.references[0] ?? "", photo]]) },
        { callId: opened.call.id, signal: new AbortController().signal },
      );
      const sha256 = sha256Hex(result.bytes);
      await env.runtime.blobs.put(assetKey(sha256, "jpg"), result.bytes);
      await finishCall(env.runtime.db, opened.call.id, {
        state: "succeeded",
        costMicros: PRICE,
        outputSha256: sha256,
        outputExt: "jpg",
      });
      await env.runtime.db.query("update jobs set run_at = now() where id = $1", [deferred?.id]);
      await work([primary]);
      assert.equal(await publishedLink("SYNC-HELD"), 0);
      assert.equal(studio.billable, billed + 1, "one call, the holder's");
      assert.equal((await listCalls(env.runtime.db, primary)).length, 1);
    });

    it("retries a 500 and a 429, waiting at least the Retry-After, and is billed once", async () => {
      const studio = fake("studio-flaky");
      studio.setFaults({ script: ["500", "429"], retryAfterSeconds: 1 });
      const primary = await submit("SYNC-FLAKY", "studio-flaky");
      await work([primary]);
      assert.equal(await publishedLink("SYNC-FLAKY"), 0);
      const posts = studio.requests.filter((r) => r.path === "/v1/images");
      assert.deepEqual(
        posts.map((r) => [r.fault, r.billed]),
        [
          ["500", false],
          ["429", false],
          ["ok", true],
        ],
      );
      const [, limited, retried] = posts;
      assert.ok(limited && retried);
      assert.ok(
        retried.at - limited.at >= 1000,
        `the retry came ${retried.at - limited.at} ms after the 429's Retry-After: 1`,
      );
      assert.equal(studio.billable, 1);
      const calls = await listCalls(env.runtime.db, primary);
      assert.deepEqual(
        calls.map((call) => [call.attempt, call.state]),
        [
          [1, "failed"],
          [2, "failed"],
          [3, "succeeded"],
        ],
      );
    });

    it("hands a Retry-After longer than maxInlineWaitMs to the queue instead of holding the worker", async () => {
      const studio = fake("studio-flaky");
      studio.setFaults({ script: ["429"], retryAfterSeconds: 120 });
      const posts = studio.requests.length;
      const primary = await submit("SYNC-LONG-429", "studio-flaky");
      const startedAt = Date.now();
      const [job] = await work([primary], ([only]) => only?.state === "retrying");
      assert.equal(studio.requests.length, posts + 1, "one request, no inline retry");
      assert.equal(job?.attempts, 1);
      assert.ok(
        new Date(job?.run_at ?? 0).getTime() >= startedAt + 119_000,
        "run_at honours Retry-After",
      );
      assert.match(job?.last_error ?? "", /rate_limited/);
      const [call] = await listCalls(env.runtime.db, primary);
      assert.equal(call?.state, "failed");
    });

    it("retries the job while the provider fails, and on its last attempt moves down the chain", async () => {
      const studio = fake("studio-down");
      studio.setFaults({ rates: { "500": 1 } });
      const primary = await submit("SYNC-DOWN", "studio-down");
      const [job] = await work([primary]);
      assert.equal(job?.state, "succeeded");
      assert.equal(job?.attempts, env.settings.maxAttempts);
      assert.equal(await publishedLink("SYNC-DOWN"), 1);
      assert.equal(
        studio.requests.filter((r) => r.path === "/v1/images").length,
        env.settings.maxAttempts,
        "one call an attempt (no inline retries configured)",
      );
      const attempts = await listAttempts(env.runtime.db, job?.id ?? 0);
      const last = attempts.filter((a) => a.attempt === env.settings.maxAttempts);
      assert.deepEqual(
        last.map((a) => [a.link, a.outcome]),
        [
          [0, "error"],
          [1, "succeeded"],
        ],
      );
      assert.match(last[0]?.error ?? "", /unavailable/);
      assert.equal(studio.billable, 0);
    });

    it("sends the slot to review with every link's reason when the chain runs out", async () => {
      const primary = await submit("SYNC-REVIEW", "studio-review");
      const [job] = await work([primary]);
      assert.equal(job?.state, "needs_review");
      const [slot] = await env.runtime.db.query<{ state: string; reason: string }>(
        "select state, reason from product_slots where product_sku = 'SYNC-REVIEW' and slot = 'hero'",
      );
      assert.equal(slot?.state, "needs_review");
      assert.match(
        slot?.reason ?? "",
        /link 0 studio-review:studio-1: budget: .*daily budget reached/,
      );
      assert.equal(fake("studio-review").billable, 0);
    });

    it("opens the circuit after repeated failures and moves the slot down the chain with reason circuit_open", async () => {
      const studio = fake("studio-breaker");
      studio.setFaults({ rates: { "500": 1 } });
      const primary = await submit("SYNC-BREAKER", "studio-breaker");
      const [job] = await work([primary]);
      assert.equal(job?.state, "succeeded");
      assert.equal(await publishedLink("SYNC-BREAKER"), 1, "published by the local link");
      assert.equal(studio.requests.filter((r) => r.path === "/v1/images").length, 2);
      assert.equal(studio.billable, 0);
      const attempts = await listAttempts(env.runtime.db, job?.id ?? 0);
      const open = attempts.find((attempt) => attempt.outcome === "circuit_open");
      assert.equal(open?.link, 0);
      assert.equal(open?.provider, "studio-breaker");
      assert.match(open?.error ?? "", /circuit open/);
      assert.ok(attempts.some((a) => a.outcome === "succeeded" && a.link === 1));
    });

    it("moves a corrupt image and a blank image down the chain as failed checks, and publishes the local link", async () => {
      const studio = fake("studio-sync");
      studio.script("corrupt", "blank");
      const billed = studio.billable;
      const corrupt = await submit("SYNC-CORRUPT", "studio-sync");
      await work([corrupt]);
      const blank = await submit("SYNC-BLANK", "studio-sync");
      await work([blank]);
      assert.equal(studio.billable, billed + 2, "both bad answers were billed");
      for (const [sku, primary] of [
        ["SYNC-CORRUPT", corrupt],
        ["SYNC-BLANK", blank],
      ] as const) {
        const job = await jobOf(primary);
        assert.equal(await publishedLink(sku), 1);
        const attempts = await listAttempts(env.runtime.db, job.id);
        const failed = attempts.find((attempt) => attempt.link === 0);
        assert.equal(failed?.outcome, "check_failed", `${sku}: ${JSON.stringify(attempts)}`);
        assert.ok(attempts.some((a) => a.outcome === "succeeded" && a.link === 1));
        const [call] = await listCalls(env.runtime.db, primary);
        assert.equal(call?.state, "succeeded", "billed calls are succeeded in the ledger");
      }
      const [corruptCall] = await listCalls(env.runtime.db, corrupt);
      assert.equal(corruptCall?.output_sha256, null);
      assert.match(corruptCall?.error ?? "", /bad_output/);
    });

    it("stops paid calls exactly at the daily budget and moves the rest down the chain (onBudget fallback)", async () => {
      const studio = fake("studio-budget");
      const primaries: string[] = [];
      for (let index = 0; index < 5; index++) {
        primaries.push(await submit(`BUDGET-${index}`, "studio-budget"));
      }
      const jobs = await work(primaries, undefined, 5);
      assert.ok(
        jobs.every((job) => job.state === "succeeded"),
        "no job lost",
      );
      assert.equal(studio.billable, 2, "two calls fit a budget of two calls");
      const links = await Promise.all(
        primaries.map((_, index) => publishedLink(`BUDGET-${index}`)),
      );
      assert.equal(links.filter((link) => link === 0).length, 2);
      assert.equal(links.filter((link) => link === 1).length, 3);
      const [spent] = await env.runtime.db.query<{ calls: number }>(
        "select count(*)::integer as calls from provider_calls where provider = 'studio-budget'",
      );
      assert.equal(spent?.calls, 2);
      for (const job of jobs) {
        const attempts = await listAttempts(env.runtime.db, job.id);
        if (attempts.some((a) => a.link === 1 && a.outcome === "succeeded")) {
          const budget = attempts.find((a) => a.link === 0);
          assert.equal(budget?.outcome, "budget");
          assert.match(budget?.error ?? "", /daily budget reached/);
        }
      }
    });

    it("makes jobs wait for the next budget day without using up their attempts (onBudget wait)", async () => {
      const studio = fake("studio-wait");
      const primaries = [
        await submit("WAIT-0", "studio-wait"),
        await submit("WAIT-1", "studio-wait"),
        await submit("WAIT-2", "studio-wait"),
      ];
      const startedAt = Date.now();
      const jobs = await work(primaries, (all) =>
        all.every(
          (job) => job.state === "succeeded" || (job.state === "retrying" && job.attempts === 0),
        ),
      );
      assert.equal(studio.billable, 1);
      const waiting = jobs.filter((job) => job.state === "retrying");
      assert.equal(waiting.length, 2, "two jobs wait; none is lost or given up");
      for (const job of waiting) {
        assert.equal(job.attempts, 0, "a budget wait does not count as an attempt");
        assert.ok(new Date(job.run_at).getTime() >= startedAt + 3_500_000, "waits budgetRetryMs");
        assert.match(job.last_error ?? "", /daily budget reached/);
        const attempts = await listAttempts(env.runtime.db, job.id);
        assert.equal(attempts.at(-1)?.outcome, "budget");
      }
    });

    it("records a sync call that hangs past its timeout as in doubt and publishes the next link (reason timeout)", async () => {
      const studio = fake("studio-timeout");
      studio.script("hang");
      const primary = await submit("SYNC-HANG", "studio-timeout");
      const [job] = await work([primary]);
      assert.equal(await publishedLink("SYNC-HANG"), 1);
      assert.equal(studio.billable, 1, "a hung generation was billed");
      const [call] = await listCalls(env.runtime.db, primary);
      assert.equal(call?.state, "in_doubt");
      const attempts = await listAttempts(env.runtime.db, job?.id ?? 0);
      assert.equal(attempts.find((a) => a.link === 0)?.outcome, "timeout");
    });

    it("lets only one of two workers racing on a recipe make the call", async () => {
      const studio = fake("studio-sync");
      studio.setFaults({ script: ["slow"], slowMs: 400 });
      const billed = studio.billable;
      const primary = await submit("SYNC-RACE", "studio-sync");
      const provider = env.runtime.providers.get("studio-sync") as SyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      const request = {
        recipe,
        recipeHash: primary,
        references: new Map([[recipe.references[0] ?? "", photo]]),
      };
      const race = await Promise.allSettled(
        [0, 1].map(() =>
          runPaidCall(paidDeps(), provider, request, {
            jobId: null,
            signal: new AbortController().signal,
          }),
        ),
      );
      assert.equal(race.filter((r) => r.status === "fulfilled").length, 1);
      const lost = race.find((r) => r.status === "rejected");
      assert.ok(lost?.status === "rejected" && lost.reason instanceof ShotlistError);
      assert.equal((lost.reason as ShotlistError).code, "provider_call_in_progress");
      assert.equal((lost.reason as ShotlistError).retryable, true);
      assert.equal(studio.billable, billed + 1);
    });

    it("keeps closing an answered call's ledger row while the database is unreachable, billed once", async () => {
      const studio = fake("studio-outage");
      const billed = studio.billable;
      const primary = await submit("SYNC-OUTAGE", "studio-outage");
      const provider = env.runtime.providers.get("studio-outage") as SyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      const db = closingUnreachable(env.runtime.db, 3);
      const result = await runPaidCall(
        { ...paidDeps(), db },
        provider,
        {
          recipe,
          recipeHash: primary,
          references: new Map([[recipe.references[0] ?? "", photo]]),
        },
        { jobId: null, signal: new AbortController().signal },
      );
      assert.equal(result.reused, false);
      assert.equal(db.refused(), 3, "the close was refused three times, then went through");
      assert.equal(studio.billable, billed + 1);
      const calls = await listCalls(env.runtime.db, primary);
      assert.deepEqual(
        calls.map((call) => [call.state, call.output_sha256]),
        [["succeeded", sha256Hex(result.result.bytes)]],
      );
    });

    it("adopts the stored output of an answered call whose row could not be closed, instead of paying again", async () => {
      const studio = fake("studio-outage");
      const primary = await submit("SYNC-OUTAGE-ADOPT", "studio-outage");
      const provider = env.runtime.providers.get("studio-outage") as SyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      // The database stays away longer than the worker keeps trying: the call was answered and
      // its output stored, but its row is still pending (with 65 s before anyone may doubt it).
      const db = closingUnreachable(env.runtime.db, Number.POSITIVE_INFINITY);
      const request = {
        recipe,
        recipeHash: primary,
        references: new Map([[recipe.references[0] ?? "", photo]]),
      };
      await assert.rejects(
        runPaidCall({ ...paidDeps(), db, closeRetryMs: 300 }, provider, request, {
          jobId: null,
          signal: new AbortController().signal,
        }),
        (error: unknown) => (error as { code?: string }).code === "57P01",
      );
      assert.ok(db.refused() >= 1);
      const [left] = await listCalls(env.runtime.db, primary);
      assert.equal(left?.state, "pending");
      const billed = studio.billable;
      const [job] = await work([primary]);
      assert.equal(job?.state, "succeeded");
      assert.equal(await publishedLink("SYNC-OUTAGE-ADOPT"), 0);
      assert.equal(studio.billable, billed, "the retry paid nothing");
      const calls = await listCalls(env.runtime.db, primary);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.id, left.id);
      assert.equal(calls[0]?.state, "succeeded");
      assert.equal(Number(calls[0]?.cost_micros), PRICE);
      const [asset] = await env.runtime.db.query<{ sha256: string }>(
        "select a.sha256 from assets a join product_slots ps on ps.asset_id = a.id where ps.product_sku = 'SYNC-OUTAGE-ADOPT'",
      );
      assert.equal(asset?.sha256, calls[0]?.output_sha256, "the published bytes are that call's");
    });

    it("records the call a given-up job left pending as in doubt, and costs count it as spent", async () => {
      const studio = fake("studio-orphan");
      const primary = await submit("SYNC-ORPHAN", "studio-orphan");
      const job = await jobOf(primary);
      const provider = env.runtime.providers.get("studio-orphan") as SyncPaidProvider;
      const recipe = (await getRecipes(env.runtime.db, [primary])).get(primary);
      assert.ok(recipe);
      // The job's last worker opened the row, sent the call (billed) and died; so had the
      // workers of every attempt before, so the next claim gives the job up without running it.
      const opened = await openCall(env.runtime.db, {
        recipeHash: primary,
        provider: "studio-orphan",
        model: "studio-1",
        jobId: job.id,
        estimatedCostMicros: PRICE,
        holdMs: 1,
        dailyBudgetMicros: null,
      });
      assert.equal(opened.kind, "opened");
      if (opened.kind !== "opened") return;
      await provider.run(
        { recipe, recipeHash: primary, references: new Map([[recipe.references[0] ?? "", photo]]) },
        { callId: opened.call.id, signal: new AbortController().signal },
      );
      assert.equal(studio.billable, 1);
      const line = async () =>
        (await costReport(env.runtime.db, null)).lines.find(
          (row) => row.provider === "studio-orphan",
        );
      // Past its holder's deadline (1 ms, long gone after the call) the row is in doubt by
      // definition, even while still pending.
      assert.deepEqual(
        [(await line())?.open, (await line())?.inDoubt, (await line())?.inDoubtMicros],
        [0, 1, PRICE],
      );
      await env.runtime.db.query(
        `update jobs set state = 'running', attempts = max_attempts, locked_by = 'dead-worker',
           lease_until = now() - interval '1 second' where id = $1`,
        [job.id],
      );
      const [ended] = await work([primary]);
      assert.equal(ended?.state, "needs_review");
      assert.match(ended?.last_error ?? "", /gave up after/);
      const [call] = await listCalls(env.runtime.db, primary);
      assert.equal(call?.state, "in_doubt", "not left pending until the recipe's next call");
      assert.match(
        call?.error ?? "",
        new RegExp(`job ${job.id} ended while this call was pending`),
      );
      assert.ok(call?.finished_at);
      assert.deepEqual(
        [(await line())?.open, (await line())?.inDoubt, (await line())?.inDoubtMicros],
        [0, 1, PRICE],
      );
      assert.equal(studio.billable, 1);
    });

    it("reports spend by provider and model that matches every fake's billable count", async () => {
      const report = await costReport(env.runtime.db, null);
      let billable = 0;
      for (const [name, studio] of fakes) {
        billable += studio.billable;
        const lines = report.lines.filter((line) => line.provider === name);
        const counted = lines.reduce((sum, line) => sum + line.succeeded + line.inDoubt, 0);
        assert.equal(
          counted,
          studio.billable,
          `${name}: ledger ${counted}, fake ${studio.billable}`,
        );
        const spent = lines.reduce((sum, line) => sum + line.spentMicros, 0);
        assert.equal(spent, lines.reduce((sum, line) => sum + line.succeeded, 0) * PRICE);
      }
      assert.equal(report.total.succeeded + report.total.inDoubt, billable);
      for (const [name, studio] of fakes) {
        // Key by key: no charge the ledger does not know, no succeeded call the fake did not bill.
        const known = new Set(
          await callIdsByState(env.runtime.db, name, ["succeeded", "in_doubt"]),
        );
        for (const key of studio.billedKeys())
          assert.ok(known.has(key), `${name}: unknown charge ${key}`);
        const billedKeys = new Set(studio.billedKeys());
        for (const id of await callIdsByState(env.runtime.db, name, ["succeeded"])) {
          assert.ok(billedKeys.has(id), `${name}: succeeded call ${id} was not billed`);
        }
      }

      const app = await buildApp(env.runtime);
      try {
        const headers = await apiHeaders(env, ["read"]);
        const answer = await app.inject({ method: "GET", url: "/v1/costs", headers });
        assert.equal(answer.statusCode, 200, answer.body);
        const body = answer.json() as typeof report;
        assert.deepEqual(body.total, report.total);
        const future = await app.inject({
          method: "GET",
          url: "/v1/costs?since=2999-01-01",
          headers,
        });
        assert.equal((future.json() as typeof report).total.calls, 0);
        const bad = await app.inject({ method: "GET", url: "/v1/costs?since=yesterday", headers });
        assert.equal(bad.statusCode, 400);
        assert.match(String(bad.headers["content-type"]), /application\/problem\+json/);
        assert.equal((bad.json() as { code: string }).code, "invalid_request");
        assert.match((bad.json() as { detail: string }).detail, /since/);
      } finally {
        await app.close();
      }

      const scraped = await env.runtime.metrics.registry.metrics();
      assert.match(
        scraped,
        new RegExp(
          `shotlist_provider_spend_today_micros\\{provider="studio-crash",model="studio-1",kind="in_doubt"\\} ${PRICE}`,
        ),
      );

      const printed: string[] = [];
      await costsCommand(env.runtime.db, { json: false }, (line) => printed.push(line));
      assert.match(
        printed.join("\n"),
        /studio-crash\s+studio-1\s+3\s+2\s+0\s+0\s+0\.08\s+1\s+0\.04/,
      );
      await assert.rejects(
        costsCommand(env.runtime.db, { since: "last week", json: true }, () => {}),
        (error: unknown) => error instanceof ShotlistError && error.code === "invalid_request",
      );
    });
  });
}
