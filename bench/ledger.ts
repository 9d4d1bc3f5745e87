/**
 * Per-job cost of the provider-call ledger (with the resilience policies it runs under) on a
 * paid call, as a ratio against the same path with them disabled, in the same run (issue 3's
 * benchmark, first half).
 *
 *   node --import tsx bench/ledger.ts [--calls 400] [--seconds N]
 *
 * One real runtime (PGlite in a temp dir) and the fake paid provider (local HTTP, sync mode,
 * real sharp images at 512×512). What a render job does with a paid link's answer, both sides:
 *   figure   — runPaidCall (one lookup for a reusable or receipted call, expiry of stale rows,
 *              the budget-checked ledger row committed before the call, retry → breaker →
 *              bulkhead → timeout, the output and its receipt written to the blob store, the
 *              row closed), then the job's own put of the output (render-slot does it whether
 *              or not the ledger did);
 *   baseline — the adapter's run() with the same request, then the same put of the output.
 * Every call is a new recipe (a real row in `recipes`), so neither side ever reuses an output.
 * The two sides alternate call by call (ABBA), so drift on this shared machine hits both.
 * `--seconds` stops both sides early (a smoke run).
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { assetKey } from "../src/blobs/store.js";
import { loadSettings } from "../src/config/env.js";
import { sha256Hex } from "../src/domain/canonical.js";
import type { Recipe } from "../src/domain/recipe.js";
import { createLogger } from "../src/observability/logger.js";
import { createHttpProvider } from "../src/providers/http/index.js";
import type { SyncPaidProvider } from "../src/providers/provider.js";
import { runPaidCall } from "../src/queue/paid-call.js";
import { createRuntime } from "../src/runtime.js";
import { startFakePaidProvider } from "../test/fakes/paid-provider.js";
import {
  intOption,
  makeTempDir,
  mean,
  median,
  printResult,
  round,
  runAsScript,
  say,
} from "./harness.js";

const WARM_UP = 10;

async function main(): Promise<void> {
  const calls = intOption(process.argv, "calls", 400);
  const seconds = process.argv.includes("--seconds") ? intOption(process.argv, "seconds", 1) : 0;
  const temp = makeTempDir("ledger");
  const fake = await startFakePaidProvider();
  const runtime = await createRuntime(
    loadSettings({ SHOTLIST_DATA_DIR: temp.path, PORT: "0" }),
    createLogger("silent"),
  );
  try {
    const provider = createHttpProvider({
      name: "bench-studio",
      baseUrl: fake.url,
      apiKey: fake.apiKey,
      mode: "sync",
      perCallMicros: 40_000,
    }) as SyncPaidProvider;
    const deps = { db: runtime.db, blobs: runtime.blobs, resilience: new Map() };
    let sequence = 0;
    const newRequest = async () => {
      const recipe: Recipe = {
        schema: 1,
        category: "home",
        slot: "hero",
        provider: provider.name,
        model: "studio-1",
        modelVersion: "bench-studio/studio-1",
        source: { kind: "reference", index: 0 },
        steps: [],
        prompt: `bench ${sequence}`,
        seed: sequence++,
        references: [],
        inputs: { swatches: [] },
        output: { width: 512, height: 512, format: "jpeg", quality: 85 },
      };
      const recipeHash = randomBytes(32).toString("hex");
      await runtime.db.query(
        "insert into recipes (hash, recipe, provider, model, slot) values ($1, $2, $3, $4, $5)",
        [recipeHash, JSON.stringify(recipe), recipe.provider, recipe.model, recipe.slot],
      );
      return { recipe, recipeHash, references: new Map<string, Buffer>() };
    };
    const call = async (side: "ledger" | "direct") => {
      const request = await newRequest();
      const signal = new AbortController().signal;
      const started = performance.now();
      const result =
        side === "ledger"
          ? (await runPaidCall(deps, provider, request, { jobId: null, signal })).result
          : await provider.run(request, { callId: `direct-${request.recipeHash}`, signal });
      await runtime.blobs.put(assetKey(sha256Hex(result.bytes), "jpg"), result.bytes);
      return performance.now() - started;
    };
    for (let i = 0; i < WARM_UP; i++) {
      await call("ledger");
      await call("direct");
    }
    const times = { ledger: [] as number[], direct: [] as number[] };
    const stopAt = seconds > 0 ? Date.now() + seconds * 1000 : Number.POSITIVE_INFINITY;
    // ABBA pairs: each side goes first half the time, so drift and warm caches hit both.
    for (let pair = 0; pair < calls && Date.now() < stopAt; pair++) {
      const order =
        pair % 2 === 0 ? (["ledger", "direct"] as const) : (["direct", "ledger"] as const);
      for (const side of order) times[side].push(await call(side));
    }
    if (times.ledger.length === 0 || times.direct.length === 0) throw new Error("no calls timed");
    const figure = mean(times.ledger);
    const baseline = mean(times.direct);
    say(`a render job's paid sync call to the fake provider, database ${runtime.db.kind}:`);
    say(
      `  figure    through the ledger + policies:  mean ${round(figure, 3)} ms, median ${round(median(times.ledger), 3)} ms (${times.ledger.length} calls)`,
    );
    say(
      `  baseline  adapter alone, same run:        mean ${round(baseline, 3)} ms, median ${round(median(times.direct), 3)} ms (${times.direct.length} calls)`,
    );
    say(
      `  ratio     ${round(figure / baseline, 3)}: the ledger adds ${round(figure - baseline, 3)} ms a job`,
    );
    printResult({
      bench: "ledger",
      figure,
      baseline,
      ratio: figure / baseline,
      unit: "ms per job's paid call (mean), through the ledger vs adapter alone",
      extra: {
        callsPerSide: Math.min(times.ledger.length, times.direct.length),
        medianLedgerMs: round(median(times.ledger), 3),
        medianDirectMs: round(median(times.direct), 3),
        overheadMs: round(figure - baseline, 3),
        billedByFake: fake.billable,
        database: runtime.db.kind,
      },
    });
  } finally {
    await runtime.close();
    await fake.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
