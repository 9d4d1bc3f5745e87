import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseShotList } from "../../src/config/shotlist.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { planProduct, renderTemplate } from "../../src/domain/plan.js";
import type { ProductInput } from "../../src/domain/product.js";
import type { ShotListConfig } from "../../src/domain/shotlist.js";

const REFERENCE = "a".repeat(64);

const product: ProductInput = {
  sku: "MUG-1",
  title: "Stoneware mug",
  category: "home",
  attributes: { color: "sage", material: "stoneware", season: "SS27" },
  variants: [],
  referenceImages: [],
};

/** A shot list whose hero is remove.bg → local steps and lifestyle an edit of the cut-out. */
function shotList(options: { localSteps?: string; prompt?: string } = {}): string {
  return `version: 1
providers:
  removebg: { kind: removebg, apiKeyEnv: REMOVEBG_API_KEY, price: { perCallMicros: 200000 } }
  openai: { kind: openai, apiKeyEnv: OPENAI_API_KEY, price: { perCallMicros: 167000 } }
slots:
  hero:
    source: { reference: 0 }
    chain:
      - provider: removebg
        model: product
        then: ${options.localSteps ?? `[{ op: crop }, { op: place, fill: 0.85, background: "#ffffff" }]`}
      - provider: local
        steps: [{ op: cutout }, { op: crop }, { op: place, fill: 0.85, background: "#ffffff" }]
  lifestyle:
    source: { reference: 0 }
    chain:
      - provider: openai
        model: gpt-image-1
        input: cutout
        prompt: "${options.prompt ?? "{{title}} in {{color}} {{material}}, a {{category}} scene"}"
categories:
  home: { slots: [hero, lifestyle] }
`;
}

function plan(config: ShotListConfig, localVersion = "sharp 1 / vips 2 / pipeline 1") {
  const home = config.categories.get("home");
  assert.ok(home);
  return planProduct(product, [REFERENCE], home, (provider, model) =>
    provider === "local" ? localVersion : `${provider} ${model} v7`,
  );
}

function configError(text: string): ShotlistError {
  try {
    parseShotList(text, "shots.yaml");
  } catch (error) {
    assert.ok(error instanceof ShotlistError);
    assert.equal(error.code, "invalid_config");
    return error;
  }
  assert.fail("the config was accepted");
}

describe("mixed slot recipes: planning", () => {
  it("records the paid provider, model and version, the local steps and the local version", () => {
    const [hero] = plan(parseShotList(shotList(), "shots.yaml"));
    const recipe = hero?.links[0]?.recipe;
    assert.equal(recipe?.provider, "removebg");
    assert.equal(recipe?.model, "product");
    assert.equal(recipe?.modelVersion, "removebg product v7");
    assert.deepEqual(recipe?.steps, []);
    assert.deepEqual(
      recipe?.then?.map((step) => step.op),
      ["crop", "place"],
    );
    assert.equal(recipe?.localVersion, "sharp 1 / vips 2 / pipeline 1");
    // The local fallback link is a plain local recipe: no paid-link members in it.
    const local = hero?.links[1]?.recipe;
    assert.equal(local?.then, undefined);
    assert.equal(local?.localVersion, undefined);
    assert.equal(local?.input, undefined);
  });

  it("changes the recipe hash when the local steps change, and only that link's", () => {
    const before = plan(parseShotList(shotList(), "shots.yaml"));
    const after = plan(
      parseShotList(
        shotList({
          localSteps: `[{ op: crop }, { op: place, fill: 0.85, background: "#ffffff" }, { op: shadow, opacity: 0.2, blur: 20 }]`,
        }),
        "shots.yaml",
      ),
    );
    assert.notEqual(after[0]?.links[0]?.recipeHash, before[0]?.links[0]?.recipeHash);
    assert.equal(after[0]?.links[1]?.recipeHash, before[0]?.links[1]?.recipeHash);
    assert.equal(after[1]?.recipeHash, before[1]?.recipeHash, "lifestyle is untouched");
  });

  it("changes the recipe hash when the local pipeline version changes", () => {
    const config = parseShotList(shotList(), "shots.yaml");
    const before = plan(config, "sharp 1 / vips 2 / pipeline 1");
    const after = plan(config, "sharp 1 / vips 2 / pipeline 2");
    assert.notEqual(after[0]?.links[0]?.recipeHash, before[0]?.links[0]?.recipeHash);
    assert.notEqual(after[1]?.recipeHash, before[1]?.recipeHash, "the cut-out input is local work");
  });

  it("renders the prompt template into the recipe with the seed", () => {
    const [, lifestyle] = plan(parseShotList(shotList(), "shots.yaml"));
    const recipe = lifestyle?.links[0]?.recipe;
    assert.equal(recipe?.prompt, "Stoneware mug in sage stoneware, a home scene");
    assert.equal(recipe?.input, "cutout");
    assert.ok(Number.isInteger(recipe?.seed));
    const other = plan(parseShotList(shotList(), "shots.yaml"));
    assert.equal(other[1]?.links[0]?.recipe.seed, recipe?.seed, "the seed is stable");
  });

  it("changes the lifestyle recipe when an attribute its prompt reads changes, not another", () => {
    const config = parseShotList(shotList(), "shots.yaml");
    const home = config.categories.get("home");
    assert.ok(home);
    const version = () => "v";
    const base = planProduct(product, [REFERENCE], home, version);
    const recoloured = planProduct(
      { ...product, attributes: { ...product.attributes, color: "ink" } },
      [REFERENCE],
      home,
      version,
    );
    const reseasoned = planProduct(
      { ...product, attributes: { ...product.attributes, season: "AW27" } },
      [REFERENCE],
      home,
      version,
    );
    assert.notEqual(recoloured[1]?.recipeHash, base[1]?.recipeHash);
    assert.equal(reseasoned[1]?.recipeHash, base[1]?.recipeHash);
  });

  it("renders a missing attribute as empty", () => {
    assert.equal(
      renderTemplate("{{title}} ({{ material }})", { ...product, attributes: {} }),
      "Stoneware mug ()",
    );
  });
});

describe("mixed slot recipes: bad config", () => {
  it("refuses an unknown placeholder in a prompt, naming the path and the line", () => {
    const error = configError(shotList({ prompt: "{{title}} in {{colour}}" }));
    assert.match(
      error.message,
      /^shots\.yaml:20: at slots\.lifestyle\.chain\.0\.prompt: unknown placeholder \{\{colour\}\}; expected one of \{\{title\}\}/m,
    );
  });

  it("refuses an unknown placeholder in alt text", () => {
    const error = configError(
      shotList().replace("  hero:\n", '  hero:\n    alt: "{{title}} by {{brand}}"\n'),
    );
    assert.match(error.message, /at slots\.hero\.alt: unknown placeholder \{\{brand\}\}/);
  });

  it("refuses then on a local link", () => {
    const error = configError(
      shotList().replace(
        'steps: [{ op: cutout }, { op: crop }, { op: place, fill: 0.85, background: "#ffffff" }]',
        "steps: [{ op: cutout }]\n        then: [{ op: crop }]",
      ),
    );
    assert.match(error.message, /at slots\.hero\.chain\.1\.then: then follows a paid provider/);
  });

  it("refuses input: cutout on a local link", () => {
    const error = configError(
      shotList().replace(
        "      - provider: local\n",
        "      - provider: local\n        input: cutout\n",
      ),
    );
    assert.match(error.message, /at slots\.hero\.chain\.1\.input: input chooses a paid provider/);
  });

  it("refuses local steps in an order the pipeline cannot run", () => {
    const shadowFirst = configError(
      shotList({
        localSteps: `[{ op: shadow, opacity: 0.2, blur: 20 }, { op: place, fill: 0.85, background: "#ffffff" }]`,
      }),
    );
    assert.match(shadowFirst.message, /at slots\.hero\.chain\.0\.then\.0: shadow needs a place/);
    const cropAfterPlace = configError(
      shotList({ localSteps: `[{ op: place, fill: 0.85, background: "#ffffff" }, { op: crop }]` }),
    );
    assert.match(cropAfterPlace.message, /then\.1: crop cannot follow place or scene/);
    const grid = configError(shotList({ localSteps: "[{ op: swatch-grid, columns: 3 }]" }));
    assert.match(grid.message, /then\.0: swatch-grid draws the variants/);
  });

  it("refuses an unknown step and an unknown input", () => {
    const unknownStep = configError(shotList({ localSteps: "[{ op: sharpen }]" }));
    assert.match(unknownStep.message, /at slots\.hero\.chain\.0\.then\.0\.op: /);
    const unknownInput = configError(shotList().replace("input: cutout", "input: mask"));
    assert.match(unknownInput.message, /at slots\.lifestyle\.chain\.0\.input: /);
  });

  it("refuses input: cutout on a slot made from the variants", () => {
    const error = configError(
      shotList().replace(
        "  lifestyle:\n    source: { reference: 0 }",
        "  lifestyle:\n    source: { variants: true }",
      ),
    );
    assert.match(
      error.message,
      /at slots\.lifestyle\.chain\.0\.input: input: cutout needs a reference/,
    );
  });

  it("refuses a category override that makes a cut-out slot read the variants", () => {
    const error = configError(
      shotList().replace(
        "  home: { slots: [hero, lifestyle] }",
        "  home:\n    slots: [hero, lifestyle]\n    overrides:\n      lifestyle: { source: { variants: true } }",
      ),
    );
    assert.match(
      error.message,
      /at categories\.home\.overrides\.lifestyle: input: cutout needs a reference photo/,
    );
  });
});
