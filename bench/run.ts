/**
 * `npm run bench`: runs every benchmark in sequence, each in a fresh process (so one's memory
 * or warm caches never flatter the next), then prints the collected JSON lines.
 *
 *   node --import tsx bench/run.ts [NAME…]      e.g. bench/run.ts hero-pipeline
 *   BENCH_SKUS=500                              catalogue size for catalogue-5k (default 500)
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { type BenchResult, note, runAsScript, say } from "./harness.js";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const DEFAULT_SKUS = 500;

interface BenchScript {
  name: string;
  args: string[];
  /** Backstop only: each script bounds its own waits well inside this. */
  timeoutMs: number;
}

function benchScripts(): BenchScript[] {
  const skus = Number(process.env.BENCH_SKUS ?? DEFAULT_SKUS);
  if (!Number.isInteger(skus) || skus < 1) {
    throw new Error(`BENCH_SKUS must be a positive integer, got ${process.env.BENCH_SKUS}`);
  }
  return [
    { name: "hero-pipeline", args: [], timeoutMs: 45 * 60_000 },
    { name: "import-dry-run-rss", args: [], timeoutMs: 45 * 60_000 },
    { name: "renditions", args: [], timeoutMs: 20 * 60_000 },
    { name: "idempotency", args: [], timeoutMs: 15 * 60_000 },
    { name: "cdn", args: [], timeoutMs: 10 * 60_000 },
    { name: "deadline", args: [], timeoutMs: 20 * 60_000 },
    {
      name: "catalogue-5k",
      args: ["--skus", String(skus)],
      timeoutMs: (30 + Math.ceil(skus / 3)) * 60_000,
    },
    { name: "webhooks", args: [], timeoutMs: 10 * 60_000 },
    { name: "ledger", args: [], timeoutMs: 10 * 60_000 },
    { name: "paid-call", args: [], timeoutMs: 15 * 60_000 },
    { name: "async-predictions", args: [], timeoutMs: 15 * 60_000 },
  ];
}

/** Runs one script with its output passed through; returns its JSON line, if it printed one. */
async function runScript(script: BenchScript): Promise<BenchResult | undefined> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", `${BENCH_DIR}${script.name}.ts`, ...script.args],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    process.stdout.write(chunk);
  });
  const killer = setTimeout(() => {
    note(`${script.name}: still running after ${script.timeoutMs / 60_000} min; stopping it`);
    child.kill("SIGTERM");
  }, script.timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(killer);
  if (code !== 0) {
    note(`${script.name}: exited with ${code}`);
    return undefined;
  }
  const line = stdout
    .trimEnd()
    .split("\n")
    .reverse()
    .find((text) => text.startsWith('{"bench":'));
  return line ? (JSON.parse(line) as BenchResult) : undefined;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const scripts = benchScripts().filter(
    (script) => wanted.length === 0 || wanted.includes(script.name),
  );
  if (scripts.length === 0) throw new Error(`no benchmark named ${wanted.join(", ")}`);
  const results: BenchResult[] = [];
  const failed: string[] = [];
  for (const script of scripts) {
    say(`\n=== ${script.name} ${script.args.join(" ")}`.trimEnd());
    const result = await runScript(script);
    if (result) results.push(result);
    else failed.push(script.name);
  }
  say("\n=== results (figure, same-run baseline, ratio)");
  const width = Math.max(0, ...results.map((result) => result.bench.length));
  for (const result of results) {
    say(
      `${result.bench.padEnd(width)}  figure ${result.figure}  baseline ${result.baseline}  ratio ${result.ratio}  (${result.unit})`,
    );
  }
  say();
  for (const result of results) say(JSON.stringify(result));
  if (failed.length > 0) {
    note(`failed: ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

runAsScript(import.meta.url, main);
