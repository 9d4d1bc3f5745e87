/**
 * Per-request cost of API-key auth + Idempotency-Key on `POST /v1/products`, as a ratio
 * against the same route with both disabled, in the same run.
 *
 *   node --import tsx bench/idempotency.ts [--requests 400]
 *
 * One real runtime (PGlite in a temp dir, no worker: jobs stay queued), two Fastify apps on
 * it: one as served (Bearer key looked up by hash, a 'started' row inserted before the work
 * and updated with the response after), one built with `requireApiKeys: false`. Each request
 * submits a new product (so the intake does its real work: product, slots, recipes, jobs)
 * through `app.inject`. The two sides alternate in blocks of 25, so drift on this shared
 * machine hits both. Also reported: the latency of a replay (a retried key).
 */
import { performance } from "node:perf_hooks";
import { loadSettings } from "../src/config/env.js";
import { buildApp } from "../src/http/app.js";
import { createLogger } from "../src/observability/logger.js";
import { createRuntime } from "../src/runtime.js";
import { createApiKey } from "../src/store/api-keys.js";
import { intOption, makeTempDir, printResult, round, runAsScript, say } from "./harness.js";

const BLOCK = 25;
const WARM_UP = 25;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

async function main(): Promise<void> {
  const requests = intOption(process.argv, "requests", 400);
  const temp = makeTempDir("idempotency");
  const runtime = await createRuntime(
    loadSettings({ SHOTLIST_DATA_DIR: temp.path, PORT: "0" }),
    createLogger("silent"),
  );
  try {
    const secured = await buildApp(runtime);
    const open = await buildApp(runtime, { requireApiKeys: false });
    const { key } = await createApiKey(runtime.db, { name: "bench", scopes: ["write"] });
    let sequence = 0;
    const post = async (side: "secured" | "open") => {
      const sku = `BENCH-${side}-${sequence++}`;
      const payload = { sku, title: "Bench Mug", category: "home" };
      const started = performance.now();
      const response =
        side === "secured"
          ? await secured.inject({
              method: "POST",
              url: "/v1/products",
              headers: { authorization: `Bearer ${key}`, "idempotency-key": `key-${sku}` },
              payload,
            })
          : await open.inject({ method: "POST", url: "/v1/products", payload });
      const ms = performance.now() - started;
      if (response.statusCode !== 201) {
        throw new Error(`${side}: ${response.statusCode} ${response.body}`);
      }
      return ms;
    };
    for (let i = 0; i < WARM_UP; i++) {
      await post("secured");
      await post("open");
    }
    const times = { secured: [] as number[], open: [] as number[] };
    for (let done = 0; done < requests; done += BLOCK) {
      for (const side of done % (2 * BLOCK) === 0
        ? (["secured", "open"] as const)
        : (["open", "secured"] as const)) {
        for (let i = 0; i < BLOCK; i++) times[side].push(await post(side));
      }
    }
    // A replay never reaches the intake: one lookup and the stored bytes.
    const replays: number[] = [];
    for (let i = 0; i < 100; i++) {
      const started = performance.now();
      const response = await secured.inject({
        method: "POST",
        url: "/v1/products",
        headers: { authorization: `Bearer ${key}`, "idempotency-key": "key-BENCH-secured-0" },
        payload: { sku: "BENCH-secured-0", title: "Bench Mug", category: "home" },
      });
      replays.push(performance.now() - started);
      if (response.headers["idempotent-replayed"] !== "true") throw new Error("not a replay");
    }
    await secured.close();
    await open.close();
    const figure = mean(times.secured);
    const baseline = mean(times.open);
    say(`POST /v1/products, ${times.secured.length} requests a side, database ${runtime.db.kind}:`);
    say(
      `  with auth + Idempotency-Key: mean ${round(figure, 3)} ms, median ${round(median(times.secured), 3)} ms`,
    );
    say(
      `  without:                     mean ${round(baseline, 3)} ms, median ${round(median(times.open), 3)} ms`,
    );
    say(
      `  overhead ${round(figure - baseline, 3)} ms a request; a replay takes ${round(median(replays), 3)} ms (median)`,
    );
    printResult({
      bench: "idempotency",
      figure,
      baseline,
      ratio: figure / baseline,
      unit: "ms per request (mean)",
      extra: {
        requestsPerSide: times.secured.length,
        medianSecuredMs: round(median(times.secured), 3),
        medianOpenMs: round(median(times.open), 3),
        overheadMs: round(figure - baseline, 3),
        replayMedianMs: round(median(replays), 3),
        database: runtime.db.kind,
      },
    });
  } finally {
    await runtime.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
