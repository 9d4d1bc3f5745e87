import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { CSV_COLUMNS, SAMPLE_PHOTO_SIZE_PX } from "../../examples/generate.js";
import { drawStudioPhoto, PRODUCT_KINDS, type StudioSpec } from "../../examples/studio.js";

const catalogueDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../examples/catalogue");

/** Size of the drawings under test: small enough to draw all 36 kind×view pairs quickly. */
const SIZE_PX = 240;

function coverage(mask: Buffer): number {
  let sum = 0;
  for (const value of mask) sum += value;
  return sum / 255 / mask.length;
}

/** Largest mask value on the left, right and top one-pixel borders. */
function borderMax(mask: Buffer, width: number, height: number): number {
  let max = 0;
  for (let x = 0; x < width; x++) max = Math.max(max, mask[x]!);
  for (let y = 0; y < height; y++) {
    max = Math.max(max, mask[y * width]!, mask[y * width + width - 1]!);
  }
  return max;
}

describe("drawStudioPhoto", () => {
  test("gives byte-identical JPEG and mask for the same spec", async () => {
    const spec: StudioSpec = {
      kind: "hoodie",
      color: "#228b22",
      backdrop: "seamless",
      view: 1,
      width: 320,
      height: 320,
      seed: 42,
    };
    const first = await drawStudioPhoto(spec);
    const second = await drawStudioPhoto({ ...spec });
    assert.ok(first.jpeg.equals(second.jpeg));
    assert.ok(first.mask.equals(second.mask));
  });

  test("changes the photo when only the seed changes, but not the subject's shape much", async () => {
    const spec: StudioSpec = {
      kind: "mug",
      color: "#1b7f7a",
      backdrop: "plain",
      view: 0,
      width: 320,
      height: 320,
      seed: 1,
    };
    const a = await drawStudioPhoto(spec);
    const b = await drawStudioPhoto({ ...spec, seed: 2 });
    assert.ok(!a.jpeg.equals(b.jpeg));
    assert.ok(Math.abs(coverage(a.mask) - coverage(b.mask)) < 0.02);
  });

  test("returns a single-channel mask of width*height bytes with anti-aliased edges", async () => {
    const photo = await drawStudioPhoto({
      kind: "vase",
      color: "#c8643b",
      backdrop: "plain",
      view: 0,
      width: 300,
      height: 200,
      seed: 3,
    });
    assert.equal(photo.mask.length, 300 * 200);
    const meta = await sharp(photo.jpeg).metadata();
    assert.equal(meta.format, "jpeg");
    assert.equal(meta.width, 300);
    assert.equal(meta.height, 200);
    const partial = photo.mask.filter((v) => v > 0 && v < 255).length;
    assert.ok(partial > 0, "expected anti-aliased edge pixels");
  });

  test("the mask excludes the contact shadow: the backdrop just below the subject is not subject", async () => {
    const width = 400;
    const photo = await drawStudioPhoto({
      kind: "mug",
      color: "#c62828",
      backdrop: "plain",
      view: 0,
      width,
      height: width,
      seed: 5,
    });
    let lowestRow = 0;
    for (let i = 0; i < photo.mask.length; i++) {
      if (photo.mask[i]! > 127) lowestRow = Math.floor(i / width);
    }
    const below = lowestRow + 4;
    for (let x = 0; x < width; x++) assert.equal(photo.mask[below * width + x], 0);
    // The shadow darkens the backdrop there compared with the top of the frame.
    const { data } = await sharp(photo.jpeg)
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rowMean = (y: number, x0: number, x1: number): number => {
      let sum = 0;
      for (let x = x0; x < x1; x++) sum += data[y * width + x]!;
      return sum / (x1 - x0);
    };
    assert.ok(rowMean(below, 150, 250) < rowMean(20, 150, 250) - 8);
  });

  for (const kind of PRODUCT_KINDS) {
    test(`${kind}: every view covers 5%–60% of the frame and keeps off the left, right and top edges`, async () => {
      for (let view = 0; view < 4; view++) {
        for (const backdrop of ["plain", "seamless"] as const) {
          const photo = await drawStudioPhoto({
            kind,
            color: "#8a8d91",
            backdrop,
            view,
            width: SIZE_PX,
            height: SIZE_PX,
            seed: view * 31 + 7,
          });
          const share = coverage(photo.mask);
          assert.ok(share >= 0.05 && share <= 0.6, `${kind} view ${view}: coverage ${share}`);
          assert.equal(borderMax(photo.mask, SIZE_PX, SIZE_PX), 0, `${kind} view ${view}`);
        }
      }
    });
  }

  test("the four views of a kind are different drawings", async () => {
    const masks = await Promise.all(
      [0, 1, 2, 3].map(async (view) => {
        const photo = await drawStudioPhoto({
          kind: "sneaker",
          color: "#c62828",
          backdrop: "plain",
          view,
          width: SIZE_PX,
          height: SIZE_PX,
          seed: 9,
        });
        return photo.mask;
      }),
    );
    for (let a = 0; a < 4; a++) {
      for (let b = a + 1; b < 4; b++) assert.ok(!masks[a]!.equals(masks[b]!), `${a} vs ${b}`);
    }
  });

  test("rejects a spec it cannot draw", async () => {
    const base: StudioSpec = {
      kind: "cap",
      color: "#2f5fb3",
      backdrop: "plain",
      view: 0,
      width: 200,
      height: 200,
      seed: 1,
    };
    await assert.rejects(drawStudioPhoto({ ...base, view: 4 }));
    await assert.rejects(drawStudioPhoto({ ...base, color: "blue" }));
    await assert.rejects(drawStudioPhoto({ ...base, width: 0 }));
  });
});

/** RFC 4180 rows (quoted fields, doubled quotes, CRLF or LF). Small on purpose: test-only. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const SKU_PATTERN = /^[A-Z0-9-]+$/;
const CATEGORIES = new Set(["apparel", "footwear", "home", "bags"]);

interface JsonlProduct {
  sku: string;
  title: string;
  category: string;
  attributes: { color: string; material: string };
  variants: Array<{ sku: string; attributes: { color: string; hex: string } }>;
  referenceImages: Array<{ path: string }>;
}

describe("the shipped sample catalogue", () => {
  test("catalogue.jsonl holds one product per line in the API body's shape", async () => {
    const lines = (await readFile(join(catalogueDir, "catalogue.jsonl"), "utf8"))
      .split("\n")
      .filter((line) => line.length > 0);
    assert.ok(lines.length >= 14);
    const categories = new Set<string>();
    const photoCounts: number[] = [];
    for (const line of lines) {
      const product = JSON.parse(line) as JsonlProduct;
      assert.match(product.sku, SKU_PATTERN);
      assert.equal(typeof product.title, "string");
      assert.ok(CATEGORIES.has(product.category), product.category);
      categories.add(product.category);
      assert.match(product.attributes.color, /^[a-z]+$/);
      assert.equal(typeof product.attributes.material, "string");
      assert.ok(product.variants.length <= 4);
      for (const variant of product.variants) {
        assert.match(variant.sku, SKU_PATTERN);
        assert.match(variant.attributes.color, /^[a-z]+$/);
        assert.match(variant.attributes.hex, /^#[0-9a-f]{6}$/);
      }
      assert.ok(product.referenceImages.length >= 1 && product.referenceImages.length <= 4);
      photoCounts.push(product.referenceImages.length);
    }
    assert.equal(categories.size, 4);
    assert.equal(photoCounts.filter((n) => n === 2).length, 2);
    assert.ok(photoCounts.filter((n) => n === 4).length > lines.length / 2);
  });

  test("catalogue.csv has the header and describes the same products as the JSONL", async () => {
    const rows = parseCsv(await readFile(join(catalogueDir, "catalogue.csv"), "utf8"));
    const [header, ...products] = rows;
    assert.deepEqual(header, [...CSV_COLUMNS]);
    const jsonl = (await readFile(join(catalogueDir, "catalogue.jsonl"), "utf8"))
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as JsonlProduct);
    assert.equal(products.length, jsonl.length);
    for (const [i, row] of products.entries()) {
      assert.equal(row.length, CSV_COLUMNS.length);
      const [sku, title, category, color, material, variants, images] = row;
      const expected = jsonl[i]!;
      assert.equal(sku, expected.sku);
      assert.equal(title, expected.title);
      assert.equal(category, expected.category);
      assert.equal(color, expected.attributes.color);
      assert.equal(material, expected.attributes.material);
      assert.equal(
        variants,
        expected.variants
          .map((v) => `${v.sku}:${v.attributes.color}:${v.attributes.hex}`)
          .join("|"),
      );
      assert.equal(images, expected.referenceImages.map((r) => r.path).join("|"));
    }
  });

  test("every referenced image exists and decodes at 1200×1200", async () => {
    const jsonl = (await readFile(join(catalogueDir, "catalogue.jsonl"), "utf8"))
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as JsonlProduct);
    const paths = jsonl.flatMap((p) => p.referenceImages.map((r) => r.path));
    for (const path of paths) {
      const file = join(catalogueDir, path);
      assert.ok(existsSync(file), `${path} is missing`);
      // Decoding the pixels, not only the header, catches a truncated file.
      const { info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
      assert.equal(info.width, SAMPLE_PHOTO_SIZE_PX, path);
      assert.equal(info.height, SAMPLE_PHOTO_SIZE_PX, path);
    }
  });
});
