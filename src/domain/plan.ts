import type { CheckSpec } from "./checks.js";
import { resolveColor } from "./colors.js";
import type { ProductInput } from "./product.js";
import { type Recipe, recipeHash, type Swatch, seedFrom } from "./recipe.js";
import type { CategoryShotList, ChainLink, SlotDefinition } from "./shotlist.js";

export interface LinkPlan {
  recipe: Recipe;
  recipeHash: string;
}

/** What one slot of one product needs: its links (in fallback order) and its checks. */
export interface SlotPlan {
  slot: string;
  required: boolean;
  alt: string;
  checks: CheckSpec;
  links: LinkPlan[];
  /** The first link's recipe hash: the job key and the slot's identity. */
  recipeHash: string;
}

/**
 * The placeholders a prompt or alt template may use. Anything else is a config error at load
 * time (a typo such as `{{colour}}` would otherwise render as nothing in every prompt, paid for).
 */
export const TEMPLATE_PLACEHOLDERS = ["title", "sku", "category", "color", "material"] as const;

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The placeholder names a template uses, in order (for validation at config load). */
export function templatePlaceholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((match) => match[1] ?? "");
}

/**
 * Fills {{title}}, {{sku}}, {{category}}, {{color}}, {{material}}; an attribute the product does
 * not have renders as "" (the config loader has already refused unknown placeholders).
 */
export function renderTemplate(template: string, product: ProductInput): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    if (name === "title") return product.title;
    if (name === "category") return product.category;
    if (name === "sku") return product.sku;
    return product.attributes[name] ?? "";
  });
}

export function swatchesOf(product: ProductInput): Swatch[] {
  const swatches: Swatch[] = [];
  for (const variant of product.variants) {
    const color = resolveColor(variant.attributes.color, variant.attributes.hex);
    if (color) swatches.push({ label: variant.attributes.color ?? color, color });
  }
  return swatches;
}

/**
 * Plans the shot list of one product: one recipe per chain link per slot. Pure: the same
 * product, references and config always give the same recipe hashes. A slot whose source is
 * the variants is planned only when the product has colour variants (it does not apply
 * otherwise, so it does not count against coverage).
 */
export function planProduct(
  product: ProductInput,
  referenceHashes: readonly string[],
  shotList: CategoryShotList,
  modelVersionOf: (provider: string, model: string) => string,
): SlotPlan[] {
  const swatches = swatchesOf(product);
  const plans: SlotPlan[] = [];
  for (const slot of shotList.slots) {
    if (slot.source.kind === "variants" && swatches.length === 0) continue;
    const links = slot.chain.map((link) =>
      planLink(product, slot, link, referenceHashes, swatches, modelVersionOf),
    );
    const first = links[0];
    if (!first) continue;
    plans.push({
      slot: slot.name,
      required: slot.required,
      alt: renderTemplate(slot.alt, product),
      checks: slot.checks,
      links,
      recipeHash: first.recipeHash,
    });
  }
  return plans;
}

function planLink(
  product: ProductInput,
  slot: SlotDefinition,
  link: ChainLink,
  referenceHashes: readonly string[],
  swatches: Swatch[],
  modelVersionOf: (provider: string, model: string) => string,
): LinkPlan {
  const source = slot.source;
  const reference = source.kind === "reference" ? referenceHashes[source.index] : undefined;
  const then = link.then && link.then.length > 0 ? link.then : undefined;
  const input = link.input === "cutout" ? ("cutout" as const) : undefined;
  const recipe: Recipe = {
    schema: 1,
    category: product.category,
    slot: slot.name,
    provider: link.provider,
    model: link.model,
    modelVersion: modelVersionOf(link.provider, link.model),
    source,
    steps: link.steps,
    prompt: link.prompt === null ? null : renderTemplate(link.prompt, product),
    seed: seedFrom(`${product.sku}/${slot.name}`),
    references: reference ? [reference] : [],
    inputs: { swatches: source.kind === "variants" ? swatches : [] },
    output: slot.output,
    // Optional members stay absent on plain links, so their recipe hashes are unchanged.
    ...(input ? { input } : {}),
    ...(then ? { then } : {}),
    ...(then || input ? { localVersion: modelVersionOf("local", "sharp") } : {}),
  };
  return { recipe, recipeHash: recipeHash(recipe) };
}
