import { z } from "zod";
import { ShotlistError } from "../domain/errors.js";
import type { ShotListConfig } from "../domain/shotlist.js";
import { validateSku } from "../domain/sku.js";
import type { ProductInputBody } from "./schema.js";
import { describeIssues, MAX_REFERENCE_IMAGES, MAX_VARIANTS } from "./schema.js";

/** Shopify topics that carry a product to image; every other topic is acknowledged and ignored. */
export const SHOPIFY_PRODUCT_TOPICS: ReadonlySet<string> = new Set([
  "products/create",
  "products/update",
]);

const shopifyId = z.union([z.number().int(), z.string().regex(/^\d+$/)]).transform(String);
const optionValue = z.string().nullish();

/**
 * The parts of Shopify's product webhook payload (REST resource shape) that we read. Loose:
 * Shopify sends many more fields, and adds some in every API version.
 */
const shopifyProductSchema = z.object({
  id: shopifyId,
  title: z.string(),
  product_type: z.string().nullish(),
  vendor: z.string().nullish(),
  tags: z.union([z.string(), z.array(z.string())]).nullish(),
  options: z
    .array(z.object({ name: z.string(), position: z.number().int().optional() }))
    .default([]),
  variants: z
    .array(
      z.object({
        id: shopifyId,
        sku: z.string().nullish(),
        position: z.number().int().optional(),
        option1: optionValue,
        option2: optionValue,
        option3: optionValue,
      }),
    )
    .default([]),
  images: z.array(z.object({ src: z.string(), position: z.number().int().optional() })).default([]),
});

/** `product_type → category` as configured by `SHOTLIST_SHOPIFY_CATEGORIES`. */
export interface CategoryMapping {
  byType: Map<string, string>;
  fallback: string | undefined;
}

/** Parses `T-Shirts=apparel,Sneakers=footwear,*=home` (types compared case-insensitively). */
export function parseCategoryMapping(text: string | undefined): CategoryMapping {
  const mapping: CategoryMapping = { byType: new Map(), fallback: undefined };
  for (const entry of (text ?? "").split(",")) {
    if (entry.trim() === "") continue;
    const at = entry.lastIndexOf("=");
    const type = entry.slice(0, at).trim().toLowerCase();
    const category = entry.slice(at + 1).trim();
    if (at <= 0 || category === "") {
      throw new ShotlistError(
        "invalid_env",
        `SHOTLIST_SHOPIFY_CATEGORIES: "${entry}" is not product_type=category`,
      );
    }
    if (type === "*") mapping.fallback = category;
    else mapping.byType.set(type, category);
  }
  return mapping;
}

function categoryOf(
  productType: string,
  mapping: CategoryMapping,
  shotList: ShotListConfig,
): string {
  const type = productType.trim().toLowerCase();
  const mapped = mapping.byType.get(type);
  if (mapped) return mapped;
  // Default: a Shopify product type that is already a category name (any case) maps to it.
  for (const category of shotList.categories.keys()) {
    if (category.toLowerCase() === type) return category;
  }
  if (mapping.fallback) return mapping.fallback;
  throw new ShotlistError(
    "unknown_category",
    `product_type "${productType}" maps to no category; set SHOTLIST_SHOPIFY_CATEGORIES (e.g. "${productType || "Shirts"}=apparel" or "*=home")`,
    { status: 422 },
  );
}

const isSku = (value: string | null | undefined): value is string => {
  if (!value) return false;
  try {
    validateSku(value);
    return true;
  } catch {
    return false;
  }
};

/**
 * Maps a Shopify `products/create|update` payload to the product shape of POST /v1/products;
 * the intake validates it like any other door. Decisions (README "Webhooks in"):
 * - sku: the first variant's SKU when it is a valid Shotlist SKU, else `shopify-<product id>`;
 *   a variant without a valid, unique SKU gets `shopify-<product id>-<variant id>`.
 * - variant attributes: option name in lower case → value (`Color` → `color`, which the
 *   swatch slot reads); Shopify's placeholder variant ("Title" / "Default Title") is no variant.
 * - more than MAX_VARIANTS variants (Shopify allows 2,048): one variant per distinct colour is
 *   kept — the only variant attribute a recipe reads — instead of refusing the product.
 * - images in position order, the first MAX_REFERENCE_IMAGES; the shot list reads the first few.
 */
export function productFromShopify(
  payload: unknown,
  mapping: CategoryMapping,
  shotList: ShotListConfig,
): ProductInputBody {
  const parsed = shopifyProductSchema.safeParse(payload);
  if (!parsed.success) {
    throw new ShotlistError(
      "invalid_request",
      `not a Shopify product: ${describeIssues(parsed.error)}`,
      { status: 422 },
    );
  }
  const shopify = parsed.data;
  const optionNames = [...shopify.options]
    .sort((a, b) => (a.position ?? 0) - (b.position ?? 0))
    .map((option) => option.name.trim().toLowerCase());
  const variantsInOrder = [...shopify.variants].sort(
    (a, b) => (a.position ?? 0) - (b.position ?? 0),
  );
  const firstSku = variantsInOrder[0]?.sku?.trim();
  const sku = isSku(firstSku) ? firstSku : `shopify-${shopify.id}`;

  const seen = new Set<string>();
  let variants: { sku: string; attributes: Record<string, string> }[] = [];
  for (const variant of variantsInOrder) {
    const attributes: Record<string, string> = {};
    for (const [index, value] of [variant.option1, variant.option2, variant.option3].entries()) {
      const name = optionNames[index];
      if (!name || value === null || value === undefined) continue;
      if (name === "title" && value === "Default Title") continue;
      attributes[name === "colour" ? "color" : name] = value;
    }
    if (Object.keys(attributes).length === 0) continue;
    const own = variant.sku?.trim();
    const variantSku = isSku(own) && !seen.has(own) ? own : `shopify-${shopify.id}-${variant.id}`;
    seen.add(variantSku);
    variants.push({ sku: variantSku, attributes });
  }
  if (variants.length > MAX_VARIANTS) {
    const byColor = new Map<string, (typeof variants)[number]>();
    for (const variant of variants) {
      const color = variant.attributes.color ?? "";
      if (!byColor.has(color)) byColor.set(color, variant);
    }
    variants = [...byColor.values()];
  }

  const tags = Array.isArray(shopify.tags)
    ? shopify.tags
    : (shopify.tags ?? "").split(",").map((tag) => tag.trim());
  const attributes: Record<string, string> = { shopifyProductId: shopify.id };
  const tagText = tags.filter((tag) => tag.length > 0).join(", ");
  if (tagText) attributes.tags = tagText;
  if (shopify.vendor) attributes.vendor = shopify.vendor;
  if (shopify.product_type) attributes.productType = shopify.product_type;

  const images = [...shopify.images]
    .sort((a, b) => (a.position ?? 0) - (b.position ?? 0))
    .slice(0, MAX_REFERENCE_IMAGES);
  return {
    sku,
    title: shopify.title,
    category: categoryOf(shopify.product_type ?? "", mapping, shotList),
    attributes,
    variants,
    referenceImages: images.map((image) => ({ url: image.src })),
  };
}
