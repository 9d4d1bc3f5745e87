import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { submitProduct } from "../../src/intake/submit.js";
import { listAttempts } from "../../src/store/jobs.js";
import { listCalls, type ProviderCallRow } from "../../src/store/provider-calls.js";
import { type FakePaidProvider, startFakePaidProvider } from "../fakes/paid-provider.js";
import { createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { type CliProcess, runCli } from "../helpers/cli.js";
import { assertBillReconciles, reconcileBill } from "../helpers/ledger-reconciliation.js";
import { drawSyntheticCatalogue, paidShotList } from "../helpers/synthetic-catalogue.js";

const API_KEY_ENV = "SHOTLIST_ASYNC_RESUME_KEY";
const CATEGORY = "home";
/** Long enough that the worker is killed while the provider is still working on the job. */
const JOB_MS = 4_000;

// DESIGN §6: "an async provider's external id is stored the moment it is returned, so a retried
// job resumes polling instead of paying again" — here with real worker processes and a real
// SIGKILL between the submit and the end of the provider's job.
describe("a worker process killed between an async submit and its last poll", () => {
  let env: TestRuntime;
  let fake: FakePaidProvider;
  let configDir: string;
  const workers: CliProcess[] = [];
  before(async () => {
    fake = await startFakePaidProvider({ asyncDurationMs: JOB_MS });
    configDir = mkdtempSync(join(tmpdir(), "shotlist-async-resume-"));
    const configPath = join(configDir, "shots.yaml");
    writeFileSync(
      configPath,
      paidShotList({
        category: CATEGORY,
        slots: 1,
        sidePx: 320,
        baseUrl: fake.url,
        apiKeyEnv: API_KEY_ENV,
        timeoutMs: 2_000,
        mode: "async",
        pollIntervalMs: 100,
      }),
    );
    env = await createTestRuntime("postgres", {
      SHOTLIST_CONFIG: configPath,
      [API_KEY_ENV]: fake.apiKey,
      SHOTLIST_LEASE_MS: "1500",
    });
  });
  after(async () => {
    for (const worker of workers) worker.child.kill("SIGKILL");
    await env.cleanup();
    await fake.close();
    rmSync(configDir, { recursive: true, force: true });
  });

  const workerEnv = () => ({
    SHOTLIST_DATABASE_URL: env.databaseUrl ?? "",
    SHOTLIST_DATA_DIR: env.dataDir,
    SHOTLIST_CONFIG: join(configDir, "shots.yaml"),
    [API_KEY_ENV]: fake.apiKey,
    SHOTLIST_LEASE_MS: "1500",
    SHOTLIST_WORKER_CONCURRENCY: "1",
  });
  const submits = () => fake.requests.filter((r) => r.method === "POST" && r.path === "/v1/jobs");
  const pollsOf = (externalId: string) =>
    fake.requests.filter((r) => r.method === "GET" && r.path === `/v1/jobs/${externalId}`);

  it("resumes polling on the next worker: one submit, one billable call, the image published", async () => {
    const [product] = await drawSyntheticCatalogue({
      count: 1,
      views: 1,
      sidePx: 256,
      category: CATEGORY,
      skuPrefix: "ASYNC-RESUME",
      seed: 11,
    });
    assert.ok(product);
    await submitProduct(env.runtime.intake, product);
    const [slot] = await env.runtime.db.query<{ recipe_hash: string }>(
      "select recipe_hash from product_slots where product_sku = $1",
      [product.sku],
    );
    assert.ok(slot);

    const doomed = runCli(["worker"], workerEnv());
    workers.push(doomed);
    // Submitted, its external id stored, and polled at least once by this worker.
    const submitted = await waitFor(
      async () => {
        const [call] = await listCalls(env.runtime.db, slot.recipe_hash);
        return call?.state === "submitted" &&
          call.external_id &&
          pollsOf(call.external_id).length > 0
          ? call
          : undefined;
      },
      "the first worker to submit the job and poll it",
      60_000,
      10,
    );
    const [held] = await env.runtime.db.query<{ id: number; locked_by: string }>(
      "select id, locked_by from jobs where key = $1 and state = 'running'",
      [`render:${slot.recipe_hash}`],
    );
    assert.ok(held, "the job was running when its worker died");
    doomed.child.kill("SIGKILL");
    await doomed.exited;
    const externalId = submitted.external_id ?? "";
    const job = fake.jobs.get(externalId);
    assert.ok(job && Date.now() < job.completesAt, "the provider was still working on it");
    assert.equal(fake.billable, 1);
    const pollsBefore = pollsOf(externalId).length;

    const rescuer = runCli(["worker"], workerEnv());
    workers.push(rescuer);
    const [finished] = await waitFor(
      async () => {
        const rows = await env.runtime.db.query<{ state: string; attempts: number }>(
          "select state, attempts from jobs where id = $1 and state in ('succeeded', 'needs_review')",
          [held.id],
        );
        return rows.length > 0 ? rows : undefined;
      },
      "the job to finish on the second worker",
      60_000,
      50,
    );
    assert.equal(finished?.state, "succeeded");
    assert.equal(finished?.attempts, 2);
    assert.equal(submits().length, 1, "the job was submitted once");
    assert.equal(fake.billable, 1, "one billable call");
    assert.ok(pollsOf(externalId).length > pollsBefore, "the second worker polled the same job");
    const calls: ProviderCallRow[] = await listCalls(env.runtime.db, slot.recipe_hash);
    assert.deepEqual(
      calls.map((call) => [call.id, call.state, call.external_id]),
      [[submitted.id, "succeeded", externalId]],
    );
    const [published] = await env.runtime.db.query<{ state: string; link: number; sha256: string }>(
      `select ps.state, a.link, a.sha256 from product_slots ps join assets a on a.id = ps.asset_id
       where ps.product_sku = $1`,
      [product.sku],
    );
    assert.equal(published?.state, "published");
    assert.equal(published?.link, 0, "published by the paid link, not the fallback");
    assert.equal(published?.sha256, calls[0]?.output_sha256);
    const attempts = await listAttempts(env.runtime.db, held.id);
    assert.deepEqual(
      attempts.map((attempt) => attempt.outcome),
      ["lease_expired", "succeeded"],
    );
    assertBillReconciles(await reconcileBill(env.runtime.db, fake));
    rescuer.child.kill("SIGTERM");
    assert.equal(await rescuer.exited, 0, rescuer.output());
  });
});
