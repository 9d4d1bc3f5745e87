import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runCli } from "../helpers/cli.js";

function countFiles(dir: string): number {
  let count = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    count += entry.isDirectory() ? countFiles(join(dir, entry.name)) : 1;
  }
  return count;
}

describe("npm start on the embedded default", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "shotlist-start-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { SHOTLIST_DATA_DIR: dataDir, PORT: "0" };

  it("images the sample catalogue end to end, prints coverage and where the assets are", async () => {
    const run = runCli(["start", "--once"], env);
    const code = await run.exited;
    const output = run.output();
    assert.equal(code, 0, output);
    assert.match(output, /database: pglite/);
    assert.match(output, /^admin API key \(shown once; store it now\): shl_[A-Za-z0-9_-]{43}$/m);
    assert.match(output, /imported \d+ rows: (\d+) new, 0 changed, 0 unchanged, 0 rejected/);
    assert.match(output, /catalogue coverage: \d+\.\d% — \d+ of \d+ products complete/);
    assert.match(output, new RegExp(`assets: ${dataDir}/assets`));
  });

  it("reuses everything on a second run: no job, no render, the same files", async () => {
    const filesBefore = countFiles(join(dataDir, "assets"));
    const run = runCli(["start", "--once"], env);
    const code = await run.exited;
    const output = run.output();
    assert.equal(code, 0, output);
    assert.match(
      output,
      /imported (\d+) rows: 0 new, 0 changed, \1 unchanged, 0 rejected; 0 jobs created/,
    );
    assert.equal(countFiles(join(dataDir, "assets")), filesBefore);
    // The admin key exists now: it is not made, nor shown, again.
    assert.doesNotMatch(output, /admin API key/);
  });
});

describe("shotlist coverage on an empty catalogue", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "shotlist-empty-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("says there are no products yet rather than 100% of nothing", async () => {
    const run = runCli(["coverage"], { SHOTLIST_DATA_DIR: dataDir });
    const code = await run.exited;
    const output = run.output();
    assert.equal(code, 0, output);
    assert.match(output, /catalogue coverage: no products yet/);
    assert.doesNotMatch(output, /100\.0%/);
  });
});
