// Runs every test file (test/**/*.test.ts) with Node's test runner on tsx, then prints the one
// closing line CI reads: "N passed, N failed, N skipped".
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["test"];
const files = [];
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.name.endsWith(".test.ts")) files.push(path);
  }
};
for (const root of roots) {
  if (root.endsWith(".test.ts")) files.push(root);
  else walk(root);
}
files.sort();

const child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=2", ...files],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, FORCE_COLOR: "0" } },
);
const counts = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
// The run's summary lines ("ℹ pass 12") come before the list of failing tests, which can be
// long, so every line is read as it streams rather than only the end of the output.
const summary = /^ℹ (pass|fail|skipped|todo|cancelled) (\d+)$/;
let partial = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  const lines = (partial + chunk.toString()).split("\n");
  partial = lines.pop() ?? "";
  for (const line of lines) {
    const match = summary.exec(line.trim());
    if (match) counts[match[1]] = Number(match[2]);
  }
});
child.on("close", (code) => {
  const failed = counts.fail + counts.cancelled;
  console.log(`${counts.pass} passed, ${failed} failed, ${counts.skipped + counts.todo} skipped`);
  process.exit(code ?? 1);
});
