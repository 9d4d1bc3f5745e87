import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { assetKey } from "../../src/blobs/store.js";
import { importCatalogue } from "../../src/cli/import.js";
import { sha256Hex } from "../../src/domain/canonical.js";
import { submitProduct } from "../../src/intake/submit.js";
import { readRecipeHashFromXmp } from "../../src/pipeline/xmp.js";
import type { Worker } from "../../src/queue/worker.js";
import { catalogueCoverage } from "../../src/store/coverage.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const SAMPLE = fileURLToPath(new URL("../../examples/catalogue/catalogue.jsonl", import.meta.url));
const SAMPLE_CSV = fileURLToPath(
  new URL("../../examples/catalogue/catalogue.csv", import.meta.url),
);
const IMAGES = fileURLToPath(new URL("../../examples/catalogue/images/", import.meta.url));
const quiet = () => {};

for (const backend of BACKENDS) {
  describe(`the sample catalogue on ${backend}`, () => {
    let env: TestRuntime;
    let worker: Worker;
    before(async () => {
      env = await createTestRuntime(backend);
      worker = env.runtime.startWorker({ pollMs: 50 });
    });
    after(async () => {
      await worker.stop();
      await env.cleanup();
    });

    it("images every slot of every product to a terminal state", async () => {
      const report = await importCatalogue(env.runtime.intake, SAMPLE, {
        dryRun: false,
        print: quiet,
      });
      assert.deepEqual(report.rejected, []);
      assert.ok(report.accepted >= 12, `${report.accepted} products`);
      assert.equal(report.created, report.accepted);
      await waitFor(
        async () => (await countOpenJobs(env.runtime.db)) === 0,
        "all jobs to finish",
        240_000,
        200,
      );
      const states = await env.runtime.db.query<{ state: string; count: number }>(
        "select state, count(*)::integer as count from jobs group by state",
      );
      const byState = Object.fromEntries(states.map((row) => [row.state, row.count]));
      assert.deepEqual(Object.keys(byState).sort(), ["needs_review", "succeeded"]);
      const slots = await env.runtime.db.query<{
        state: string;
        reason: string | null;
        slot: string;
        product_sku: string;
      }>("select product_sku, slot, state, reason from product_slots");
      assert.equal(slots.length, report.slotsPlanned);
      for (const slot of slots) {
        assert.ok(
          ["published", "needs_review"].includes(slot.state),
          `${slot.product_sku}/${slot.slot} is ${slot.state}`,
        );
        if (slot.state === "needs_review") {
          // The honest fallback: only angles without a reference photo go to review, with a reason.
          assert.match(slot.slot, /^angle-/);
          assert.match(slot.reason ?? "", /cannot_make_locally: .*reference photo/);
        }
      }
      const coverage = await catalogueCoverage(env.runtime.db);
      assert.equal(
        coverage.publishedSlots,
        slots.filter((slot) => slot.state === "published").length,
      );
      assert.ok(
        coverage.productCoverage > 0.7 && coverage.productCoverage < 1,
        `coverage ${coverage.productCoverage}`,
      );
    });

    it("stores each published asset content-addressed, with the recipe hash in its XMP", async () => {
      const assets = await env.runtime.db.query<{
        sha256: string;
        ext: string;
        recipe_hash: string;
        width: number;
      }>(
        "select a.sha256, a.ext, a.recipe_hash, a.width from assets a join product_slots ps on ps.asset_id = a.id",
      );
      assert.ok(assets.length > 40);
      for (const asset of assets.slice(0, 12)) {
        const bytes = await env.runtime.blobs.get(assetKey(asset.sha256, asset.ext));
        assert.ok(bytes, `blob ${asset.sha256} missing`);
        assert.equal(sha256Hex(bytes), asset.sha256);
        const meta = await sharp(bytes).metadata();
        assert.equal(meta.width, asset.width);
        assert.ok(meta.xmp, "XMP missing");
        assert.equal(readRecipeHashFromXmp(meta.xmp.toString("utf8")), asset.recipe_hash);
      }
    });

    it("creates no job or asset when the same catalogue is imported again, in either format", async () => {
      const countsBefore = await counts(env);
      const again = await importCatalogue(env.runtime.intake, SAMPLE, {
        dryRun: false,
        print: quiet,
      });
      assert.equal(again.jobsCreated, 0);
      assert.equal(again.unchanged, again.accepted);
      const csv = await importCatalogue(env.runtime.intake, SAMPLE_CSV, {
        dryRun: false,
        print: quiet,
      });
      assert.deepEqual(csv.rejected, []);
      assert.equal(csv.jobsCreated, 0, "the CSV form describes the same products and recipes");
      await waitFor(
        async () => (await countOpenJobs(env.runtime.db)) === 0,
        "no open jobs",
        10_000,
      );
      assert.deepEqual(await counts(env), countsBefore);
    });

    it("sends the hero of an out-of-focus reference photo to review with the blur it measured", async () => {
      const photo = readFileSync(join(IMAGES, "MUG-ENAMEL-0.jpg"));
      const outOfFocus = await sharp(photo).blur(4).jpeg({ quality: 92 }).toBuffer();
      await submitProduct(env.runtime.intake, {
        sku: "MUG-OUT-OF-FOCUS",
        title: "Out-of-focus mug",
        category: "home",
        referenceImages: [{ base64: outOfFocus.toString("base64") }],
      });
      const heroOf = async () => {
        const [row] = await env.runtime.db.query<{ state: string; reason: string | null }>(
          "select state, reason from product_slots where product_sku = $1 and slot = 'hero'",
          ["MUG-OUT-OF-FOCUS"],
        );
        return row;
      };
      await waitFor(
        async () => ["published", "needs_review"].includes((await heroOf())?.state ?? ""),
        "the hero to reach a terminal state",
        60_000,
        100,
      );
      const hero = await heroOf();
      assert.equal(hero?.state, "needs_review", hero?.reason ?? "");
      assert.match(hero?.reason ?? "", /checks failed \(blur: blur 0\.\d+ over the subject's/);
      const value = Number(/blur (0\.\d+)/.exec(hero?.reason ?? "")?.[1]);
      assert.ok(value > 0.6, `blur ${value}`);
      // The rejected candidate is kept with its checks, and nothing was published for the slot.
      const [rejected] = await env.runtime.db.query<{ count: number }>(
        `select count(*)::integer as count from assets a
           join product_slots s on s.recipe_hash = a.recipe_hash
         where s.product_sku = 'MUG-OUT-OF-FOCUS' and s.slot = 'hero' and a.state = 'rejected'`,
      );
      assert.equal(rejected?.count, 1);
    });
  });
}

async function counts(env: TestRuntime) {
  const [row] = await env.runtime.db.query<{ jobs: number; assets: number; recipes: number }>(
    `select (select count(*)::integer from jobs) as jobs, (select count(*)::integer from assets) as assets,
       (select count(*)::integer from recipes) as recipes`,
  );
  return row;
}
