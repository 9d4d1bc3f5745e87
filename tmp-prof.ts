// Profile the Shotlist side of the hero bench only: node --cpu-prof --import tsx tmp-prof.ts
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { loadSettings } from "./src/config/env.js";
import { DEFAULT_SHOTLIST_PATH } from "./src/config/shotlist.js";
import { submitProduct } from "./src/intake/submit.js";
import { createLogger } from "./src/observability/logger.js";
import { createRuntime } from "./src/runtime.js";
import { countOpenJobs } from "./src/store/jobs.js";
import { makeTempDir, waitUntil } from "./bench/harness.js";
const SAMPLE_DIR = join(process.cwd(), "examples/catalogue/");
const shipped = parse(readFileSync(DEFAULT_SHOTLIST_PATH, "utf8"), { merge: true }) as any;
const temp = makeTempDir("prof");
const configPath = join(temp.path, "hero.yaml");
writeFileSync(configPath, stringify({ version: shipped.version, ...(shipped.defaults ? { defaults: shipped.defaults } : {}), slots: { hero: shipped.slots.hero }, categories: Object.fromEntries(Object.keys(shipped.categories).map((c) => [c, { slots: ["hero"] }])) }));
const runtime = await createRuntime(loadSettings({ SHOTLIST_DATA_DIR: join(temp.path, "data"), SHOTLIST_CONFIG: configPath, SHOTLIST_WORKER_CONCURRENCY: "2", SHOTLIST_LOG_LEVEL: "silent" }), createLogger("silent"), { pixelThreads: 2 });
const worker = runtime.startWorker({ concurrency: 2 });
const sample = readFileSync(join(SAMPLE_DIR, "catalogue.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const n = Number(process.argv[2] ?? 60);
const c0 = process.cpuUsage(); const t0 = performance.now();
for (let i = 0; i < n; i++) {
  const s = sample[i % sample.length];
  await submitProduct(runtime.intake, { sku: `P-${i}`, title: s.title, category: s.category, referenceImages: [{ path: s.referenceImages[0].path }] }, { baseDir: SAMPLE_DIR });
}
await waitUntil(async () => (await countOpenJobs(runtime.db)) === 0, "done", 600_000, 50);
const c = process.cpuUsage(c0);
console.log(n, "heroes", ((performance.now() - t0) / 1000).toFixed(1), "s; cpu ms/image", ((c.user + c.system) / 1000 / n).toFixed(1));
await worker.stop(); await runtime.close(); temp.remove?.();
const q = [...((globalThis as any).__q as Map<string, number>).entries()].sort((a, b) => b[1] - a[1]);
console.log("transactions", (globalThis as any).__tx);
for (const [k, v] of q) if (v >= 20) console.log(String(v).padStart(5), k);
