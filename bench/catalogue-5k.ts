/**
 * Time to image a generated catalogue on the embedded default, ÷ the raw render time of the
 * same recipes.
 *
 *   node --import tsx bench/catalogue-5k.ts [--skus 5000] [--pool 24] [--sample 30]
 *
 * Figure: one process, PGlite + local folder in a temp dir, the shipped shot list, a worker at
 * concurrency 2 running while `importCatalogue` streams the generated CSV through the intake;
 * wall time from the start of the import until no job is open. Baseline (same run, after the
 * figure): renderRecipe ×2 on a fixed sample of the jobs' own recipes (every k-th job by id),
 * extrapolated per job to the whole catalogue. Ratio = orchestrated time ÷ raw render time.
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { writeBigCatalogue } from "../examples/generate.js";
import { referenceKey } from "../src/blobs/store.js";
import { importCatalogue } from "../src/cli/import.js";
import { loadSettings } from "../src/config/env.js";
import { ShotlistError } from "../src/domain/errors.js";
import type { Recipe } from "../src/domain/recipe.js";
import { createLogger } from "../src/observability/logger.js";
import { renderRecipe } from "../src/pipeline/render.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { getRecipes } from "../src/store/assets.js";
import { catalogueCoverage } from "../src/store/coverage.js";
import { countOpenJobs } from "../src/store/jobs.js";
import type { RenderJobPayload } from "../src/store/products.js";
import {
  intOption,
  makeTempDir,
  mapLimited,
  note,
  printResult,
  round,
  runAsScript,
  say,
  timed,
  waitUntil,
} from "./harness.js";

/** Jobs at once in the worker, and renders at once in the baseline: one per core here. */
const CONCURRENCY = 2;
const FULL_SIZE_SKUS = 5000;
const PROGRESS_EVERY_MS = 30_000;

interface SampledRecipe {
  recipe: Recipe;
  hash: string;
  references: Map<string, Buffer>;
}

/**
 * A fixed sample of the jobs' first-link recipes, stratified by slot: each slot gets a share of
 * the sample proportional to its jobs (an even number, at least 2, so both lanes stay busy),
 * taken evenly spaced by job id. With their reference bytes from the blob store.
 */
async function sampleRecipesBySlot(
  runtime: Runtime,
  size: number,
): Promise<Array<{ slot: string; jobs: number; sample: SampledRecipe[] }>> {
  const jobs = await runtime.db.query<{ payload: RenderJobPayload }>(
    "select payload from jobs where kind = 'render' order by id",
  );
  const bySlot = new Map<string, string[]>();
  for (const { payload } of jobs) {
    const hash = payload.links[0];
    if (!hash) continue;
    const hashes = bySlot.get(payload.slot) ?? [];
    hashes.push(hash);
    bySlot.set(payload.slot, hashes);
  }
  const picked = [...bySlot].map(([slot, hashes]) => {
    const share = Math.max(2, 2 * Math.round((size * hashes.length) / jobs.length / 2));
    const take = Math.min(share, hashes.length);
    const stride = hashes.length / take;
    return {
      slot,
      jobs: hashes.length,
      hashes: Array.from({ length: take }, (_, i) => hashes[Math.floor(i * stride)]!),
    };
  });
  const recipes = await getRecipes(
    runtime.db,
    picked.flatMap((group) => group.hashes),
  );
  return Promise.all(
    picked.map(async (group) => ({
      slot: group.slot,
      jobs: group.jobs,
      sample: await Promise.all(
        group.hashes.map(async (hash) => {
          const recipe = recipes.get(hash);
          if (!recipe) throw new Error(`recipe ${hash} is missing`);
          const references = new Map<string, Buffer>();
          for (const sha256 of recipe.references) {
            const bytes = await runtime.blobs.get(referenceKey(sha256));
            if (bytes) references.set(sha256, bytes);
          }
          return { recipe, hash, references };
        }),
      ),
    })),
  );
}

async function main(): Promise<void> {
  const skus = intOption(process.argv, "skus", FULL_SIZE_SKUS);
  const poolSize = intOption(process.argv, "pool", 24);
  const sampleSize = intOption(process.argv, "sample", 30);
  // Bounded, but generous: about 6 jobs a SKU at ~1 s of CPU each, on a noisy machine.
  const timeoutMs = intOption(process.argv, "timeout-min", 10 + Math.ceil(skus / 3)) * 60_000;
  const temp = makeTempDir("catalogue");
  let runtime: Runtime | undefined;
  try {
    const catalogueDir = join(temp.path, "catalogue");
    const generated = await timed(() =>
      writeBigCatalogue({
        outDir: catalogueDir,
        count: skus,
        poolSize,
        formats: ["csv"],
        images: true,
        seed: 1,
      }),
    );
    note(
      `generated ${skus} SKUs over a pool of ${poolSize} photos in ${(generated.ms / 1000).toFixed(1)} s`,
    );

    const settings = loadSettings({
      SHOTLIST_DATA_DIR: join(temp.path, "data"),
      SHOTLIST_WORKER_CONCURRENCY: String(CONCURRENCY),
      SHOTLIST_LOG_LEVEL: "silent",
      // Passed through so that a run can compare pixel threads with none (0).
      ...(process.env.SHOTLIST_PIXEL_THREADS === undefined
        ? {}
        : { SHOTLIST_PIXEL_THREADS: process.env.SHOTLIST_PIXEL_THREADS }),
    });
    // As `npm start` runs it: pixel threads on unless SHOTLIST_PIXEL_THREADS says otherwise.
    runtime = await createRuntime(settings, createLogger("silent"), {
      pixelThreads: availableParallelism(),
    });
    const db = runtime.db;
    const worker = runtime.startWorker({ concurrency: CONCURRENCY });

    const eluStart = performance.eventLoopUtilization();
    // How long the event loop is held at a time: what an HTTP answer in this process waits for.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const started = performance.now();
    const imported = await timed(() =>
      importCatalogue(runtime!.intake, join(catalogueDir, "catalogue.csv"), {
        dryRun: false,
        progress: false,
        print: () => {},
      }),
    );
    const report = imported.result;
    note(
      `imported ${report.rows} rows in ${(imported.ms / 1000).toFixed(1)} s (${report.rejected.length} rejected); ${report.jobsCreated} jobs; worker running`,
    );
    let lastProgress = performance.now();
    await waitUntil(
      async () => (await countOpenJobs(db)) === 0,
      `${report.jobsCreated} jobs to finish`,
      timeoutMs,
      // Counting open jobs scans the open ones (5–20 ms at 28,000 on PGlite, on the main thread
      // the worker needs): every 2 s, not every 250 ms. The end is known to within 2 s of hours.
      2_000,
      () => {
        if (performance.now() - lastProgress < PROGRESS_EVERY_MS) return;
        lastProgress = performance.now();
        void countOpenJobs(db).then((open) => {
          const done = report.jobsCreated - open;
          const elapsedS = (performance.now() - started) / 1000;
          const rate = done / elapsedS;
          note(
            `  ${done}/${report.jobsCreated} jobs in ${elapsedS.toFixed(0)} s (${rate.toFixed(2)} jobs/s, ~${rate > 0 ? Math.round(open / rate) : "?"} s to go)`,
          );
        });
      },
    );
    const wallMs = performance.now() - started;
    const elu = performance.eventLoopUtilization(eluStart);
    loopDelay.disable();
    const delayMs = (value: number) => round(value / 1e6, 1);
    await worker.stop();

    const states = await db.query<{ state: string; count: number; meanMs: number }>(
      `select state, count(*)::integer as count,
         (avg(extract(epoch from finished_at - created_at)) * 1000)::float8 as "meanMs"
       from jobs group by state order by state`,
    );
    const jobs = states.reduce((total, row) => total + row.count, 0);
    const coverage = await catalogueCoverage(db);

    // The same-run baseline: a fixed sample of the very recipes the worker ran, slot by slot.
    const groups = await sampleRecipesBySlot(runtime, sampleSize);
    let cannotMake = 0;
    let rawTotalMs = 0;
    const rawBySlot: string[] = [];
    for (const group of groups) {
      const raw = await timed(() =>
        mapLimited(group.sample, CONCURRENCY, async ({ recipe, hash, references }) => {
          try {
            await renderRecipe(recipe, references, {
              maxPixels: settings.maxPixels,
              recipeHash: hash,
            });
          } catch (error) {
            // The worker meets the same: a slot the local pipeline cannot make goes to review.
            if (!(error instanceof ShotlistError) || error.code !== "cannot_make_locally")
              throw error;
            cannotMake++;
          }
        }),
      );
      const wallMsPerJob = raw.ms / group.sample.length;
      rawTotalMs += wallMsPerJob * group.jobs;
      rawBySlot.push(`${group.slot} ${wallMsPerJob.toFixed(0)} ms ×${group.jobs}`);
    }
    const sampled = groups.reduce((total, group) => total + group.sample.length, 0);
    const rawMsPerJob = rawTotalMs / jobs;
    const ratio = wallMs / rawTotalMs;
    const wallS = wallMs / 1000;
    const productsPerSecond = skus / wallS;
    const jobsPerSecond = jobs / wallS;

    say(
      `catalogue-5k: ${skus} SKUs (${jobs} jobs) on the embedded default (PGlite + local folder), worker concurrency ${CONCURRENCY}`,
    );
    say(
      `  wall time import → no open job: ${wallS.toFixed(1)} s — ${productsPerSecond.toFixed(3)} products/s, ${jobsPerSecond.toFixed(2)} jobs/s`,
    );
    say(
      `  import alone: ${(imported.ms / 1000).toFixed(1)} s for ${report.rows} rows (${report.rejected.length} rejected), worker running alongside`,
    );
    say(
      `  baseline: renderRecipe ×${CONCURRENCY} on a fixed sample of ${sampled} of the same recipes, slot by slot${cannotMake ? ` (${cannotMake} cannot be made locally)` : ""}: ${rawMsPerJob.toFixed(0)} ms of wall per job → ${(rawTotalMs / 1000).toFixed(1)} s for ${jobs} jobs`,
    );
    say(`    wall per job by slot: ${rawBySlot.join(", ")}`);
    say(`  ratio orchestrated time / raw render time: ${ratio.toFixed(3)} (1.0 = no overhead)`);
    say(
      `  jobs by state: ${states.map((row) => `${row.state} ${row.count} (mean ${(row.meanMs / 1000).toFixed(1)} s enqueue → finish)`).join(", ")}`,
    );
    say(
      `  coverage: ${coverage.completeProducts} of ${coverage.products} products complete (${(coverage.productCoverage * 100).toFixed(1)}%), ${coverage.publishedSlots} of ${coverage.requiredSlots} required slots published`,
    );
    say(
      `  main-thread event-loop utilisation during the run: ${(elu.utilization * 100).toFixed(0)}%; event-loop delay p50 ${delayMs(loopDelay.percentile(50))} ms, p99 ${delayMs(loopDelay.percentile(99))} ms, max ${delayMs(loopDelay.max)} ms`,
    );
    if (skus < FULL_SIZE_SKUS) {
      say(
        `  at this rate ${FULL_SIZE_SKUS} SKUs would take ~${(((wallS / skus) * FULL_SIZE_SKUS) / 3600).toFixed(1)} h`,
      );
    }
    printResult({
      bench: "catalogue-5k",
      figure: wallS,
      baseline: rawTotalMs / 1000,
      ratio,
      unit: "s",
      extra: {
        skus,
        jobs,
        productsPerSecond: round(productsPerSecond, 4),
        jobsPerSecond: round(jobsPerSecond, 4),
        importS: round(imported.ms / 1000, 2),
        rawMsPerJob: round(rawMsPerJob, 1),
        sample: sampled,
        eventLoopUtilization: round(elu.utilization, 3),
        eventLoopDelayP99Ms: delayMs(loopDelay.percentile(99)),
        eventLoopDelayMaxMs: delayMs(loopDelay.max),
      },
    });
  } finally {
    await runtime?.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
