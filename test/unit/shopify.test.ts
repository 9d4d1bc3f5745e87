import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadShotList } from "../../src/config/shotlist.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { parseCategoryMapping, productFromShopify } from "../../src/intake/shopify.js";

const shotList = loadShotList();
const noMapping = parseCategoryMapping(undefined);

function refusal(work: () => unknown): ShotlistError {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof ShotlistError, String(error));
    return error;
  }
  assert.fail("the payload was accepted");
}

describe("Shopify product payloads", () => {
  it("treats Shopify's placeholder variant as no variant and keeps its SKU as the product's", () => {
    const product = productFromShopify(
      {
        id: 12,
        title: "Tote",
        product_type: "Bags",
        options: [{ name: "Title", position: 1 }],
        variants: [{ id: 5, sku: "TOTE-1", option1: "Default Title" }],
        images: [
          { src: "https://cdn.shopify.com/b.jpg", position: 2 },
          { src: "https://cdn.shopify.com/a.jpg", position: 1 },
        ],
      },
      noMapping,
      shotList,
    );
    assert.equal(product.sku, "TOTE-1");
    assert.equal(product.category, "bags");
    assert.deepEqual(product.variants, []);
    assert.deepEqual(product.referenceImages, [
      { url: "https://cdn.shopify.com/a.jpg" },
      { url: "https://cdn.shopify.com/b.jpg" },
    ]);
  });

  it("falls back to shopify-<id> SKUs when Shopify's are missing, invalid or repeated", () => {
    const product = productFromShopify(
      {
        id: "77",
        title: "Sneaker",
        product_type: "kicks",
        options: [{ name: "Colour" }],
        variants: [
          { id: 1, sku: "has space", option1: "red" },
          { id: 2, sku: "SNK-NAVY", option1: "navy" },
          { id: 3, sku: "SNK-NAVY", option1: "black" },
        ],
      },
      parseCategoryMapping("Kicks=footwear"),
      shotList,
    );
    assert.equal(product.sku, "shopify-77");
    assert.equal(product.category, "footwear");
    assert.deepEqual(product.variants, [
      { sku: "shopify-77-1", attributes: { color: "red" } },
      { sku: "SNK-NAVY", attributes: { color: "navy" } },
      { sku: "shopify-77-3", attributes: { color: "black" } },
    ]);
  });

  it("maps unknown product types through the * fallback, or refuses them without one", () => {
    const payload = { id: 1, title: "Rug", product_type: "Rugs" };
    assert.equal(
      productFromShopify(payload, parseCategoryMapping("*=home"), shotList).category,
      "home",
    );
    assert.equal(
      refusal(() => productFromShopify(payload, noMapping, shotList)).code,
      "unknown_category",
    );
    assert.equal(refusal(() => productFromShopify({ id: 1 }, noMapping, shotList)).status, 422);
    assert.equal(refusal(() => parseCategoryMapping("Rugs")).code, "invalid_env");
  });
});
