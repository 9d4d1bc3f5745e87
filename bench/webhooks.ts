/**
 * Signed Shopify webhooks per second with durable enqueue on PostgreSQL ÷ a bare Fastify route
 * that only answers 200, both loaded by autocannon from a second process in the same run.
 *
 *   node --import tsx bench/webhooks.ts [--seconds 10] [--connections 32]
 *
 * Figure: POST /webhooks/shopify on the real runtime (scratch PostgreSQL database): HMAC check
 * on the raw body, JSON parse, mapping and structural validation of the product, then the
 * durable enqueue (receipt + `intake` job in one statement), then 200. Every request is a new
 * delivery of a new product (two colour variants). No worker runs: the intake jobs stay
 * queued, so planning (product, variants, recipes, slots, render jobs) and reference fetching
 * are not in the figure — they happen later in the worker, off the request. Baseline: a
 * bare Fastify app in the same process answering 200. Target (issue 4): ≥ 2,000/s, p99 < 50 ms.
 * On a 2-core machine the load generator, Node and PostgreSQL share the same two cores.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import pg from "pg";
import { loadSettings } from "../src/config/env.js";
import { buildApp } from "../src/http/app.js";
import { createLogger } from "../src/observability/logger.js";
import { createRuntime } from "../src/runtime.js";
import { intOption, makeTempDir, note, printResult, round, runAsScript, say } from "./harness.js";

const ADMIN_DATABASE_URL =
  process.env.SHOTLIST_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const LOAD_SCRIPT = fileURLToPath(new URL("./webhooks-load.ts", import.meta.url));
const SECRET = randomBytes(32).toString("hex");

interface LoadResult {
  requestsPerSecond: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p50Ms: number;
  p99Ms: number;
}

async function load(
  url: string,
  mode: "shopify" | "bare",
  seconds: number,
  connections: number,
): Promise<LoadResult> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", LOAD_SCRIPT, url, mode, String(seconds), String(connections), SECRET],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as LoadResult;
}

async function withScratchDatabase<T>(work: (url: string) => Promise<T>): Promise<T> {
  const name = `shotlist_bench_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  try {
    return await work(url.toString());
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

async function main(): Promise<void> {
  const seconds = intOption(process.argv, "seconds", 10);
  const connections = intOption(process.argv, "connections", 32);
  const dir = makeTempDir("webhooks");
  try {
    await withScratchDatabase(async (databaseUrl) => {
      const runtime = await createRuntime(
        loadSettings({
          SHOTLIST_DATA_DIR: dir.path,
          SHOTLIST_DATABASE_URL: databaseUrl,
          SHOTLIST_SHOPIFY_WEBHOOK_SECRET: SECRET,
          PORT: "0",
        }),
        createLogger("warn"),
      );
      const app = await buildApp(runtime);
      const bare = Fastify();
      bare.post("/bare", async () => ({ ok: true }));
      try {
        await app.listen({ port: 0, host: "127.0.0.1" });
        await bare.listen({ port: 0, host: "127.0.0.1" });
        const appPort = (app.server.address() as AddressInfo).port;
        const barePort = (bare.server.address() as AddressInfo).port;
        note(`bare route: ${seconds} s, ${connections} connections`);
        const baseline = await load(
          `http://127.0.0.1:${barePort}/bare`,
          "bare",
          seconds,
          connections,
        );
        note(`signed Shopify webhooks: ${seconds} s, ${connections} connections`);
        const cpuBefore = process.cpuUsage();
        const wallBefore = performance.now();
        const webhooks = await load(
          `http://127.0.0.1:${appPort}/webhooks/shopify`,
          "shopify",
          seconds,
          connections,
        );
        const cpu = process.cpuUsage(cpuBefore);
        // Share of one core the server process used while loaded: near 100 means Node's main
        // thread (not PostgreSQL or the network) is what limits the figure.
        const serverCpuPercent =
          ((cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore)) * 100;
        const [row] = await runtime.db.query<{ receipts: number; jobs: number }>(
          `select (select count(*)::integer from webhook_receipts) as receipts,
             (select count(*)::integer from jobs where kind = 'intake') as jobs`,
        );
        say(
          `bare Fastify route: ${round(baseline.requestsPerSecond, 0)} req/s, p50 ${baseline.p50Ms} ms, p99 ${baseline.p99Ms} ms`,
        );
        say(
          `signed Shopify webhooks (durable enqueue, PostgreSQL): ${round(webhooks.requestsPerSecond, 0)} req/s, p50 ${webhooks.p50Ms} ms, p99 ${webhooks.p99Ms} ms; non-2xx ${webhooks.non2xx}, errors ${webhooks.errors}`,
        );
        say(
          `server process CPU while loaded: ${round(serverCpuPercent, 0)}% of one core; committed: ${row?.receipts} receipts, ${row?.jobs} queued intake jobs (no worker ran; autocannon counted ${webhooks.total} responses)`,
        );
        printResult({
          bench: "webhooks",
          figure: webhooks.requestsPerSecond,
          baseline: baseline.requestsPerSecond,
          ratio: webhooks.requestsPerSecond / baseline.requestsPerSecond,
          unit: "requests/s",
          extra: {
            webhookP50Ms: webhooks.p50Ms,
            webhookP99Ms: webhooks.p99Ms,
            bareP50Ms: baseline.p50Ms,
            bareP99Ms: baseline.p99Ms,
            webhookNon2xx: webhooks.non2xx,
            webhookErrors: webhooks.errors,
            receipts: row?.receipts ?? 0,
            jobs: row?.jobs ?? 0,
            serverCpuPercent: round(serverCpuPercent, 1),
            connections,
            seconds,
          },
        });
      } finally {
        await app.close();
        await bare.close();
        await runtime.close();
      }
    });
  } finally {
    dir.remove();
  }
}

runAsScript(import.meta.url, main);
