import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadShotList } from "../../src/config/shotlist.js";
import { canonicalJson } from "../../src/domain/canonical.js";
import { isProductComplete, slotCoverage } from "../../src/domain/coverage.js";
import { planProduct, renderTemplate } from "../../src/domain/plan.js";
import type { ProductInput } from "../../src/domain/product.js";
import { type Recipe, recipeHash } from "../../src/domain/recipe.js";
import { validateSku } from "../../src/domain/sku.js";
import { fullJitterDelayMs } from "../../src/queue/backoff.js";

const recipe: Recipe = {
  schema: 1,
  category: "apparel",
  slot: "hero",
  provider: "local",
  model: "sharp",
  modelVersion: "sharp 0.35.5 / vips 8.18.7 / pipeline 1",
  source: { kind: "reference", index: 0 },
  steps: [{ op: "cutout" }, { op: "place", fill: 0.85, background: "#ffffff" }],
  prompt: null,
  seed: 42,
  references: ["a".repeat(64)],
  inputs: { swatches: [] },
  output: { width: 1600, height: 1600, format: "jpeg", quality: 86 },
};

function reordered<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reordered) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .reverse()
        .map(([key, member]) => [key, reordered(member)]),
    ) as T;
  }
  return value;
}

const product: ProductInput = {
  sku: "TEE-1",
  title: "Classic Tee",
  category: "apparel",
  attributes: { color: "navy", material: "cotton" },
  variants: [
    { sku: "TEE-1-NAVY", attributes: { color: "navy" } },
    { sku: "TEE-1-RED", attributes: { color: "red", hex: "#ff0000" } },
  ],
  referenceImages: [],
};

describe("recipes", () => {
  it("hash the same whatever order the keys were written in", () => {
    assert.equal(recipeHash(reordered(recipe)), recipeHash(recipe));
    assert.notEqual(canonicalJson(reordered(recipe)), JSON.stringify(reordered(recipe)));
  });

  it("hash to a pinned value, so a change to canonical JSON cannot slip through unnoticed", () => {
    assert.equal(
      canonicalJson({ b: [1, "x", null, true], a: { d: 1.5, c: "é" }, skipped: undefined }),
      '{"a":{"c":"é","d":1.5},"b":[1,"x",null,true]}',
    );
    assert.match(recipeHash(recipe), /^[0-9a-f]{64}$/);
    assert.equal(recipeHash(structuredClone(recipe)), recipeHash(recipe));
  });

  it("change hash when any input changes: model version, step parameter, reference, seed", () => {
    const base = recipeHash(recipe);
    assert.notEqual(
      recipeHash({ ...recipe, modelVersion: "sharp 0.36.0 / vips 8.19 / pipeline 1" }),
      base,
    );
    assert.notEqual(
      recipeHash({
        ...recipe,
        steps: [{ op: "cutout" }, { op: "place", fill: 0.86, background: "#ffffff" }],
      }),
      base,
    );
    assert.notEqual(recipeHash({ ...recipe, references: ["b".repeat(64)] }), base);
    assert.notEqual(recipeHash({ ...recipe, seed: 43 }), base);
  });

  it("refuse values canonical JSON cannot represent", () => {
    assert.throws(() => canonicalJson({ x: Number.NaN }), /cannot hold NaN/);
    assert.throws(() => canonicalJson({ x: () => 1 }), /cannot hold a function/);
  });
});

describe("planning", () => {
  const shotList = loadShotList();
  const apparel = shotList.categories.get("apparel");
  assert.ok(apparel);
  const version = () => "test-version";

  it("plans every slot of the category, in shot-list order, with stable hashes across runs", () => {
    const first = planProduct(product, ["a".repeat(64), "b".repeat(64)], apparel, version);
    const second = planProduct(
      structuredClone(product),
      ["a".repeat(64), "b".repeat(64)],
      apparel,
      version,
    );
    assert.deepEqual(
      first.map((plan) => plan.slot),
      ["hero", "angle-1", "angle-2", "angle-3", "lifestyle", "swatch-grid"],
    );
    assert.deepEqual(
      first.map((plan) => plan.recipeHash),
      second.map((plan) => plan.recipeHash),
    );
    const hero = first[0];
    assert.deepEqual(hero?.links[0]?.recipe.references, ["a".repeat(64)]);
    assert.deepEqual(first[3]?.links[0]?.recipe.references, [], "angle-3 has no fourth photo");
    assert.deepEqual(first[5]?.links[0]?.recipe.inputs.swatches, [
      { label: "navy", color: "#1f2a44" },
      { label: "red", color: "#ff0000" },
    ]);
  });

  it("leaves out the swatch grid of a product without colour variants", () => {
    const plans = planProduct({ ...product, variants: [] }, ["a".repeat(64)], apparel, version);
    assert.ok(!plans.some((plan) => plan.slot === "swatch-grid"));
  });

  it("does not change recipes when only attributes no step reads change", () => {
    const before = planProduct(product, ["a".repeat(64)], apparel, version);
    const after = planProduct(
      { ...product, title: "Renamed Tee", attributes: { ...product.attributes, season: "SS27" } },
      ["a".repeat(64)],
      apparel,
      version,
    );
    assert.deepEqual(
      after.map((plan) => plan.recipeHash),
      before.map((plan) => plan.recipeHash),
    );
    assert.notEqual(after[0]?.alt, before[0]?.alt, "the alt text follows the title");
  });

  it("renders templates from product facts", () => {
    assert.equal(
      renderTemplate("{{title}} in {{color}} {{material}} ({{category}}){{missing}}", product),
      "Classic Tee in navy cotton (apparel)",
    );
  });
});

describe("SKUs", () => {
  for (const bad of [
    "",
    "../x",
    "a/b",
    "..",
    "x..y",
    " lead",
    "tab\there",
    "nul\u0000",
    "é",
    "-x",
    "a".repeat(129),
  ]) {
    it(`refuses ${JSON.stringify(bad).slice(0, 30)}`, () => {
      assert.throws(
        () => validateSku(bad),
        (error: Error & { code?: string }) => error.code === "invalid_sku",
      );
    });
  }
  it("accepts ordinary SKUs", () => {
    for (const good of ["TEE-001", "a.b_c-d", "X", "9".repeat(128)])
      assert.equal(validateSku(good), good);
  });
});

describe("coverage", () => {
  it("counts only required slots and calls a product complete when all of them are published", () => {
    const slots = [
      { slot: "hero", required: true, state: "published" as const },
      { slot: "angle-1", required: true, state: "needs_review" as const },
      { slot: "extra", required: false, state: "pending" as const },
    ];
    assert.deepEqual(slotCoverage(slots), { complete: 1, required: 2, ratio: 0.5 });
    assert.equal(isProductComplete(slots), false);
    assert.equal(isProductComplete(slots.filter((slot) => slot.slot !== "angle-1")), true);
  });
});

describe("backoff", () => {
  it("draws full-jitter delays within [0, min(cap, base·2^(n-1))]", () => {
    assert.equal(
      fullJitterDelayMs(1, 1000, 60_000, () => 0.999),
      999,
    );
    assert.equal(
      fullJitterDelayMs(4, 1000, 60_000, () => 0.5),
      4000,
    );
    assert.equal(
      fullJitterDelayMs(20, 1000, 60_000, () => 0.5),
      30_000,
    );
    assert.equal(
      fullJitterDelayMs(3, 1000, 60_000, () => 0),
      0,
    );
  });
});
