/**
 * Share of on-demand generations answered within the deadline, under 20 concurrent first-time
 * requests for missing slots.
 *
 *   node --import tsx bench/deadline.ts [--requests 20] [--rounds 1]
 *
 * Figure: N products (different SKUs, the sample catalogue's photos, the shipped hero recipe at
 * 1600 px) are submitted with the worker stopped, so every hero is missing; then the worker
 * (SHOTLIST_WORKER_CONCURRENCY, default 2) starts and, at the same moment, a second process
 * sends `GET /i/{sku}/hero` for all N at once. Each answer is either the real image (made
 * within SHOTLIST_ONDEMAND_DEADLINE_MS, default 2,000 ms) or a fallback (`Shotlist-Fallback`).
 * Figure = share answered with the real image within the deadline as the load process measured
 * it (from the common start to the last byte); p50/p99 answer times are printed too.
 * Baseline: the same N hero recipes rendered directly with `renderRecipe`, as many at a time as
 * the worker runs, all started at once: the share of them finished within the deadline, i.e.
 * what the deadline is up against with no queue, database, checks or HTTP. Measured before and
 * after the Shotlist rounds and pooled, so drift on this shared machine weighs on both.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { heroOnlyShotList } from "../examples/shot-lists.js";
import { loadSettings } from "../src/config/env.js";
import { sha256Hex } from "../src/domain/canonical.js";
import { planProduct } from "../src/domain/plan.js";
import type { Recipe } from "../src/domain/recipe.js";
import { buildApp } from "../src/http/app.js";
import { submitProduct } from "../src/intake/submit.js";
import { createLogger } from "../src/observability/logger.js";
import { renderRecipe } from "../src/pipeline/render.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { countOpenJobs } from "../src/store/jobs.js";
import {
  intOption,
  makeTempDir,
  mapLimited,
  note,
  printResult,
  round,
  runAsScript,
  say,
  taggedJpeg,
  waitUntil,
} from "./harness.js";

const IMAGE_DIR = fileURLToPath(new URL("../examples/catalogue/images/", import.meta.url));
const SIDE_PX = 1600;

interface Product {
  sku: string;
  photo: Buffer;
  photoHash: string;
}

/** One answer as the load process saw it: from the common start to the last byte. */
interface Answer {
  sku: string;
  status: number;
  fallback: string | null;
  ms: number;
}

/**
 * The load generator, in its own process so it never shares Shotlist's event loop: it reads
 * the URLs, waits for "go" on stdin, sends them all at once and prints one JSON line.
 */
const LOAD_SCRIPT = `
const urls = JSON.parse(process.argv[1]);
process.stdin.once("data", async () => {
  const started = performance.now();
  const answers = await Promise.all(urls.map(async (url) => {
    const response = await fetch(url);
    await response.arrayBuffer();
    return {
      sku: url.split("/").at(-2),
      status: response.status,
      fallback: response.headers.get("shotlist-fallback"),
      ms: performance.now() - started,
    };
  }));
  process.stdout.write(JSON.stringify(answers) + "\\n");
  process.exit(0);
});
process.stdout.write("ready\\n");
`;

function products(count: number, round: number): Product[] {
  const photos = readdirSync(IMAGE_DIR)
    .filter((name) => name.endsWith("-0.jpg"))
    .sort();
  return Array.from({ length: count }, (_, index) => {
    const sku = `BENCH-DL-${round}-${String(index + 1).padStart(3, "0")}`;
    const photo = taggedJpeg(readFileSync(join(IMAGE_DIR, photos[index % photos.length]!)), sku);
    return {
      sku,
      photo,
      photoHash: sha256Hex(photo),
    };
  });
}

function percentile(values: readonly number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)] ?? Number.NaN;
}

/** The baseline: each product's hero recipe rendered directly, all started at once. */
async function renderDirectly(
  runtime: Runtime,
  items: readonly Product[],
  concurrency: number,
): Promise<number[]> {
  const shotList = runtime.shotList.categories.get("home");
  if (!shotList) throw new Error("the bench shot list has no home category");
  const recipes = items.map((item) => {
    const [plan] = planProduct(
      {
        sku: item.sku,
        title: "Bench product",
        category: "home",
        attributes: {},
        variants: [],
        referenceImages: [],
      },
      [item.photoHash],
      shotList,
      runtime.providers.modelVersionOf,
    );
    const link = plan?.links[0];
    if (!link) throw new Error(`${item.sku}: no hero plan`);
    return { recipe: link.recipe as Recipe, recipeHash: link.recipeHash, item };
  });
  const started = performance.now();
  return mapLimited(recipes, concurrency, async ({ recipe, recipeHash, item }) => {
    await renderRecipe(recipe, new Map([[item.photoHash, item.photo]]), {
      maxPixels: runtime.settings.maxPixels,
      recipeHash,
    });
    return performance.now() - started;
  });
}

/** Submits the products with no worker running, then starts the worker and the load at once. */
async function throughShotlist(
  runtime: Runtime,
  baseUrl: string,
  items: readonly Product[],
): Promise<Answer[]> {
  for (const item of items) {
    await submitProduct(runtime.intake, {
      sku: item.sku,
      title: "Bench product",
      category: "home",
      referenceImages: [{ base64: item.photo.toString("base64") }],
    });
  }
  const load = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      LOAD_SCRIPT,
      JSON.stringify(items.map((item) => `${baseUrl}/i/${item.sku}/hero`)),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  let stdout = "";
  load.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  await waitUntil(async () => stdout.startsWith("ready\n"), "the load process", 30_000, 10);
  const worker = runtime.startWorker({ pollMs: 20 });
  try {
    load.stdin.write("go\n");
    const [code] = (await once(load, "exit")) as [number | null];
    if (code !== 0) throw new Error(`the load process exited with ${code}`);
    // Let the generations finish, so the next round (or the baseline) has the CPU to itself.
    await waitUntil(
      async () => (await countOpenJobs(runtime.db)) === 0,
      "the hero jobs to finish",
      600_000,
    );
  } finally {
    await worker.stop();
  }
  return JSON.parse(stdout.slice("ready\n".length)) as Answer[];
}

async function main(): Promise<void> {
  const requests = intOption(process.argv, "requests", 20);
  const rounds = intOption(process.argv, "rounds", 1);
  const temp = makeTempDir("deadline");
  writeFileSync(join(temp.path, "shotlist.yaml"), heroOnlyShotList(SIDE_PX));
  const settings = loadSettings({
    ...process.env,
    SHOTLIST_DATA_DIR: join(temp.path, "data"),
    SHOTLIST_CONFIG: join(temp.path, "shotlist.yaml"),
    SHOTLIST_LOG_LEVEL: "warn",
    PORT: "0",
  });
  const deadlineMs = settings.onDemandDeadlineMs;
  const concurrency = settings.workerConcurrency;
  const runtime = await createRuntime(settings, createLogger("warn"));
  const app = await buildApp(runtime);
  try {
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    if (address === null || typeof address === "string") throw new Error("no address");
    const baseUrl = `http://127.0.0.1:${address.port}`;

    // Warm-up: codecs, thread pools, the placeholder, the first queries.
    note("warm-up");
    await throughShotlist(runtime, baseUrl, products(2, 0));
    await renderDirectly(runtime, products(2, 0), concurrency);

    const baselineMs: number[] = [];
    const answers: Answer[] = [];
    for (let index = 1; index <= rounds; index++) {
      note(`round ${index}: baseline, Shotlist, baseline`);
      baselineMs.push(...(await renderDirectly(runtime, products(requests, index), concurrency)));
      answers.push(...(await throughShotlist(runtime, baseUrl, products(requests, index))));
      baselineMs.push(...(await renderDirectly(runtime, products(requests, index), concurrency)));
    }
    const failed = answers.filter((answer) => answer.status !== 200);
    if (failed.length > 0) throw new Error(`${failed.length} answers were not 200`);
    const real = answers.filter((answer) => answer.fallback === null);
    // Within the deadline as the client saw it: a real image that came later does not count.
    const inTime = real.filter((answer) => answer.ms <= deadlineMs);
    const figure = inTime.length / answers.length;
    const baseline = baselineMs.filter((ms) => ms <= deadlineMs).length / baselineMs.length;
    const times = answers.map((answer) => answer.ms);
    const p50Ms = percentile(times, 0.5);
    const p99Ms = percentile(times, 0.99);
    const baselineP50Ms = percentile(baselineMs, 0.5);
    const baselineP99Ms = percentile(baselineMs, 0.99);
    say(
      `${answers.length} first-time requests (${requests} at once × ${rounds}), deadline ${deadlineMs} ms, worker concurrency ${concurrency}`,
    );
    say(
      `shotlist: ${inTime.length} real images within the deadline (${round(figure * 100, 1)}%), ${real.length - inTime.length} real but later, ${answers.length - real.length} fallbacks; answer p50 ${round(p50Ms, 0)} ms, p99 ${round(p99Ms, 0)} ms`,
    );
    say(
      `direct renders, ${concurrency} at a time: ${round(baseline * 100, 1)}% done within ${deadlineMs} ms, p50 ${round(baselineP50Ms, 0)} ms, p99 ${round(baselineP99Ms, 0)} ms`,
    );
    printResult({
      bench: "deadline",
      figure,
      baseline,
      // Both are shares; with no direct render inside the deadline the ratio says nothing.
      ratio: baseline > 0 ? figure / baseline : 0,
      unit: "share within deadline",
      extra: {
        requests,
        rounds,
        deadlineMs,
        workerConcurrency: concurrency,
        p50Ms: round(p50Ms, 1),
        p99Ms: round(p99Ms, 1),
        fallbacks: answers.length - real.length,
        realButLate: real.length - inTime.length,
        baselineP50Ms: round(baselineP50Ms, 1),
        baselineP99Ms: round(baselineP99Ms, 1),
      },
    });
  } finally {
    await app.close();
    await runtime.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
