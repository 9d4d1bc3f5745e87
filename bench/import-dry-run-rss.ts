/**
 * Peak RSS of `shotlist import FILE --dry-run` on a generated 100,000-row CSV ÷ the peak RSS of
 * reading the same file line by line under the same loader.
 *
 *   node --import tsx bench/import-dry-run-rss.ts [--rows 100000] [--pool 8]
 *
 * Both run as child processes (`node --import tsx …`), measured from outside: GNU time's maximum
 * resident set size when /usr/bin/time is there, else the child's VmHWM polled from /proc.
 * The catalogue is generated with a small pool of real photos, so every reference path exists
 * and no row is rejected: a dry run that rejected every row would also hold every rejection in
 * memory, which is not the case being measured. A second, 10× smaller run of the same rows
 * shows whether memory grows with the file. Target: < 256 MiB for the 100,000-row dry run.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream, createWriteStream, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { writeBigCatalogue } from "../examples/generate.js";
import {
  intOption,
  MIB,
  makeTempDir,
  note,
  printResult,
  round,
  runAsScript,
  say,
  timed,
} from "./harness.js";

const REPO_DIR = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(REPO_DIR, "src/cli/main.ts");
const GNU_TIME = "/usr/bin/time";
const RSS_MARKER = "BENCH_PEAK_RSS_KB=";
const TARGET_MIB = 256;
/** A child that runs longer than this is killed: the benchmark stays bounded. */
const CHILD_TIMEOUT_MS = 15 * 60_000;

/** The baseline child: counts the file's lines with readline, nothing else. */
const READLINE_SCRIPT = `
const { createReadStream } = require("node:fs");
const { createInterface } = require("node:readline");
let lines = 0;
const input = createInterface({ input: createReadStream(process.argv[1]), crlfDelay: Infinity });
input.on("line", () => { lines++; });
input.on("close", () => { process.stdout.write(lines + " lines\\n"); });
`;

interface ChildRun {
  peakRssBytes: number;
  exitCode: number | null;
  stdout: string;
  ms: number;
  how: string;
}

/** Runs `node ARGS` and measures the child's peak resident set size from outside. */
async function measureChild(args: readonly string[], env: NodeJS.ProcessEnv): Promise<ChildRun> {
  const viaTime = existsSync(GNU_TIME);
  const command = viaTime ? GNU_TIME : process.execPath;
  const fullArgs = viaTime ? ["-f", `${RSS_MARKER}%M`, process.execPath, ...args] : [...args];
  const started = performance.now();
  const child = spawn(command, fullArgs, { cwd: REPO_DIR, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let polledKb = 0;
  const poll = viaTime
    ? undefined
    : setInterval(() => {
        try {
          const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
          const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
          if (kb > polledKb) polledKb = kb;
        } catch {
          // The child has exited between two polls; its last reading stands.
        }
      }, 20);
  const killer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
  const [exitCode] = (await once(child, "exit")) as [number | null];
  clearTimeout(killer);
  if (poll) clearInterval(poll);
  const ms = performance.now() - started;
  let peakKb = polledKb;
  if (viaTime) {
    const line = stderr.split("\n").find((text) => text.startsWith(RSS_MARKER));
    if (!line) throw new Error(`no peak RSS from ${GNU_TIME}; stderr: ${stderr.slice(-2000)}`);
    peakKb = Number(line.slice(RSS_MARKER.length));
  }
  if (!(peakKb > 0)) throw new Error(`could not measure the peak RSS of node ${args.join(" ")}`);
  if (exitCode !== 0 && exitCode !== 2) {
    throw new Error(`node ${args.join(" ")} exited with ${exitCode}: ${stderr.slice(-2000)}`);
  }
  return {
    peakRssBytes: peakKb * 1024,
    exitCode,
    stdout,
    ms,
    how: viaTime ? "GNU time %M" : "/proc VmHWM polled",
  };
}

/** The first `rows` rows of a CSV, written next to it so relative image paths still resolve. */
async function headOfCsv(source: string, target: string, rows: number): Promise<void> {
  const output = createWriteStream(target);
  const input = createInterface({
    input: createReadStream(source),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let written = -1;
  for await (const line of input) {
    if (written >= rows) break;
    if (!output.write(`${line}\r\n`)) await once(output, "drain");
    written++;
  }
  input.close();
  output.end();
  await once(output, "finish");
}

const mib = (bytes: number) => bytes / MIB;

async function main(): Promise<void> {
  const rows = intOption(process.argv, "rows", 100_000);
  const poolSize = intOption(process.argv, "pool", 8);
  const smallRows = Math.max(1, Math.floor(rows / 10));
  const temp = makeTempDir("dry-run-rss");
  try {
    const generated = await timed(() =>
      writeBigCatalogue({
        outDir: temp.path,
        count: rows,
        poolSize,
        formats: ["csv"],
        images: true,
        seed: 1,
      }),
    );
    const file = join(temp.path, "catalogue.csv");
    const smallFile = join(temp.path, "catalogue-small.csv");
    await headOfCsv(file, smallFile, smallRows);
    note(
      `generated ${rows} rows (pool of ${poolSize} photos) in ${(generated.ms / 1000).toFixed(1)} s`,
    );

    const env = {
      ...process.env,
      SHOTLIST_DATA_DIR: join(temp.path, "data"),
      SHOTLIST_LOG_LEVEL: "silent",
    };
    const dryRunArgs = (path: string) => [
      "--import",
      "tsx",
      CLI,
      "import",
      path,
      "--dry-run",
      "--no-progress",
    ];
    const bare = await measureChild(["-e", ""], env);
    // What loading the CLI costs before a row is read: the floor under any dry run.
    const cliLoad = await measureChild(["--import", "tsx", CLI, "--help"], env);
    const readline = await measureChild(["--import", "tsx", "-e", READLINE_SCRIPT, file], env);
    note(`baselines measured; dry run of ${smallRows} rows…`);
    const small = await measureChild(dryRunArgs(smallFile), env);
    note(`dry run of ${rows} rows…`);
    const full = await measureChild(dryRunArgs(file), env);

    const summary = full.stdout
      .split("\n")
      .find((line) => line.startsWith("dry run:"))
      ?.replace(/; estimated provider cost.*$/, "");
    const ratio = full.peakRssBytes / readline.peakRssBytes;
    const perThousandRows =
      (full.peakRssBytes - small.peakRssBytes) / MIB / ((rows - smallRows) / 1000);

    say(
      `import-dry-run-rss: shotlist import --dry-run on a ${rows}-row CSV (peak RSS by ${full.how})`,
    );
    say(
      `  dry run, ${rows} rows:   ${mib(full.peakRssBytes).toFixed(1)} MiB peak RSS, ${(full.ms / 1000).toFixed(1)} s, exit ${full.exitCode} (target < ${TARGET_MIB} MiB: ${mib(full.peakRssBytes) < TARGET_MIB ? "met" : "MISSED"})`,
    );
    say(
      `  dry run, ${smallRows} rows:    ${mib(small.peakRssBytes).toFixed(1)} MiB peak RSS, ${(small.ms / 1000).toFixed(1)} s → ${perThousandRows.toFixed(2)} MiB more per 1,000 rows`,
    );
    say(
      `  baseline, readline over the same file (node --import tsx): ${mib(readline.peakRssBytes).toFixed(1)} MiB, ${(readline.ms / 1000).toFixed(1)} s`,
    );
    say(
      `  for reference: shotlist --help ${mib(cliLoad.peakRssBytes).toFixed(1)} MiB (loading the CLI), bare node -e "" ${mib(bare.peakRssBytes).toFixed(1)} MiB`,
    );
    say(`  ratio dry run / readline baseline: ${ratio.toFixed(2)}`);
    if (summary) say(`  ${summary}`);
    if (full.exitCode === 2) {
      say("  note: the dry run rejected rows (exit 2); the rejections are held in memory too");
    }
    printResult({
      bench: "import-dry-run-rss",
      figure: mib(full.peakRssBytes),
      baseline: mib(readline.peakRssBytes),
      ratio,
      unit: "MiB",
      extra: {
        rows,
        exitCode: full.exitCode ?? -1,
        dryRunS: round(full.ms / 1000, 1),
        smallRows,
        smallMiB: round(mib(small.peakRssBytes), 1),
        mibPerThousandRows: round(perThousandRows, 3),
        bareNodeMiB: round(mib(bare.peakRssBytes), 1),
        cliHelpMiB: round(mib(cliLoad.peakRssBytes), 1),
        targetMiB: TARGET_MIB,
      },
    });
  } finally {
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
