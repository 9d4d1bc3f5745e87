/**
 * Orchestration overhead per paid call: a render job through Shotlist against the fake OpenAI
 * server, against a direct `openai` SDK call to the same fake, in the same run, as a ratio.
 *
 *   node --import tsx bench/paid-call.ts [--calls 100] [--concurrency 2]
 *
 * Shotlist: `submitProduct` → render job → worker → runPaidCall (reuse lookup, budget-checked
 * ledger row, retry → breaker → bulkhead → timeout) → the openai adapter (`images.generate`, the
 * answer decoded, checked for size, encoded with its XMP) → the slot's checks → blob store →
 * asset and publish, one product (one recipe, one billed call) each. Direct: the official SDK's
 * `images.generate` with the same model, size and format, the base64 answer decoded to bytes,
 * nothing else. Both sides run `--concurrency` calls at once; figure and baseline are wall time
 * ÷ calls. Sides run direct, Shotlist, direct (mirrored) and the two direct runs are pooled, so
 * drift on this shared machine weighs on both.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import OpenAI from "openai";
import { loadSettings } from "../src/config/env.js";
import { createLogger } from "../src/observability/logger.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { type FakeOpenAI, startFakeOpenAI } from "../test/fakes/openai.js";
import {
  intOption,
  makeTempDir,
  mapLimited,
  note,
  printResult,
  round,
  runAsScript,
  say,
  submitAndDrain,
} from "./harness.js";

const MODEL = "gpt-image-2";
const SIZE = 512;
const PRICE_MICROS = 40_000;
const WARM_UP = 2;

function shotListYaml(fake: FakeOpenAI, concurrency: number): string {
  return `version: 1
defaults:
  output: { width: ${SIZE}, height: ${SIZE}, format: jpeg, quality: 85 }
providers:
  openai:
    kind: openai
    baseUrl: "${fake.url}/v1"
    apiKeyEnv: BENCH_OPENAI_KEY
    price: { perCallMicros: ${PRICE_MICROS} }
    policy: { concurrency: ${concurrency}, retries: 0 }
    options: { limits: { requestsPerMinute: 1000000 } }
slots:
  hero:
    source: { reference: 0 }
    chain:
      - { provider: openai, model: ${MODEL}, prompt: "{{title}} on a white background" }
    checks:
      notBlank: { minStdDev: 1 }
categories:
  home:
    slots: [hero]
`;
}

/** N products through the real runtime: wall ms from the first submit until every job ended. */
async function throughShotlist(runtime: Runtime, prefix: string, calls: number): Promise<number> {
  const elapsed = await submitAndDrain(runtime, {
    prefix,
    count: calls,
    title: "Bench vase",
    pollMs: 20,
  });
  const [done] = await runtime.db.query<{ published: number }>(
    `select count(*)::integer as published from product_slots
     where product_sku like $1 and state = 'published'`,
    [`${prefix}-%`],
  );
  if (done?.published !== calls) {
    const [failed] = await runtime.db.query<{ last_error: string | null }>(
      "select last_error from jobs where kind = 'render' and state <> 'succeeded' limit 1",
    );
    throw new Error(
      `${prefix}: ${done?.published ?? 0} of ${calls} slots published (${failed?.last_error ?? "no failed job"})`,
    );
  }
  return elapsed;
}

/** N direct SDK calls, `concurrency` at once: wall ms. */
async function direct(client: OpenAI, calls: number, concurrency: number): Promise<number> {
  const started = performance.now();
  await mapLimited(
    Array.from({ length: calls }, (_, index) => index),
    concurrency,
    async (index) => {
      const answer = await client.images.generate({
        model: MODEL,
        prompt: `Bench vase ${index} on a white background`,
        size: `${SIZE}x${SIZE}` as "1024x1024",
        output_format: "jpeg",
        quality: "high",
        n: 1,
      });
      const b64 = answer.data?.[0]?.b64_json;
      if (!b64) throw new Error("the direct call returned no image");
      return Buffer.from(b64, "base64").length;
    },
  );
  return performance.now() - started;
}

async function main(): Promise<void> {
  const calls = intOption(process.argv, "calls", 100);
  const concurrency = intOption(process.argv, "concurrency", 2);
  const temp = makeTempDir("paid-call");
  const fake = await startFakeOpenAI();
  const configPath = join(temp.path, "shotlist.yaml");
  writeFileSync(configPath, shotListYaml(fake, concurrency));
  const runtime = await createRuntime(
    loadSettings({
      SHOTLIST_DATA_DIR: temp.path,
      SHOTLIST_CONFIG: configPath,
      PORT: "0",
      BENCH_OPENAI_KEY: fake.apiKey,
    }),
    // The registered openai factory, as production builds it.
    createLogger("silent"),
  );
  const worker = runtime.startWorker({ concurrency, pollMs: 20 });
  const client = new OpenAI({ apiKey: fake.apiKey, baseURL: `${fake.url}/v1`, maxRetries: 0 });
  try {
    note("warming up both sides");
    await throughShotlist(runtime, "warm", WARM_UP);
    await direct(client, WARM_UP, concurrency);
    note(`direct SDK: ${calls} calls`);
    const directBefore = await direct(client, calls, concurrency);
    note(`Shotlist: ${calls} render jobs`);
    const shotlist = await throughShotlist(runtime, "run", calls);
    note(`direct SDK again: ${calls} calls`);
    const directAfter = await direct(client, calls, concurrency);
    const figure = shotlist / calls;
    const baseline = (directBefore + directAfter) / 2 / calls;
    say(`paid call to the fake OpenAI (${MODEL}, ${SIZE}×${SIZE} jpeg), ${concurrency} at once:`);
    say(`  through Shotlist (job, ledger, policies, checks, storage): ${round(figure, 2)} ms/call`);
    say(
      `  direct openai SDK call:                                    ${round(baseline, 2)} ms/call`,
    );
    say(`  overhead ${round(figure - baseline, 2)} ms per paid call`);
    printResult({
      bench: "paid-call",
      figure,
      baseline,
      ratio: figure / baseline,
      unit: "ms per paid call (wall ÷ calls)",
      extra: {
        calls,
        concurrency,
        directBeforeMsPerCall: round(directBefore / calls, 3),
        directAfterMsPerCall: round(directAfter / calls, 3),
        overheadMs: round(figure - baseline, 3),
        fakeRequests: fake.calls.length,
        database: runtime.db.kind,
      },
    });
  } finally {
    await worker.stop();
    await runtime.close();
    await fake.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
