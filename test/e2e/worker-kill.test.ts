import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { submitProduct } from "../../src/intake/submit.js";
import { listAttempts } from "../../src/store/jobs.js";
import { createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { type CliProcess, runCli } from "../helpers/cli.js";

const IMAGES = fileURLToPath(new URL("../../examples/catalogue/images/", import.meta.url));

describe("a worker process killed with SIGKILL mid-job", () => {
  let env: TestRuntime;
  const workers: CliProcess[] = [];
  before(async () => {
    env = await createTestRuntime("postgres", { SHOTLIST_LEASE_MS: "1500" });
  });
  after(async () => {
    for (const worker of workers) worker.child.kill("SIGKILL");
    await env.cleanup();
  });

  const workerEnv = () => ({
    SHOTLIST_DATABASE_URL: env.databaseUrl ?? "",
    SHOTLIST_DATA_DIR: env.dataDir,
    SHOTLIST_LEASE_MS: "1500",
    SHOTLIST_WORKER_CONCURRENCY: "1",
  });

  it("loses nothing: the job it held completes on another worker after the lease", async () => {
    for (const sku of ["VASE-AMPHORA", "LAMP-LINEN", "MUG-ENAMEL"]) {
      const photos = [0, 1, 2, 3].map((view) => ({
        base64: readFileSync(`${IMAGES}${sku}-${view}.jpg`).toString("base64"),
      }));
      await submitProduct(env.runtime.intake, {
        sku,
        title: sku,
        category: "home",
        referenceImages: photos,
      });
    }
    const doomed = runCli(["worker"], workerEnv());
    workers.push(doomed);
    const victim = await waitFor(
      async () => {
        const [row] = await env.runtime.db.query<{ id: number; locked_by: string }>(
          "select id, locked_by from jobs where state = 'running' limit 1",
        );
        return row;
      },
      "the first worker to be running a job",
      60_000,
      5,
    );
    doomed.child.kill("SIGKILL");
    await doomed.exited;
    const [stranded] = await env.runtime.db.query<{ state: string; locked_by: string }>(
      "select state, locked_by from jobs where id = $1",
      [victim.id],
    );
    assert.equal(stranded?.state, "running", "the job was still running when its worker died");
    assert.equal(stranded?.locked_by, victim.locked_by);

    const rescuer = runCli(["worker"], workerEnv());
    workers.push(rescuer);
    await waitFor(
      async () => {
        const [row] = await env.runtime.db.query<{ open: number }>(
          "select count(*)::integer as open from jobs where state not in ('succeeded', 'needs_review', 'failed')",
        );
        return row?.open === 0;
      },
      "every job to finish on the second worker",
      120_000,
      100,
    );
    const [job] = await env.runtime.db.query<{
      state: string;
      attempts: number;
      locked_by: string | null;
    }>("select state, attempts, locked_by from jobs where id = $1", [victim.id]);
    assert.equal(job?.state, "succeeded");
    assert.equal(job?.attempts, 2);
    const attempts = await listAttempts(env.runtime.db, victim.id);
    assert.equal(attempts[0]?.outcome, "lease_expired");
    assert.match(
      attempts[0]?.error ?? "",
      new RegExp(victim.locked_by.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")),
    );
    assert.equal(attempts.at(-1)?.outcome, "succeeded");
    const [slots] = await env.runtime.db.query<{ published: number; total: number }>(
      "select count(*) filter (where state = 'published')::integer as published, count(*)::integer as total from product_slots",
    );
    assert.equal(slots?.published, slots?.total, "every slot published");
    rescuer.child.kill("SIGTERM");
    assert.equal(await rescuer.exited, 0, rescuer.output());
  });
});
