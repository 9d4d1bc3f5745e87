import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { assetKey } from "../../src/blobs/store.js";
import type { Recipe } from "../../src/domain/recipe.js";
import type { ProviderKind } from "../../src/domain/shotlist.js";
import { submitProduct } from "../../src/intake/submit.js";
import { renderCutoutInput } from "../../src/pipeline/render.js";
import { readDigitalSourceTypeFromXmp, readRecipeHashFromXmp } from "../../src/pipeline/xmp.js";
import { PROVIDER_FACTORIES, type ProviderFactory } from "../../src/providers/configured.js";
import { createOpenAIProvider } from "../../src/providers/openai/index.js";
import { createRemoveBgProvider } from "../../src/providers/removebg/index.js";
import { getRecipes } from "../../src/store/assets.js";
import type { JobRow } from "../../src/store/jobs.js";
import { listCalls } from "../../src/store/provider-calls.js";
import { type FakeOpenAI, startFakeOpenAI } from "../fakes/openai.js";
import { type FakeRemoveBg, startFakeRemoveBg } from "../fakes/removebg.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
const REMOVEBG_PRICE = 200_000;
const OPENAI_PRICE = 167_000;
const HERO_THEN = `[{ op: crop }, { op: place, fill: 0.85, background: "#ffffff" }, { op: shadow, opacity: 0.22, blur: 20 }]`;
const PROMPT = "{{title}} in {{color}} {{material}} on a kitchen counter, {{category}} catalogue";

/**
 * The vendor adapters this suite uses, built from their config entries (the shipped factory
 * table gets them from the adapter work of issue 5 part 1; the test does not depend on it).
 */
const FACTORIES: Partial<Record<ProviderKind, ProviderFactory>> = {
  ...PROVIDER_FACTORIES,
  removebg: (config, context) =>
    createRemoveBgProvider({
      name: config.name,
      ...(config.baseUrl ? { baseUrl: config.baseUrl } : {}),
      apiKey: context.apiKey ?? "",
      perCallMicros: config.price.perCallMicros ?? 0,
      timeoutMs: config.policy.timeoutMs,
    }),
  openai: (config, context) =>
    createOpenAIProvider({
      name: config.name,
      ...(config.baseUrl ? { baseUrl: config.baseUrl } : {}),
      apiKey: context.apiKey ?? "",
      prices: { "gpt-image-1": config.price.perCallMicros ?? 0 },
      quality: "medium",
      timeoutMs: config.policy.timeoutMs,
    }),
};

function shotListYaml(removebg: FakeRemoveBg, openai: FakeOpenAI, heroThen: string): string {
  return `version: 1
defaults:
  output: { width: 800, height: 800, format: jpeg, quality: 85 }
providers:
  removebg: { kind: removebg, baseUrl: "${removebg.url}", apiKeyEnv: REMOVEBG_API_KEY, price: { perCallMicros: ${REMOVEBG_PRICE} }, policy: { retryBaseMs: 10, retryCapMs: 50 } }
  openai: { kind: openai, baseUrl: "${openai.url}/v1", apiKeyEnv: OPENAI_API_KEY, price: { perCallMicros: ${OPENAI_PRICE} }, policy: { retries: 0 } }
slots:
  hero:
    source: { reference: 0 }
    chain:
      - provider: removebg
        model: product
        then: ${heroThen}
    checks:
      whiteBorder: { minValue: 250 }
      fill: { min: 0.80, max: 0.95 }
      notBlank: { minStdDev: 4 }
      notInput: true
  lifestyle:
    alt: "{{title}} in a kitchen"
    source: { reference: 0 }
    output: { width: 1024, height: 1024, format: jpeg, quality: 84 }
    chain:
      - provider: openai
        model: gpt-image-1
        input: cutout
        prompt: "${PROMPT}"
    checks:
      notBlank: { minStdDev: 4 }
categories:
  home:
    slots: [hero, lifestyle]
  hero-only:
    slots: [hero]
`;
}

for (const backend of BACKENDS) {
  describe(`slot recipes that mix paid and local steps on ${backend}`, () => {
    let env: TestRuntime;
    let removebg: FakeRemoveBg;
    let openai: FakeOpenAI;
    let configDir: string;

    before(async () => {
      removebg = await startFakeRemoveBg();
      openai = await startFakeOpenAI();
      configDir = mkdtempSync(join(tmpdir(), "shotlist-mixed-"));
      const configPath = join(configDir, "shotlist.yaml");
      writeFileSync(configPath, shotListYaml(removebg, openai, HERO_THEN));
      env = await createTestRuntime(
        backend,
        {
          SHOTLIST_CONFIG: configPath,
          REMOVEBG_API_KEY: removebg.apiKey,
          OPENAI_API_KEY: openai.apiKey,
        },
        { providerFactories: FACTORIES },
      );
    });
    after(async () => {
      await env?.cleanup();
      await removebg?.close();
      await openai?.close();
      rmSync(configDir, { recursive: true, force: true });
    });

    async function submit(sku: string, category: string): Promise<Map<string, string>> {
      await submitProduct(env.runtime.intake, {
        sku,
        title: `Stoneware mug ${sku}`,
        category,
        attributes: { color: "sage", material: "stoneware" },
        referenceImages: [{ base64: photo.toString("base64") }],
      });
      const rows = await env.runtime.db.query<{ slot: string; recipe_hash: string }>(
        "select slot, recipe_hash from product_slots where product_sku = $1",
        [sku],
      );
      return new Map(rows.map((row) => [row.slot, row.recipe_hash]));
    }

    async function work(recipeHashes: string[]): Promise<JobRow[]> {
      const worker = env.runtime.startWorker({ pollMs: 20, retryBaseMs: 20, concurrency: 2 });
      try {
        return await waitFor(async () => {
          const jobs = await env.runtime.db.query<JobRow>(
            "select * from jobs where key = any($1::text[])",
            [recipeHashes.map((hash) => `render:${hash}`)],
          );
          const done = jobs.every(
            (job) => job.state === "succeeded" || job.state === "needs_review",
          );
          return jobs.length === recipeHashes.length && done ? jobs : undefined;
        }, "the render jobs to finish");
      } finally {
        await worker.stop();
      }
    }

    async function publishedAsset(sku: string, slot: string) {
      const [row] = await env.runtime.db.query<{
        state: string;
        sha256: string | null;
        ext: string | null;
        cost_micros: string | number | null;
      }>(
        `select ps.state, a.sha256, a.ext, a.cost_micros from product_slots ps
         left join assets a on a.id = ps.asset_id where ps.product_sku = $1 and ps.slot = $2`,
        [sku, slot],
      );
      assert.equal(row?.state, "published", `${slot} of ${sku} is ${row?.state}`);
      assert.ok(row?.sha256 && row.ext);
      const bytes = await env.runtime.blobs.get(assetKey(row.sha256, row.ext));
      assert.ok(bytes, "the published bytes are in the blob store");
      return { ...row, bytes };
    }

    it("publishes a hero made by remove.bg then placed on white locally, with one billable call", async () => {
      const accepted = removebg.requests.length;
      const slots = await submit("MIX-HERO-1", "hero-only");
      const hero = slots.get("hero");
      assert.ok(hero);
      const [job] = await work([hero]);
      assert.equal(job?.state, "succeeded", job?.last_error ?? "");

      assert.equal(removebg.requests.length, accepted + 1, "exactly one call to remove.bg");
      const request = removebg.requests.at(-1);
      // The paid step is asked for the cut-out with alpha: no backdrop colour, PNG.
      assert.equal(request?.fields.bg_color, undefined);
      assert.equal(request?.fields.format, "png");

      const asset = await publishedAsset("MIX-HERO-1", "hero");
      assert.equal(Number(asset.cost_micros), REMOVEBG_PRICE, "the asset carries the paid cost");
      const image = sharp(asset.bytes);
      const metadata = await image.metadata();
      assert.equal(metadata.format, "jpeg");
      assert.equal(metadata.width, 800);
      assert.equal(metadata.height, 800);
      // Placed on white by the local steps: the corners are white, the centre is the subject.
      const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
      const at = (x: number, y: number) => data[(y * info.width + x) * info.channels] ?? 0;
      assert.ok(at(2, 2) >= 250 && at(797, 797) >= 250, "white corners");
      assert.ok(at(400, 400) < 230, "the subject is in the middle");
      const xmp = metadata.xmp?.toString("utf8") ?? "";
      assert.equal(readRecipeHashFromXmp(xmp), hero);
      assert.match(
        readDigitalSourceTypeFromXmp(xmp) ?? "",
        /compositeWithTrainedAlgorithmicMedia$/,
      );

      const recipe = (await getRecipes(env.runtime.db, [hero])).get(hero) as Recipe;
      assert.equal(recipe.provider, "removebg");
      assert.equal(recipe.model, "product");
      assert.match(recipe.modelVersion, /^remove\.bg API v1\.0 \/ product/);
      assert.deepEqual(
        recipe.then?.map((step) => step.op),
        ["crop", "place", "shadow"],
      );
      assert.match(recipe.localVersion ?? "", /^sharp .* \/ pipeline \d+$/);

      const calls = await listCalls(env.runtime.db, hero);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.state, "succeeded");
      assert.notEqual(calls[0]?.output_sha256, asset.sha256, "the paid output is not the asset");
      assert.equal(calls[0]?.output_ext, "png", "the paid output is kept lossless, with alpha");
    });

    it("retries a job that failed after the paid step without paying again", async () => {
      const accepted = removebg.requests.length;
      const blobs = env.runtime.blobs;
      const put = blobs.put.bind(blobs);
      let failed = 0;
      // The worker loses its disk once, after remove.bg answered and before the asset is stored:
      // the job is retried, and the retry must reuse the ledger's stored output.
      blobs.put = async (key, bytes) => {
        if (failed === 0 && key.startsWith("assets/") && key.endsWith(".jpg")) {
          failed++;
          throw new Error("ENOSPC: no space left on device (injected)");
        }
        return put(key, bytes);
      };
      try {
        const slots = await submit("MIX-RETRY-1", "hero-only");
        const hero = slots.get("hero");
        assert.ok(hero);
        const [job] = await work([hero]);
        assert.equal(failed, 1, "the injected failure happened");
        assert.equal(job?.state, "succeeded", job?.last_error ?? "");
        assert.ok((job?.attempts ?? 0) >= 2, "the job ran again");
        assert.equal(removebg.requests.length, accepted + 1, "one billable call for two attempts");
        const calls = await listCalls(env.runtime.db, hero);
        assert.deepEqual(
          calls.map((call) => call.state),
          ["succeeded"],
        );
        await publishedAsset("MIX-RETRY-1", "hero");
      } finally {
        blobs.put = put;
      }
    });

    it("gives openai:edit the local cut-out and the rendered prompt, and records both", async () => {
      const before = openai.requests.length;
      const slots = await submit("MIX-LIFE-1", "home");
      const lifestyle = slots.get("lifestyle");
      const hero = slots.get("hero");
      assert.ok(lifestyle && hero);
      const jobs = await work([hero, lifestyle]);
      assert.ok(
        jobs.every((job) => job.state === "succeeded"),
        jobs.map((job) => job.last_error).join("; "),
      );
      assert.equal(openai.requests.length, before + 1);
      const request = openai.requests.at(-1);
      assert.equal(request?.endpoint, "edits");
      assert.equal(
        request?.params.prompt,
        "Stoneware mug MIX-LIFE-1 in sage stoneware on a kitchen counter, home catalogue",
      );

      const recipe = (await getRecipes(env.runtime.db, [lifestyle])).get(lifestyle) as Recipe;
      assert.equal(recipe.input, "cutout");
      assert.equal(recipe.prompt, request?.params.prompt, "the recipe holds the rendered prompt");
      assert.equal(typeof recipe.seed, "number");
      assert.match(recipe.localVersion ?? "", /pipeline \d+$/);
      // The edit's input is the cut-out (cropped to the subject), not the reference photo.
      const cut = await renderCutoutInput(recipe, new Map([[recipe.references[0] ?? "", photo]]), {
        maxPixels: 40_000_000,
      });
      const cutSize = await sharp(cut).metadata();
      const photoSize = await sharp(photo).metadata();
      assert.equal(request?.images.length, 1);
      assert.deepEqual(
        [request?.images[0]?.width, request?.images[0]?.height],
        [cutSize.width, cutSize.height],
      );
      assert.notDeepEqual([cutSize.width, cutSize.height], [photoSize.width, photoSize.height]);
      await publishedAsset("MIX-LIFE-1", "lifestyle");
    });
  });
}
