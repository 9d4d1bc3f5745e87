import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { regenerateCommand } from "../../src/cli/regenerate.js";
import { verifyAsset, verifyAssetCommand } from "../../src/cli/verify-asset.js";
import { loadSettings } from "../../src/config/env.js";
import { sha256Hex } from "../../src/domain/canonical.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { seedFrom } from "../../src/domain/recipe.js";
import { buildApp } from "../../src/http/app.js";
import { parseWhere, type RegenerateReport } from "../../src/intake/regenerate.js";
import { submitProduct } from "../../src/intake/submit.js";
import { createLogger } from "../../src/observability/logger.js";
import { createRuntime, type Runtime } from "../../src/runtime.js";
import { getAsset } from "../../src/store/assets.js";
import { listCalls } from "../../src/store/provider-calls.js";
import { type FakePaidProvider, startFakePaidProvider } from "../fakes/paid-provider.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestDatabase, waitFor } from "../helpers/backends.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
const API_KEY = "sk_test_provenance";
const PRICE = 40_000;
const LOCAL_LINK = `{ provider: local, model: sharp, steps: [{ op: cutout }, { op: crop }, { op: place, fill: 0.85, background: "#ffffff" }] }`;

/** The shot list; `model` is the paid hero's model, the one a "model change" edits. */
function shotListYaml(studioUrl: string, downUrl: string, model: string): string {
  const provider = (url: string, policy: string) =>
    `{ kind: http, baseUrl: "${url}", apiKeyEnv: STUDIO_API_KEY, mode: sync, price: { perCallMicros: ${PRICE} }, policy: ${policy} }`;
  return `version: 1
defaults:
  output: { width: 800, height: 800, format: jpeg, quality: 85 }
providers:
  studio: ${provider(studioUrl, "{ retryBaseMs: 10, retryCapMs: 50 }")}
  studio-down: ${provider(downUrl, "{ retries: 0, breaker: { failures: 100, halfOpenAfterMs: 1000 } }")}
slots:
  hero:
    source: { reference: 0 }
    chain:
      - ${LOCAL_LINK}
    checks:
      whiteBorder: { minValue: 250 }
      fill: { min: 0.80, max: 0.95 }
      notBlank: { minStdDev: 4 }
      notInput: true
  styled:
    source: { reference: 0 }
    chain:
      - { provider: template, model: neutral-gradient }
    checks:
      notBlank: { minStdDev: 4 }
      notInput: true
categories:
  mugs:
    slots: [hero]
  paid-mugs:
    slots: [hero]
    overrides:
      hero:
        chain:
          - { provider: studio, model: ${model}, prompt: "{{title}} on white" }
          - ${LOCAL_LINK}
  styled-mugs:
    slots: [styled]
    overrides:
      styled:
        chain:
          - { provider: studio-down, model: studio-1, prompt: "{{title}} in a room" }
          - { provider: template, model: neutral-gradient }
`;
}

interface SlotView {
  state: string;
  asset_id: number | null;
  recipe_hash: string;
}

for (const backend of BACKENDS) {
  describe(`provenance, regenerate-on-model-change and the template fallback on ${backend}`, () => {
    let studio: FakePaidProvider;
    let down: FakePaidProvider;
    let dataDir: string;
    let configPath: string;
    let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
    let runtime: Runtime;
    const test = () => ({ runtime });

    /** A runtime on this suite's data: reopened after a config change, as a deploy would. */
    async function openRuntime(): Promise<Runtime> {
      const settings = loadSettings({
        SHOTLIST_DATA_DIR: dataDir,
        SHOTLIST_RETRY_BASE_MS: "20",
        SHOTLIST_LEASE_MS: "2000",
        PORT: "0",
        SHOTLIST_CONFIG: configPath,
        STUDIO_API_KEY: API_KEY,
        ...(database ? { SHOTLIST_DATABASE_URL: database.url } : {}),
      });
      return createRuntime(settings, createLogger(process.env.TEST_LOG_LEVEL ?? "silent"));
    }

    before(async () => {
      studio = await startFakePaidProvider({ apiKey: API_KEY });
      down = await startFakePaidProvider({ apiKey: API_KEY });
      // Every call to this one is refused as unauthorized: permanent, the chain moves on.
      down.setFaults({ rates: { "401": 1 } });
      dataDir = mkdtempSync(join(tmpdir(), "shotlist-provenance-"));
      configPath = join(dataDir, "shotlist.yaml");
      writeFileSync(configPath, shotListYaml(studio.url, down.url, "studio-1"));
      database = backend === "postgres" ? await createTestDatabase() : undefined;
      runtime = await openRuntime();
    });
    after(async () => {
      await runtime.close();
      await database?.drop();
      await studio.close();
      await down.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    async function submit(sku: string, category: string) {
      await submitProduct(runtime.intake, {
        sku,
        title: `Stoneware mug ${sku}`,
        category,
        referenceImages: [{ base64: photo.toString("base64") }],
      });
    }

    async function slotOf(sku: string, slot: string): Promise<SlotView> {
      const [row] = await runtime.db.query<SlotView>(
        "select state, asset_id, recipe_hash from product_slots where product_sku = $1 and slot = $2",
        [sku, slot],
      );
      assert.ok(row, `no slot ${sku}/${slot}`);
      return row;
    }

    /** Runs a worker until no render job is left to do. */
    async function workUntilIdle(): Promise<void> {
      const worker = runtime.startWorker({ pollMs: 20, retryBaseMs: 20, concurrency: 2 });
      try {
        await waitFor(async () => {
          const [row] = await runtime.db.query<{ open: number }>(
            "select count(*)::integer as open from jobs where state in ('queued', 'running', 'retrying')",
          );
          return row?.open === 0;
        }, "every job to finish");
      } finally {
        await worker.stop();
      }
    }

    async function assetView(id: number): Promise<Record<string, unknown>> {
      const app = await buildApp(runtime);
      try {
        const answer = await app.inject({
          method: "GET",
          url: `/v1/assets/${id}`,
          headers: await apiHeaders(test(), ["read"]),
        });
        assert.equal(answer.statusCode, 200, answer.body);
        return answer.json() as Record<string, unknown>;
      } finally {
        await app.close();
      }
    }

    it("shows the full recipe, the provider's request id and the ledger's cost on GET /v1/assets/{id}", async () => {
      await submit("PAID-1", "paid-mugs");
      await submit("PAID-2", "paid-mugs");
      await submit("LOCAL-1", "mugs");
      await workUntilIdle();
      const paid = await slotOf("PAID-1", "hero");
      assert.equal(paid.state, "published");
      assert.ok(paid.asset_id);
      const [call] = await listCalls(runtime.db, paid.recipe_hash);
      assert.ok(call, "the paid call is in the ledger");
      assert.equal(call.state, "succeeded");

      const view = await assetView(paid.asset_id);
      assert.equal(view.madeBy, "provider");
      const provenance = view.provenance as Record<string, unknown>;
      assert.deepEqual(
        {
          madeBy: provenance.madeBy,
          provider: provenance.provider,
          model: provenance.model,
          modelVersion: provenance.modelVersion,
          prompt: provenance.prompt,
          seed: provenance.seed,
          references: provenance.references,
          steps: provenance.steps,
          providerRequestId: provenance.providerRequestId,
          ledgerCallId: provenance.ledgerCallId,
          costMicros: provenance.costMicros,
          recipeSpendMicros: provenance.recipeSpendMicros,
        },
        {
          madeBy: "provider",
          provider: "studio",
          model: "studio-1",
          modelVersion: "studio/studio-1",
          prompt: "Stoneware mug PAID-1 on white",
          seed: seedFrom("PAID-1/hero"),
          references: [sha256Hex(photo)],
          steps: [],
          // The fake answers the generic protocol's x-request-id, derived from the Idempotency-Key.
          providerRequestId: `req_${call.id}`,
          ledgerCallId: call.id,
          costMicros: PRICE,
          recipeSpendMicros: PRICE,
        },
      );
      const parameters = provenance.parameters as Record<string, unknown>;
      assert.deepEqual(parameters.output, { width: 800, height: 800, format: "jpeg", quality: 85 });

      const local = await slotOf("LOCAL-1", "hero");
      assert.ok(local.asset_id);
      const localView = (await assetView(local.asset_id)).provenance as Record<string, unknown>;
      assert.equal(localView.provider, "local");
      assert.match(String(localView.modelVersion), /^sharp .* \/ vips .* \/ pipeline \d+$/);
      assert.equal(localView.providerRequestId, null);
      assert.equal(localView.ledgerCallId, null);
      assert.equal(localView.costMicros, 0);
      assert.equal(localView.digitalSourceType, null, "local work claims no AI source type");
      assert.equal((localView.steps as unknown[]).length, 3);
    });

    it("publishes the stock template when the paid link fails, and the asset says it came from a template", async () => {
      const refusedBefore = down.requests.length;
      await submit("STYLED-1", "styled-mugs");
      await workUntilIdle();
      assert.ok(down.requests.length > refusedBefore, "the paid link was tried first");
      const slot = await slotOf("STYLED-1", "styled");
      assert.equal(slot.state, "published");
      assert.ok(slot.asset_id);
      const asset = await getAsset(runtime.db, slot.asset_id);
      assert.equal(asset?.made_by, "template");
      assert.equal(asset?.link, 1);
      const [attempt] = await runtime.db.query<{ outcome: string; error: string }>(
        `select a.outcome, a.error from job_attempts a join jobs j on j.id = a.job_id
         where j.key = $1 and a.link = 0`,
        [`render:${slot.recipe_hash}`],
      );
      assert.equal(attempt?.outcome, "error", "the paid link's failure is recorded");
      const view = await assetView(slot.asset_id);
      assert.equal(view.madeBy, "template");
      const provenance = view.provenance as Record<string, unknown>;
      assert.equal(provenance.madeBy, "template");
      assert.equal(provenance.provider, "template");
      assert.equal(provenance.model, "neutral-gradient");
      assert.equal(provenance.costMicros, 0);
      assert.equal(provenance.digitalSourceType, null, "a template is not AI-made");
    });

    it("re-renders local and template assets byte-identical from their recipes (verify-asset)", async () => {
      const local = await slotOf("LOCAL-1", "hero");
      const styled = await slotOf("STYLED-1", "styled");
      for (const id of [local.asset_id, styled.asset_id]) {
        assert.ok(id);
        const result = await verifyAsset(runtime, id);
        assert.equal(result.identical, true, `asset ${id}`);
        assert.equal(result.reproducedSha256, result.sha256);
      }
      const printed: string[] = [];
      await verifyAssetCommand(runtime, String(local.asset_id), (line) => printed.push(line));
      assert.match(printed.join("\n"), /renders the same bytes/);
    });

    it("refuses verify-asset for a paid asset (it would pay again) and for a bad id", async () => {
      const paid = await slotOf("PAID-1", "hero");
      await assert.rejects(
        verifyAssetCommand(runtime, String(paid.asset_id), () => {}),
        {
          code: "invalid_request",
          message: /paid provider studio/,
        },
      );
      await assert.rejects(
        verifyAssetCommand(runtime, "12abc", () => {}),
        {
          code: "invalid_request",
        },
      );
      await assert.rejects(
        verifyAssetCommand(runtime, "999999", () => {}),
        { code: "not_found" },
      );
    });

    it("refuses a bad --where with a clear error naming the key", () => {
      for (const [where, message] of [
        ["colour=red", /unknown key "colour"; known keys: provider, model, slot, category, sku/],
        ["provider", /provider has no value/],
        ["model=", /model has no value/],
        ["", /expected key=value pairs/],
        ["slot=hero,,model=x", /expected key=value pairs/],
        ["slot=hero,slot=angle-1", /slot is given twice/],
      ] as const) {
        assert.throws(
          () => parseWhere(where),
          (error: unknown) =>
            error instanceof ShotlistError &&
            error.code === "invalid_request" &&
            message.test(error.message),
          where,
        );
      }
      assert.deepEqual(parseWhere(" provider=studio , model=studio-1,category=paid-mugs "), {
        provider: "studio",
        model: "studio-1",
        category: "paid-mugs",
      });
    });

    it("lists exactly the affected assets after a model change (--dry-run), and spends nothing", async () => {
      const paid1 = await slotOf("PAID-1", "hero");
      const paid2 = await slotOf("PAID-2", "hero");
      const before = await runtime.db.query<{ count: number }>(
        "select count(*)::integer as count from jobs",
      );
      // Nothing changed yet: nothing is out of date.
      const unchanged = await regenerateCommand(
        runtime,
        { where: "provider=studio,model=studio-1", dryRun: true, json: false },
        () => {},
      );
      assert.equal(unchanged.count, 0);

      // The model change: the shot list now names studio-2. A deploy restarts with it.
      await runtime.close();
      writeFileSync(configPath, shotListYaml(studio.url, down.url, "studio-2"));
      runtime = await openRuntime();

      const printed: string[] = [];
      const report = await regenerateCommand(
        runtime,
        { where: "provider=studio,model=studio-1", dryRun: true, json: false },
        (line) => printed.push(line),
      );
      assert.equal(report.count, 2);
      assert.deepEqual(
        report.affected.map((asset) => asset.assetId).sort((a, b) => a - b),
        [paid1.asset_id, paid2.asset_id].sort((a, b) => (a ?? 0) - (b ?? 0)),
      );
      for (const asset of report.affected) {
        assert.equal(asset.model, "studio-1");
        assert.equal(asset.newModel, "studio-2");
        assert.equal(asset.newModelVersion, "studio/studio-2");
        assert.equal(asset.estimatedCostMicros, PRICE);
      }
      assert.equal(report.estimatedCostMicros, 2 * PRICE);
      assert.equal(report.jobsCreated, 0);
      assert.match(printed.join("\n"), /2 assets out of date; estimated cost 0\.08/);
      assert.match(printed.join("\n"), /dry run: nothing was enqueued/);

      // Other filters select the same two (local and template assets did not change) or none.
      const bySlot = await regenerateCommand(
        runtime,
        { where: "slot=hero", dryRun: true, json: false },
        () => {},
      );
      assert.deepEqual(
        bySlot.affected.map((asset) => asset.sku),
        ["PAID-1", "PAID-2"],
      );
      const local = await regenerateCommand(
        runtime,
        { where: "provider=local", dryRun: true, json: false },
        () => {},
      );
      assert.equal(local.count, 0);
      const otherCategory = await regenerateCommand(
        runtime,
        { where: "category=mugs", dryRun: true, json: false },
        () => {},
      );
      assert.equal(otherCategory.count, 0);

      const afterDryRun = await runtime.db.query<{ count: number }>(
        "select count(*)::integer as count from jobs",
      );
      assert.deepEqual(afterDryRun, before, "a dry run enqueues nothing");
      assert.deepEqual(await slotOf("PAID-1", "hero"), paid1, "a dry run changes no slot");
    });

    it("answers POST /v1/products/{sku}/regenerate: dry run, bad bodies, then a real run", async () => {
      const app = await buildApp(runtime);
      try {
        const headers = await apiHeaders(test(), ["read", "write"]);
        const post = (sku: string, payload?: unknown, extra: Record<string, string> = {}) =>
          app.inject({
            method: "POST",
            url: `/v1/products/${sku}/regenerate`,
            headers: { ...headers, ...extra },
            ...(payload === undefined ? {} : { payload: payload as object }),
          });

        const dry = await post("PAID-2", { dryRun: true, slot: "hero" });
        assert.equal(dry.statusCode, 200, dry.body);
        const dryReport = dry.json() as RegenerateReport;
        assert.equal(dryReport.count, 1);
        assert.equal(dryReport.affected[0]?.sku, "PAID-2");
        assert.equal(dryReport.jobsCreated, 0);
        // DESIGN §3 names the body's field `slots`: a list, the same selection.
        const dryList = await post("PAID-2", { dryRun: true, slots: ["hero"] });
        assert.equal(dryList.statusCode, 200, dryList.body);
        assert.deepEqual(
          (dryList.json() as RegenerateReport).affected.map((asset) => asset.slot),
          ["hero"],
        );
        const unknownInList = await post("PAID-2", { dryRun: true, slots: ["hero", "angle-9"] });
        assert.equal(unknownInList.statusCode, 422, unknownInList.body);
        assert.equal(unknownInList.json().code, "unknown_slot");
        assert.match(unknownInList.json().detail, /no slot "angle-9"/);
        for (const [payload, detail] of [
          [{ slots: [] }, /at least one slot/],
          [{ slots: ["hero", "hero"] }, /not name a slot twice/],
          [{ slots: "hero" }, /slots must be a list of slot names/],
          [{ slots: ["hero"], slot: "hero" }, /slots or slot, not both/],
        ] as const) {
          const refused = await post("PAID-2", { dryRun: true, ...payload });
          assert.equal(refused.statusCode, 400, `${JSON.stringify(payload)}: ${refused.body}`);
          assert.match(refused.json().detail, detail);
        }

        const unknownField = await post("PAID-2", { dryRun: true, colour: "red" });
        assert.equal(unknownField.statusCode, 400, unknownField.body);
        assert.equal(unknownField.json().code, "invalid_request");
        assert.match(String(unknownField.headers["content-type"]), /application\/problem\+json/);
        const notBoolean = await post("PAID-2", { dryRun: "yes" });
        assert.equal(notBoolean.statusCode, 400);
        assert.match(notBoolean.json().detail, /dryRun must be true or false/);
        const unknownSlot = await post("PAID-2", { slot: "angle-9" });
        assert.equal(unknownSlot.statusCode, 422);
        assert.equal(unknownSlot.json().code, "unknown_slot");
        const noProduct = await post("NO-SUCH-SKU", { dryRun: true });
        assert.equal(noProduct.statusCode, 404);
        const readOnly = await app.inject({
          method: "POST",
          url: "/v1/products/PAID-2/regenerate",
          headers: await apiHeaders(test(), ["read"]),
          payload: { dryRun: true },
        });
        assert.equal(readOnly.statusCode, 403, "regenerate needs the write scope");

        const old = await slotOf("PAID-2", "hero");
        const real = await post("PAID-2", {});
        assert.equal(real.statusCode, 200, real.body);
        const realReport = real.json() as RegenerateReport;
        assert.equal(realReport.count, 1);
        assert.equal(realReport.jobsCreated, 1);
        assert.ok(realReport.affected[0]?.jobId);
        // Enqueued, not yet made: the old asset is still what the slot shows, published.
        const waiting = await slotOf("PAID-2", "hero");
        assert.equal(waiting.state, "published");
        assert.equal(waiting.asset_id, old.asset_id);
        assert.equal(waiting.recipe_hash, realReport.affected[0]?.newRecipeHash);
        assert.equal((await getAsset(runtime.db, old.asset_id ?? 0))?.state, "published");
      } finally {
        await app.close();
      }
    });

    it("enqueues the new recipe and supersedes the old asset only after the new one passes", async () => {
      const old1 = await slotOf("PAID-1", "hero");
      const old2 = await slotOf("PAID-2", "hero");
      // The studio's next image is blank: the new render fails its checks on the paid link.
      studio.script("blank");
      const report = await regenerateCommand(
        runtime,
        { where: "provider=studio,model=studio-1", dryRun: false, json: false },
        () => {},
      );
      // PAID-2 was enqueued over HTTP already: listed again, its job not made twice.
      assert.equal(report.count, 2);
      assert.equal(report.jobsCreated, 1);
      assert.equal(report.affected.find((asset) => asset.sku === "PAID-2")?.jobCreated, false);
      for (const old of [old1, old2]) {
        assert.equal((await getAsset(runtime.db, old.asset_id ?? 0))?.state, "published");
      }

      await workUntilIdle();
      for (const [sku, old] of [
        ["PAID-1", old1],
        ["PAID-2", old2],
      ] as const) {
        const now = await slotOf(sku, "hero");
        assert.equal(now.state, "published", sku);
        assert.notEqual(now.asset_id, old.asset_id, `${sku} shows the new asset`);
        const fresh = await getAsset(runtime.db, now.asset_id ?? 0);
        assert.equal(fresh?.state, "published");
        assert.equal((await getAsset(runtime.db, old.asset_id ?? 0))?.state, "superseded", sku);
        const view = (await assetView(now.asset_id ?? 0)).provenance as Record<string, unknown>;
        // The blank answer was rejected by the checks; the local link made one PAID hero.
        assert.ok(
          (view.provider === "studio" && view.model === "studio-2") || view.provider === "local",
          `${sku}: ${JSON.stringify(view)}`,
        );
      }
      const [rejected] = await runtime.db.query<{ count: number }>(
        `select count(*)::integer as count from assets a join recipes r on r.hash = a.recipe_hash
         where a.state = 'rejected' and r.model = 'studio-2'`,
      );
      assert.equal(rejected?.count, 1, "the blank output was kept as rejected, never published");

      const again = await regenerateCommand(
        runtime,
        { where: "provider=studio,model=studio-1", dryRun: true, json: false },
        () => {},
      );
      assert.equal(again.count, 0, "nothing is out of date any more");
    });
  });
}
