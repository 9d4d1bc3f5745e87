/**
 * Worker throughput with 200 async predictions in flight: render jobs through Shotlist against
 * the fake Replicate server, whose predictions take a fixed time to run, against the official
 * `replicate` SDK driving the same number of predictions at once on the same fake, in the same
 * run, as a ratio of jobs per second.
 *
 *   node --import tsx bench/async-predictions.ts [--predictions 400] [--in-flight 200]
 *       [--processing-ms 2000] [--poll-ms 250] [--webhooks]
 *
 * Shotlist: one worker process with `--in-flight` job slots and the provider's bulkhead at the
 * same size; every product's hero slot is one prediction (submit → ledger row → poll every
 * `--poll-ms` → output fetched, checked, stored, published). With `--webhooks`, the API listens
 * on loopback, SHOTLIST_PUBLIC_URL points at it and predictions call back on completion (the
 * poll interval is then only the fallback). Direct: the SDK creates `--in-flight` predictions at
 * a time, polls each every `--poll-ms` (or waits for nothing but its own polls) and downloads
 * its output. The fake's in-flight count (created, not finished) is sampled every 50 ms on both
 * sides; its peak is printed, so a run that never reached the target says so. Direct, Shotlist,
 * direct (mirrored); the two direct runs are pooled.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { FastifyInstance } from "fastify";
import Replicate from "replicate";
import { loadSettings } from "../src/config/env.js";
import { buildApp } from "../src/http/app.js";
import { createLogger } from "../src/observability/logger.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { type FakeReplicate, startFakeReplicate } from "../test/fakes/replicate.js";
import { freePort } from "../test/helpers/net.js";
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

const VERSION = "e".repeat(64);
const SIZE = 256;

function shotListYaml(fake: FakeReplicate, inFlight: number, pollMs: number): string {
  return `version: 1
defaults:
  output: { width: ${SIZE}, height: ${SIZE}, format: jpeg, quality: 85 }
providers:
  replicate:
    kind: replicate
    baseUrl: "${fake.baseUrl}"
    apiKeyEnv: BENCH_REPLICATE_TOKEN
    price: { perCallMicros: 3000 }
    policy: { concurrency: ${inFlight}, pollIntervalMs: ${pollMs}, retries: 0 }
    options: { models: { flux: { version: "${VERSION}" } } }
slots:
  hero:
    source: { reference: 0 }
    chain:
      - { provider: replicate, model: flux, prompt: "{{title}} on a white background" }
    checks:
      notBlank: { minStdDev: 1 }
categories:
  home:
    slots: [hero]
`;
}

/** Samples the fake's in-flight count until stopped; returns the peak. */
function sampleInFlight(fake: FakeReplicate): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, fake.inFlight());
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, fake.inFlight());
    },
  };
}

async function throughShotlist(
  runtime: Runtime,
  fake: FakeReplicate,
  prefix: string,
  predictions: number,
): Promise<{ ms: number; peak: number }> {
  const sampler = sampleInFlight(fake);
  const ms = await submitAndDrain(runtime, {
    prefix,
    count: predictions,
    title: "Bench lamp",
    pollMs: 50,
  });
  const peak = sampler.stop();
  const [done] = await runtime.db.query<{ published: number }>(
    `select count(*)::integer as published from product_slots
     where product_sku like $1 and state = 'published'`,
    [`${prefix}-%`],
  );
  if (done?.published !== predictions) {
    const [failed] = await runtime.db.query<{ last_error: string | null }>(
      "select last_error from jobs where kind = 'render' and state <> 'succeeded' limit 1",
    );
    throw new Error(
      `${prefix}: ${done?.published ?? 0} of ${predictions} slots published (${failed?.last_error ?? "no failed job"})`,
    );
  }
  return { ms, peak };
}

async function direct(
  fake: FakeReplicate,
  predictions: number,
  inFlight: number,
  pollMs: number,
): Promise<{ ms: number; peak: number }> {
  const client = new Replicate({ auth: fake.token, baseUrl: fake.baseUrl, useFileOutput: false });
  const sampler = sampleInFlight(fake);
  const started = performance.now();
  await mapLimited(
    Array.from({ length: predictions }, (_, index) => index),
    inFlight,
    async (index) => {
      let prediction = await client.predictions.create({
        version: VERSION,
        input: {
          prompt: `Bench lamp ${index} on a white background`,
          width: SIZE,
          height: SIZE,
          output_format: "jpg",
        },
      });
      while (prediction.status === "starting" || prediction.status === "processing") {
        await new Promise((resolve) => setTimeout(resolve, pollMs));
        prediction = await client.predictions.get(prediction.id);
      }
      const output = Array.isArray(prediction.output) ? prediction.output[0] : prediction.output;
      if (prediction.status !== "succeeded" || typeof output !== "string") {
        throw new Error(`prediction ${prediction.id} ended ${prediction.status}`);
      }
      const file = await fetch(output);
      return (await file.arrayBuffer()).byteLength;
    },
  );
  const ms = performance.now() - started;
  return { ms, peak: sampler.stop() };
}

async function main(): Promise<void> {
  const predictions = intOption(process.argv, "predictions", 400);
  const inFlight = intOption(process.argv, "in-flight", 200);
  const processingMs = intOption(process.argv, "processing-ms", 2_000);
  const pollMs = intOption(process.argv, "poll-ms", 250);
  const webhooks = process.argv.includes("--webhooks");
  const temp = makeTempDir("async-predictions");
  const fake = await startFakeReplicate({ versions: [VERSION] });
  fake.processingMs = processingMs;
  const configPath = join(temp.path, "shotlist.yaml");
  writeFileSync(configPath, shotListYaml(fake, inFlight, pollMs));
  const port = webhooks ? await freePort() : 0;
  const runtime = await createRuntime(
    loadSettings({
      SHOTLIST_DATA_DIR: temp.path,
      SHOTLIST_CONFIG: configPath,
      PORT: String(port),
      // The fake serves its output files on loopback.
      SHOTLIST_ALLOW_PRIVATE_NETWORKS: "1",
      BENCH_REPLICATE_TOKEN: fake.token,
      ...(webhooks ? { SHOTLIST_PUBLIC_URL: `http://127.0.0.1:${port}` } : {}),
    }),
    // The registered replicate factory: the entry's webhook is this process's callback route
    // (SHOTLIST_PUBLIC_URL) with --webhooks, and outputs go through the guarded fetch.
    createLogger("silent"),
  );
  let app: FastifyInstance | undefined;
  if (webhooks) {
    app = await buildApp(runtime);
    await app.listen({ host: "127.0.0.1", port });
  }
  const worker = runtime.startWorker({ concurrency: inFlight, pollMs: 20 });
  try {
    note("warming up both sides");
    await throughShotlist(runtime, fake, "warm", 2);
    await direct(fake, 2, 2, pollMs);
    note(`direct SDK: ${predictions} predictions, ${inFlight} at once`);
    const directBefore = await direct(fake, predictions, inFlight, pollMs);
    note(`Shotlist: ${predictions} render jobs, ${inFlight} job slots`);
    const shotlist = await throughShotlist(runtime, fake, "run", predictions);
    note(`direct SDK again`);
    const directAfter = await direct(fake, predictions, inFlight, pollMs);
    const figure = predictions / (shotlist.ms / 1000);
    const baseline = (2 * predictions) / ((directBefore.ms + directAfter.ms) / 1000);
    const ceiling = inFlight / (processingMs / 1000);
    say(
      `async predictions on the fake Replicate (${processingMs} ms each, poll ${pollMs} ms${webhooks ? ", webhooks" : ""}):`,
    );
    say(`  through Shotlist: ${round(figure, 2)} jobs/s, peak in flight ${shotlist.peak}`);
    say(
      `  direct SDK:       ${round(baseline, 2)} predictions/s, peak in flight ${Math.max(directBefore.peak, directAfter.peak)}`,
    );
    say(`  ceiling (in flight ÷ processing time): ${round(ceiling, 2)}/s`);
    printResult({
      bench: "async-predictions",
      figure,
      baseline,
      ratio: figure / baseline,
      unit: "jobs/s (predictions finished, stored and published per second)",
      extra: {
        predictions,
        inFlightTarget: inFlight,
        peakInFlightShotlist: shotlist.peak,
        peakInFlightDirect: Math.max(directBefore.peak, directAfter.peak),
        processingMs,
        pollMs,
        webhooks: webhooks ? "on" : "off",
        ceilingPerSecond: round(ceiling, 3),
        database: runtime.db.kind,
      },
    });
  } finally {
    await worker.stop();
    await app?.close();
    await runtime.close();
    await fake.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
