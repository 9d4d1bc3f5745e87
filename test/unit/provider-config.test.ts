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
import { isPaidProvider, type PaidProvider } from "../../src/providers/provider.js";

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

const PAID_EXAMPLE = fileURLToPath(new URL("../../examples/shotlist.paid.yaml", import.meta.url));

/** One entry of each vendor kind, as little as each needs: the vendor's base URL is the default. */
const VENDORS = [
  "  gpt:",
  "    kind: openai",
  "    apiKeyEnv: OPENAI_KEY",
  "    price: { models: { gpt-image-1.5: 167000 } }",
  "    options: { quality: medium, limits: { requestsPerMinute: 50 } }",
  "  cutout:",
  "    kind: removebg",
  "    apiKeyEnv: REMOVEBG_KEY",
  "    price: { perCallMicros: 20000 }",
  "  studio:",
  "    kind: photoroom",
  "    apiKeyEnv: PHOTOROOM_KEY",
  "    price: { models: { studio: 100000 } }",
  "  flux:",
  "    kind: replicate",
  "    apiKeyEnv: REPLICATE_KEY",
  "    price: { models: { flux-dev: 25000 } }",
  "    webhookUrl: https://shotlist.example.com/hooks/replicate",
  "    options:",
  "      models:",
  `        flux-dev: { version: "${"ab".repeat(32)}" }`,
  "  kontext:",
  "    kind: fal",
  "    apiKeyEnv: FAL_KEY",
  "    price: { perCallMicros: 40000 }",
  "    options:",
  "      models:",
  "        fal-ai/flux-pro/kontext: { operations: [edit], imageInput: image_url }",
];
const VENDOR_KEYS = {
  OPENAI_KEY: "sk-proj-x",
  REMOVEBG_KEY: "rbg-x",
  PHOTOROOM_KEY: "sk_pr_x",
  REPLICATE_KEY: "r8_x",
  FAL_KEY: "id:secret",
};

describe("vendor adapters in the shot list", () => {
  it("builds each of the five vendor kinds from its entry, sync or async by its protocol", () => {
    const config = parseShotList(shotList(VENDORS), "shots.yaml");
    const registry = buildProviderRegistry(config, { env: VENDOR_KEYS, maxPixels: 1e6 });
    const modes = Object.fromEntries(
      ["gpt", "cutout", "studio", "flux", "kontext"].map((name) => {
        const provider = registry.get(name) as PaidProvider;
        assert.ok(isPaidProvider(provider), name);
        return [name, provider.mode];
      }),
    );
    assert.deepEqual(modes, {
      gpt: "sync",
      cutout: "sync",
      studio: "sync",
      flux: "async",
      kontext: "async",
    });
    const gpt = registry.get("gpt") as PaidProvider;
    assert.equal(gpt.limits.requestsPerMinute, 50, "options.limits reaches the adapter");
    assert.match(gpt.modelVersion("gpt-image-1.5"), /quality=medium/);
    assert.equal(registry.modelVersionOf("flux", "flux-dev"), "ab".repeat(32));
    assert.equal(
      registry.modelVersionOf("kontext", "fal-ai/flux-pro/kontext"),
      "fal-ai/flux-pro/kontext@unversioned",
    );
    assert.deepEqual((registry.get("kontext") as PaidProvider).operations, ["edit"]);
  });

  it("validates the shipped paid example: two paid providers, local the last link of each paid slot", () => {
    const config = loadShotList(PAID_EXAMPLE);
    assert.deepEqual(
      [...config.providers.values()].map((provider) => [provider.name, provider.kind]),
      [
        ["photoroom", "photoroom"],
        ["openai", "openai"],
      ],
    );
    const registry = buildProviderRegistry(config, {
      env: { PHOTOROOM_API_KEY: "sk_pr_x", OPENAI_API_KEY: "sk-proj-x" },
      maxPixels: 1e6,
    });
    assert.deepEqual(registry.names().sort(), ["local", "openai", "photoroom", "template"]);
    for (const { category, slots } of config.categories.values()) {
      for (const slot of slots) {
        assert.equal(slot.chain.at(-1)?.provider, "local", `${category}/${slot.name}`);
      }
      const paid = slots.flatMap((slot) => slot.chain.map((link) => link.provider));
      assert.ok(paid.includes("photoroom") && paid.includes("openai"), category);
    }
    const error = invalidConfig(() => buildProviderRegistry(config, { env: {}, maxPixels: 1e6 }));
    assert.match(
      error.message,
      /providers\.photoroom\.apiKeyEnv: environment variable PHOTOROOM_API_KEY/,
    );
    assert.match(
      error.message,
      /providers\.openai\.apiKeyEnv: environment variable OPENAI_API_KEY/,
    );
  });

  it("refuses a Replicate version that is not a version id, naming the file, line and path", () => {
    const config = parseShotList(
      shotList(VENDORS.map((line) => line.replace(`"${"ab".repeat(32)}"`, "latest"))),
      "shots.yaml",
    );
    const error = invalidConfig(() =>
      buildProviderRegistry(config, { env: VENDOR_KEYS, maxPixels: 1e6 }),
    );
    assert.match(
      error.message,
      /^shots\.yaml:23: at providers\.flux\.options\.models\.flux-dev\.version: a 64-character hex/m,
    );
  });

  it("refuses an option the adapter does not know, and an edit model without its image input", () => {
    const config = parseShotList(
      shotList(
        VENDORS.map((line) =>
          line
            .replace("quality: medium", "quality: medium, temperature: 2")
            .replace(", imageInput: image_url", ""),
        ),
      ),
      "shots.yaml",
    );
    const error = invalidConfig(() =>
      buildProviderRegistry(config, { env: VENDOR_KEYS, maxPixels: 1e6 }),
    );
    assert.match(error.message, /shots\.yaml:7: at providers\.gpt\.options: .*temperature/);
    assert.match(
      error.message,
      /shots\.yaml:30: at providers\.kontext\.options\.models\.fal-ai\/flux-pro\/kontext\.imageInput: required/,
    );
  });

  it("refuses an async model without a price, a vendor entry without a key variable, and a mode", () => {
    const config = parseShotList(
      shotList(
        VENDORS.filter((line) => line !== "    apiKeyEnv: REMOVEBG_KEY").map((line) =>
          line.replace("price: { models: { flux-dev: 25000 } }", "price: { models: { other: 1 } }"),
        ),
      ),
      "shots.yaml",
    );
    const error = invalidConfig(() =>
      buildProviderRegistry(config, { env: VENDOR_KEYS, maxPixels: 1e6 }),
    );
    assert.match(error.message, /providers\.flux\.price\.models: no price for model "flux-dev"/);
    assert.match(error.message, /providers\.cutout\.kind: apiKeyEnv is required for kind removebg/);
    const withMode = invalidConfig(() =>
      parseShotList(
        shotList(VENDORS.map((line) => line.replace("kind: fal", "kind: fal\n    mode: sync"))),
        "shots.yaml",
      ),
    );
    assert.match(withMode.message, /providers\.kontext\.mode: only for kind http; fal is async/);
    const noPrice = invalidConfig(() =>
      parseShotList(
        shotList(
          VENDORS.map((line) => line.replace("price: { perCallMicros: 20000 }", "price: {}")),
        ),
        "shots.yaml",
      ),
    );
    assert.match(noPrice.message, /providers\.cutout\.price: a price/);
  });
});
