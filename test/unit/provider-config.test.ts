import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { importCatalogue } from "../../src/cli/import.js";
import { loadShotList, parseShotList } from "../../src/config/shotlist.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { buildProviderRegistry } from "../../src/providers/configured.js";
import { isPaidProvider } from "../../src/providers/provider.js";

const SLOTS = [
  "slots:",
  "  hero:",
  "    source: { reference: 0 }",
  "    chain: [{ provider: local }]",
  "    checks: { notBlank: { minStdDev: 4 } }",
];

function shotList(providers: string[], categories = ["categories:", "  home: { slots: [hero] }"]) {
  return ["version: 1", "providers:", ...providers, ...SLOTS, ...categories].join("\n");
}

const STUDIO = [
  "  studio-api:",
  "    kind: http",
  "    baseUrl: http://127.0.0.1:8787",
  "    apiKeyEnv: STUDIO_KEY",
  "    mode: async",
  "    price: { perCallMicros: 40000 }",
  "    policy: { timeoutMs: 5000, dailyBudgetMicros: 50000000, onBudget: fallback }",
];

function invalidConfig(work: () => unknown): ShotlistError {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof ShotlistError, String(error));
    assert.equal(error.code, "invalid_config");
    return error;
  }
  assert.fail("the config was accepted");
}

describe("providers: in the shot list", () => {
  it("builds a paid http provider with its policy, its key read from the environment", () => {
    const config = parseShotList(shotList(STUDIO), "shots.yaml");
    const studio = config.providers.get("studio-api");
    assert.equal(studio?.policy.timeoutMs, 5000);
    assert.equal(studio?.policy.onBudget, "fallback");
    assert.equal(studio?.policy.retries, 3, "unset fields take their defaults");
    assert.equal(studio?.policy.breaker.failures, 5);
    const registry = buildProviderRegistry(config, { env: { STUDIO_KEY: "k" }, maxPixels: 1e6 });
    const provider = registry.get("studio-api");
    assert.ok(isPaidProvider(provider));
    assert.equal(provider.mode, "async");
    assert.deepEqual(registry.names().sort(), ["local", "studio-api", "template"]);
  });

  it("ships a default that configures only the built-in providers and needs no key", () => {
    const config = loadShotList();
    assert.equal(config.providers.size, 0);
    assert.deepEqual(buildProviderRegistry(config, { env: {}, maxPixels: 1e6 }).names(), [
      "local",
      "template",
    ]);
  });

  it("refuses an unknown adapter kind with the file, line and path", () => {
    const error = invalidConfig(() =>
      parseShotList(
        shotList(STUDIO.map((line) => line.replace("kind: http", "kind: dalle"))),
        "shots.yaml",
      ),
    );
    assert.match(error.message, /^shots\.yaml:4: at providers\.studio-api\.kind: .*http, openai/m);
  });

  it("refuses a base URL that is not an http(s) URL", () => {
    const error = invalidConfig(() =>
      parseShotList(
        shotList(STUDIO.map((line) => line.replace("http://127.0.0.1:8787", "ftp://files"))),
        "shots.yaml",
      ),
    );
    assert.match(error.message, /shots\.yaml:5: at providers\.studio-api\.baseUrl: an http/);
  });

  it("requires baseUrl, apiKeyEnv and mode for kind http, and refuses a key written in the file", () => {
    const error = invalidConfig(() =>
      parseShotList(
        shotList(["  studio-api: { kind: http, price: { perCallMicros: 1 }, apiKey: sk_live_x }"]),
        "shots.yaml",
      ),
    );
    assert.match(error.message, /providers\.studio-api.*apiKey/);
    const missing = invalidConfig(() =>
      parseShotList(
        shotList(["  studio-api: { kind: http, price: { perCallMicros: 1 } }"]),
        "shots.yaml",
      ),
    );
    for (const key of ["baseUrl", "apiKeyEnv", "mode"]) {
      assert.match(
        missing.message,
        new RegExp(`providers\\.studio-api\\.${key}: required for kind http`),
      );
    }
  });

  it("refuses a policy value out of range, naming it", () => {
    const error = invalidConfig(() =>
      parseShotList(
        shotList(STUDIO.map((line) => line.replace("onBudget: fallback", "onBudget: panic"))),
        "shots.yaml",
      ),
    );
    assert.match(error.message, /providers\.studio-api\.policy\.onBudget/);
  });

  it("refuses to configure the built-in local provider", () => {
    const error = invalidConfig(() =>
      parseShotList(
        shotList(STUDIO.map((line) => line.replace("studio-api", "local"))),
        "shots.yaml",
      ),
    );
    assert.match(error.message, /shots\.yaml:4: at providers\.local: local is built in/);
  });

  it("refuses to configure the built-in template provider", () => {
    const error = invalidConfig(() =>
      parseShotList(
        shotList(STUDIO.map((line) => line.replace("studio-api", "template"))),
        "shots.yaml",
      ),
    );
    assert.match(error.message, /shots\.yaml:4: at providers\.template: template is built in/);
  });

  it("accepts a chain that ends in the stock template before review", () => {
    const config = parseShotList(
      shotList(
        [],
        [
          "categories:",
          "  home:",
          "    slots: [hero]",
          "    overrides:",
          "      hero:",
          "        chain: [{ provider: local }, { provider: template, model: neutral-gradient }]",
        ],
      ).replace("providers:\n", "providers: {}\n"),
      "shots.yaml",
    );
    const registry = buildProviderRegistry(config, { env: {}, maxPixels: 1e6 });
    assert.equal(config.categories.get("home")?.slots[0]?.chain[1]?.provider, "template");
    assert.match(
      registry.modelVersionOf("template", "neutral-gradient"),
      /^template neutral-gradient 1 \//,
    );
  });

  it("names the missing environment variable and the entry when the API key is not set", () => {
    const config = parseShotList(shotList(STUDIO), "shots.yaml");
    const error = invalidConfig(() => buildProviderRegistry(config, { env: {}, maxPixels: 1e6 }));
    assert.match(
      error.message,
      /shots\.yaml:6: at providers\.studio-api\.apiKeyEnv: environment variable STUDIO_KEY is not set/,
    );
  });

  it("refuses a kind whose adapter is not in this build", () => {
    const config = parseShotList(
      shotList(["  gen: { kind: replicate, price: { perCallMicros: 1 } }"]),
      "shots.yaml",
    );
    const error = invalidConfig(() =>
      buildProviderRegistry(config, { env: {}, maxPixels: 1e6, factories: {} }),
    );
    assert.match(error.message, /providers\.gen\.kind: the replicate adapter is not available/);
  });

  it("refuses a chain link naming a provider that is not configured", () => {
    const config = parseShotList(
      shotList(STUDIO, [
        "categories:",
        "  home:",
        "    slots: [hero]",
        "    overrides: { hero: { chain: [{ provider: studio-apii }] } }",
      ]),
      "shots.yaml",
    );
    const error = invalidConfig(() =>
      buildProviderRegistry(config, { env: { STUDIO_KEY: "k" }, maxPixels: 1e6 }),
    );
    assert.match(error.message, /provider "studio-apii" is not configured/);
  });

  it("keeps a slot's checks when a category override replaces only its chain", () => {
    const config = parseShotList(
      shotList(STUDIO, [
        "categories:",
        "  home:",
        "    slots: [hero]",
        "    overrides: { hero: { chain: [{ provider: studio-api }] } }",
      ]),
      "shots.yaml",
    );
    const hero = config.categories.get("home")?.slots[0];
    assert.equal(hero?.chain[0]?.provider, "studio-api");
    assert.deepEqual(hero?.checks, { notBlank: { minStdDev: 4 } });
  });

  it("prices a dry-run import with each slot's first link", async () => {
    const config = parseShotList(
      shotList(STUDIO, [
        "categories:",
        "  home:",
        "    slots: [hero]",
        "    overrides: { hero: { chain: [{ provider: studio-api }, { provider: local }] } }",
        "  bags: { slots: [hero] }",
      ]),
      "shots.yaml",
    );
    const providers = buildProviderRegistry(config, { env: { STUDIO_KEY: "k" }, maxPixels: 1e6 });
    const dir = mkdtempSync(join(tmpdir(), "shotlist-dry-"));
    try {
      const image = fileURLToPath(
        new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url),
      );
      const lines = ["MUG-1", "MUG-2", "MUG-3"].map((sku) =>
        JSON.stringify({ sku, title: sku, category: "home", referenceImages: [{ path: image }] }),
      );
      lines.push(
        JSON.stringify({
          sku: "BAG-1",
          title: "Bag",
          category: "bags",
          referenceImages: [{ path: image }],
        }),
      );
      const file = join(dir, "catalogue.jsonl");
      writeFileSync(file, `${lines.join("\n")}\n`);
      const report = await importCatalogue({ shotList: config, providers }, file, {
        dryRun: true,
        print: () => {},
      });
      assert.equal(report.accepted, 4);
      assert.deepEqual(report.estimatedCostMicros, { "studio-api": 120_000, local: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
