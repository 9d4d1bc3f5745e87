/**
 * What every benchmark shares: temp folders, bounded polling, a concurrency limit and the one
 * JSON line each script ends with. This machine is shared and noisy, so a figure is never
 * printed alone: each script measures its baseline in the same run and reports the ratio.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { submitProduct } from "../src/intake/submit.js";
import type { Runtime } from "../src/runtime.js";

/** The last line of every benchmark's output; bench/run.ts collects these. */
export interface BenchResult {
  bench: string;
  /** The measured figure, in `unit`. */
  figure: number;
  /** The same-run baseline, in the same unit as the figure. */
  baseline: number;
  /** figure ÷ baseline. */
  ratio: number;
  unit: string;
  /** Anything else worth collecting (sizes, breakdowns); flat numbers and strings only. */
  extra?: Record<string, number | string>;
}

export function printResult(result: BenchResult): void {
  const rounded: BenchResult = {
    ...result,
    figure: round(result.figure, 4),
    baseline: round(result.baseline, 4),
    ratio: round(result.ratio, 4),
  };
  process.stdout.write(`${JSON.stringify(rounded)}\n`);
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Arithmetic mean; 0 for no values. */
export function mean(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0) / Math.max(1, values.length);
}

/** Median (the upper one of an even count); 0 for no values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * The JPEG with a comment segment holding `text` right after SOI: the same pixels, other bytes,
 * so every product gets its own reference hash and recipe (identical recipes would share one
 * job, and a later round would find them made).
 */
export function taggedJpeg(jpeg: Buffer, text: string): Buffer {
  const comment = Buffer.from(text, "latin1");
  const segment = Buffer.alloc(4);
  segment.writeUInt16BE(0xfffe, 0); // COM
  segment.writeUInt16BE(comment.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), segment, comment, jpeg.subarray(2)]);
}

/** A human line of the report, on stdout above the JSON line. */
export function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}

/** Progress of a long run, on stderr so stdout stays the report. */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A fresh temp folder and its removal; the caller removes it in a `finally`. */
export function makeTempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `shotlist-bench-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Polls `condition` until it holds or the deadline passes (benchmarks never wait forever). */
export async function waitUntil(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs: number,
  intervalMs = 100,
  onTick?: () => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    }
    onTick?.();
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Runs `work` on every item with at most `limit` in flight; results keep the items' order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Milliseconds `work` takes, with its result. */
export async function timed<R>(work: () => Promise<R>): Promise<{ ms: number; result: R }> {
  const started = performance.now();
  const result = await work();
  return { ms: performance.now() - started, result };
}

/** Reads `--name value` from argv as a positive integer, or the fallback. */
export function intOption(argv: readonly string[], name: string, fallback: number): number {
  const at = argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`--${name} must be a positive integer, got ${argv[at + 1] ?? "nothing"}`);
  }
  return value;
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && moduleUrl === pathToFileURL(script).href;
}

/** Runs a benchmark's main as a script: an error is printed and the exit code is 1. */
export function runAsScript(moduleUrl: string, main: () => Promise<void>): void {
  if (!isEntryPoint(moduleUrl)) return;
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : error}\n`);
    process.exitCode = 1;
  });
}

export const MIB = 1024 * 1024;

/**
 * Submits `count` products of the "home" category (SKU `${prefix}-${i}`) through the intake,
 * then waits until no render job is open. Returns the wall time in ms from the first submit.
 */
export async function submitAndDrain(
  runtime: Runtime,
  options: { prefix: string; count: number; title: string; pollMs: number },
): Promise<number> {
  const started = performance.now();
  for (let index = 0; index < options.count; index++) {
    await submitProduct(runtime.intake, {
      sku: `${options.prefix}-${index}`,
      title: `${options.title} ${options.prefix} ${index}`,
      category: "home",
    });
  }
  await waitUntil(
    async () => {
      const [row] = await runtime.db.query<{ open: number }>(
        `select count(*)::integer as open from jobs
         where kind = 'render' and state in ('queued', 'running', 'retrying')`,
      );
      return (row?.open ?? 1) === 0;
    },
    "every render job to end",
    30 * 60_000,
    options.pollMs,
  );
  return performance.now() - started;
}
