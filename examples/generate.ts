/**
 * Writes product catalogues drawn by examples/studio.ts.
 *
 *   node --import tsx examples/generate.ts [--out examples/catalogue]
 *     The shipped sample: 14 products in 4 categories, 1200×1200 reference photos,
 *     catalogue.jsonl and catalogue.csv describing the same products.
 *
 *   node --import tsx examples/generate.ts --count 5000 --out /tmp/cat5k [--format csv|jsonl]
 *       [--pool 24] [--no-images] [--seed 1]
 *     A benchmark catalogue of N products whose reference photos come from a pool of `--pool`
 *     distinct drawn photos (images/pool-<i>.jpg), so 5,000 SKUs need not 20,000 files. With
 *     --no-images only the rows are written (the pool paths need not exist), streamed with
 *     constant memory so --count 100000 or more is fine.
 *
 * Both formats are written unless --format picks one. Output is deterministic for a given
 * seed, so benchmark runs compare like with like.
 */
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { resolveColor } from "../src/domain/colors.js";
import { drawStudioPhoto, type ProductKind, type StudioSpec } from "./studio.js";

/** Size of the shipped reference photos: a typical photographer's export for e-commerce. */
export const SAMPLE_PHOTO_SIZE_PX = 1200;

/**
 * Sensor noise of the shipped sample. Lower than the drawing default (3) because noise is what
 * JPEG compresses worst: at 1.5 the 52 sample photos stay under ~6 MB in the repository.
 */
const SAMPLE_NOISE_SIGMA = 1.5;

export type Category = "apparel" | "footwear" | "home" | "bags";

export const CATEGORY_OF_KIND: Readonly<Record<ProductKind, Category>> = {
  tshirt: "apparel",
  hoodie: "apparel",
  cap: "apparel",
  sneaker: "footwear",
  mug: "home",
  vase: "home",
  lamp: "home",
  tote: "bags",
  backpack: "bags",
};

/**
 * Colour names as a merchandiser types them, with the hex the photos are drawn in. The values
 * agree with src/domain/colors.ts so a swatch made from the name matches the photo.
 */
export const COLOR_HEX: Readonly<Record<string, string>> = Object.fromEntries(
  [
    "black",
    "white",
    "cream",
    "sand",
    "tan",
    "brown",
    "grey",
    "charcoal",
    "navy",
    "blue",
    "sky",
    "teal",
    "forest",
    "olive",
    "sage",
    "mustard",
    "orange",
    "rust",
    "red",
    "burgundy",
    "pink",
    "lavender",
    "terracotta",
  ].map((name) => [name, resolveColor(name) ?? "#808080"]),
);

/** One product as the sample describes it, before it is turned into rows. */
export interface SampleProduct {
  sku: string;
  title: string;
  kind: ProductKind;
  color: string;
  material: string;
  variantColors: string[];
  /** How many reference photos (views 0..n-1) the photographer delivered. */
  photoCount: number;
  backdrop: StudioSpec["backdrop"];
}

/**
 * The shipped sample. CAP-WOOL and SNEAKER-CANVAS have only two photos on purpose: their
 * angle-2/angle-3 slots cannot be made locally, an honest case for the review queue.
 */
export const SAMPLE_PRODUCTS: readonly SampleProduct[] = [
  {
    sku: "TEE-CLASSIC",
    title: "Classic Crew Tee",
    kind: "tshirt",
    color: "navy",
    material: "cotton",
    variantColors: ["navy", "white", "charcoal", "forest"],
    photoCount: 4,
    backdrop: "plain",
  },
  {
    sku: "TEE-POCKET",
    title: "Garment-Dyed Pocket Tee",
    kind: "tshirt",
    color: "sand",
    material: "organic cotton",
    variantColors: ["sand", "sage"],
    photoCount: 4,
    backdrop: "seamless",
  },
  {
    sku: "HOODIE-FLEECE",
    title: "Heavyweight Fleece Hoodie",
    kind: "hoodie",
    color: "forest",
    material: "cotton fleece",
    variantColors: ["forest", "grey", "black"],
    photoCount: 4,
    backdrop: "plain",
  },
  {
    sku: "CAP-TWILL",
    title: "Six-Panel Twill Cap",
    kind: "cap",
    color: "blue",
    material: "cotton twill",
    variantColors: ["blue", "tan", "black"],
    photoCount: 4,
    backdrop: "seamless",
  },
  {
    sku: "CAP-WOOL",
    title: "Wool Ball Cap",
    kind: "cap",
    color: "burgundy",
    material: "wool",
    variantColors: [],
    photoCount: 2,
    backdrop: "plain",
  },
  {
    sku: "SNEAKER-RUNNER",
    title: "Everyday Runner",
    kind: "sneaker",
    color: "red",
    material: "mesh",
    variantColors: ["red", "navy", "grey"],
    photoCount: 4,
    backdrop: "seamless",
  },
  {
    sku: "SNEAKER-COURT",
    title: "Leather Court Sneaker",
    kind: "sneaker",
    color: "white",
    material: "leather",
    variantColors: ["white", "black"],
    photoCount: 4,
    backdrop: "plain",
  },
  {
    sku: "SNEAKER-CANVAS",
    title: "Canvas High-Top",
    kind: "sneaker",
    color: "navy",
    material: "canvas",
    variantColors: ["navy", "cream", "red", "olive"],
    photoCount: 2,
    backdrop: "plain",
  },
  {
    sku: "MUG-STONEWARE",
    title: "Stoneware Mug 350 ml",
    kind: "mug",
    color: "white",
    material: "stoneware",
    variantColors: ["white", "sage", "terracotta"],
    photoCount: 4,
    backdrop: "seamless",
  },
  {
    sku: "MUG-ENAMEL",
    title: "Enamel Camp Mug",
    kind: "mug",
    color: "teal",
    material: "enamelled steel",
    variantColors: [],
    photoCount: 4,
    backdrop: "plain",
  },
  {
    sku: "VASE-AMPHORA",
    title: "Amphora Vase",
    kind: "vase",
    color: "terracotta",
    material: "ceramic",
    variantColors: ["terracotta", "teal"],
    photoCount: 4,
    backdrop: "seamless",
  },
  {
    sku: "LAMP-LINEN",
    title: "Linen Shade Table Lamp",
    kind: "lamp",
    color: "sand",
    material: "linen",
    variantColors: [],
    photoCount: 4,
    backdrop: "plain",
  },
  {
    sku: "TOTE-CANVAS",
    title: "Market Canvas Tote",
    kind: "tote",
    color: "cream",
    material: "canvas",
    variantColors: ["cream", "black"],
    photoCount: 4,
    backdrop: "plain",
  },
  {
    sku: "BACKPACK-DAYPACK",
    title: "Recycled Nylon Daypack",
    kind: "backpack",
    color: "charcoal",
    material: "recycled nylon",
    variantColors: ["charcoal", "navy", "mustard"],
    photoCount: 4,
    backdrop: "seamless",
  },
];

/** A product in the shape of the POST /v1/products body, with reference paths for files. */
export interface CatalogueRow {
  sku: string;
  title: string;
  category: Category;
  attributes: { color: string; material: string };
  variants: Array<{ sku: string; attributes: { color: string; hex: string } }>;
  referenceImages: Array<{ path: string }>;
}

export const CSV_COLUMNS = [
  "sku",
  "title",
  "category",
  "color",
  "material",
  "variants",
  "reference_images",
] as const;

export function variantSku(productSku: string, colorName: string): string {
  return `${productSku}-${colorName.toUpperCase().replace(/[^A-Z0-9]+/g, "-")}`;
}

function hexOf(colorName: string): string {
  const hex = COLOR_HEX[colorName];
  if (!hex) throw new Error(`no hex for colour ${colorName}`);
  return hex;
}

function toRow(
  product: Omit<SampleProduct, "photoCount" | "backdrop">,
  imagePaths: string[],
): CatalogueRow {
  return {
    sku: product.sku,
    title: product.title,
    category: CATEGORY_OF_KIND[product.kind],
    attributes: { color: product.color, material: product.material },
    variants: product.variantColors.map((color) => ({
      sku: variantSku(product.sku, color),
      attributes: { color, hex: hexOf(color) },
    })),
    referenceImages: imagePaths.map((path) => ({ path })),
  };
}

/** RFC 4180: quote a field holding a comma, quote, CR or LF; double the quotes inside. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function csvLine(row: CatalogueRow): string {
  const variants = row.variants
    .map((v) => `${v.sku}:${v.attributes.color}:${v.attributes.hex}`)
    .join("|");
  const images = row.referenceImages.map((r) => r.path).join("|");
  return `${[
    row.sku,
    row.title,
    row.category,
    row.attributes.color,
    row.attributes.material,
    variants,
    images,
  ]
    .map(csvField)
    .join(",")}\r\n`;
}

/** FNV-1a: stable per-SKU seeds, so adding a product does not change the others' photos. */
function hashSeed(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Runs the tasks with at most `limit` in flight (sharp is itself multi-threaded). */
async function runLimited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      await task();
    }
  });
  await Promise.all(lanes);
}

const DRAW_CONCURRENCY = Math.max(1, Math.min(4, availableParallelism()));

/** Writes with back-pressure, so a 100,000-row catalogue never sits in memory. */
class RowWriter {
  private readonly streams: Array<{ stream: WriteStream; format: "csv" | "jsonl" }> = [];

  constructor(outDir: string, formats: ReadonlyArray<"csv" | "jsonl">) {
    for (const format of formats) {
      const stream = createWriteStream(join(outDir, `catalogue.${format}`));
      this.streams.push({ stream, format });
    }
  }

  async start(): Promise<void> {
    for (const { stream, format } of this.streams) {
      if (format === "csv") await this.write(stream, `${CSV_COLUMNS.join(",")}\r\n`);
    }
  }

  async add(row: CatalogueRow): Promise<void> {
    for (const { stream, format } of this.streams) {
      await this.write(stream, format === "csv" ? csvLine(row) : `${JSON.stringify(row)}\n`);
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.streams.map(async ({ stream }) => {
        stream.end();
        await once(stream, "finish");
      }),
    );
  }

  private async write(stream: WriteStream, text: string): Promise<void> {
    if (!stream.write(text)) await once(stream, "drain");
  }
}

// ---------------------------------------------------------------------------------------------
// The shipped sample

const SAMPLE_README = `# Sample catalogue (generated)

Generated by \`examples/generate.ts\` (\`npm run examples\`); do not edit by hand, re-run it.
The photos are drawn, not photographed: \`examples/studio.ts\` draws each product as SVG on a
studio backdrop and can return the exact subject mask for tests.

- \`catalogue.jsonl\`: one product per line, the body of \`POST /v1/products\` with
  \`referenceImages[].path\` relative to this folder.
- \`catalogue.csv\`: the same products, \`variants\` as \`SKU:colour:#hex\` entries and
  \`reference_images\` as paths, both \`|\`-separated.
- \`images/<sku>-<view>.jpg\`: 1200×1200 reference photos; view 0 front, 1 three-quarter,
  2 side, 3 back or detail. CAP-WOOL and SNEAKER-CANVAS have only views 0 and 1 on purpose.
`;

export async function writeSampleCatalogue(
  outDir: string,
  formats: ReadonlyArray<"csv" | "jsonl">,
): Promise<{ products: number; photos: number; imageBytes: number }> {
  await mkdir(join(outDir, "images"), { recursive: true });
  let imageBytes = 0;
  const draws: Array<() => Promise<void>> = [];
  for (const product of SAMPLE_PRODUCTS) {
    for (let view = 0; view < product.photoCount; view++) {
      draws.push(async () => {
        const photo = await drawStudioPhoto({
          kind: product.kind,
          color: hexOf(product.color),
          backdrop: product.backdrop,
          view,
          width: SAMPLE_PHOTO_SIZE_PX,
          height: SAMPLE_PHOTO_SIZE_PX,
          seed: hashSeed(`${product.sku}-${view}`),
          noise: SAMPLE_NOISE_SIGMA,
        });
        imageBytes += photo.jpeg.length;
        await writeFile(join(outDir, "images", `${product.sku}-${view}.jpg`), photo.jpeg);
      });
    }
  }
  await runLimited(draws, DRAW_CONCURRENCY);

  const writer = new RowWriter(outDir, formats);
  await writer.start();
  for (const product of SAMPLE_PRODUCTS) {
    const paths = Array.from(
      { length: product.photoCount },
      (_, view) => `images/${product.sku}-${view}.jpg`,
    );
    await writer.add(toRow(product, paths));
  }
  await writer.close();
  // CSV and JSONL cannot carry a comment, so the folder says it is generated.
  await writeFile(join(outDir, "README.md"), SAMPLE_README);
  return { products: SAMPLE_PRODUCTS.length, photos: draws.length, imageBytes };
}

// ---------------------------------------------------------------------------------------------
// Big catalogues for benchmarks

/** Kind order of the pool: categories interleaved so even a small pool spans all four. */
const POOL_KIND_ORDER: readonly ProductKind[] = [
  "tshirt",
  "sneaker",
  "mug",
  "tote",
  "hoodie",
  "vase",
  "backpack",
  "cap",
  "lamp",
];

const KIND_WORDS: Readonly<
  Record<ProductKind, { prefix: string; noun: string; materials: readonly string[] }>
> = {
  tshirt: { prefix: "TEE", noun: "Tee", materials: ["cotton", "organic cotton", "linen"] },
  hoodie: { prefix: "HOODIE", noun: "Hoodie", materials: ["cotton fleece", "merino"] },
  cap: { prefix: "CAP", noun: "Cap", materials: ["cotton twill", "wool", "corduroy"] },
  sneaker: { prefix: "SNEAKER", noun: "Sneaker", materials: ["leather", "canvas", "mesh"] },
  mug: { prefix: "MUG", noun: "Mug", materials: ["stoneware", "porcelain", "enamelled steel"] },
  vase: { prefix: "VASE", noun: "Vase", materials: ["ceramic", "glass", "terracotta"] },
  lamp: { prefix: "LAMP", noun: "Table Lamp", materials: ["linen", "ceramic", "brass"] },
  tote: { prefix: "TOTE", noun: "Tote", materials: ["canvas", "leather", "jute"] },
  backpack: { prefix: "BACKPACK", noun: "Backpack", materials: ["recycled nylon", "canvas"] },
};

const TITLE_WORDS = [
  "Everyday",
  "Classic",
  "Studio",
  "Weekend",
  "Heritage",
  "Essential",
  "Relaxed",
  "Coastal",
  "Urban",
  "Field",
];

interface PoolSet {
  kind: ProductKind;
  color: string;
  /** Pool paths of views 0..n-1 of one drawn product. */
  paths: string[];
}

/** Pool photo i shows view i%4 of set i/4; set s is kind s%9 in colour round s/9. */
function describePool(poolSize: number): Array<PoolSet & { indices: number[] }> {
  const colorNames = Object.keys(COLOR_HEX);
  const sets: Array<PoolSet & { indices: number[] }> = [];
  for (let i = 0; i < poolSize; i++) {
    const setIndex = Math.floor(i / 4);
    if (!sets[setIndex]) {
      const kind = POOL_KIND_ORDER[setIndex % POOL_KIND_ORDER.length]!;
      const round = Math.floor(setIndex / POOL_KIND_ORDER.length);
      const color = colorNames[(setIndex * 7 + round * 3) % colorNames.length]!;
      sets[setIndex] = { kind, color, paths: [], indices: [] };
    }
    sets[setIndex]!.paths.push(`images/pool-${i}.jpg`);
    sets[setIndex]!.indices.push(i);
  }
  return sets;
}

export interface BigCatalogueOptions {
  outDir: string;
  count: number;
  poolSize: number;
  formats: ReadonlyArray<"csv" | "jsonl">;
  /** false: write rows only; the pool paths they reference need not exist. */
  images: boolean;
  seed: number;
}

export async function writeBigCatalogue(
  options: BigCatalogueOptions,
): Promise<{ products: number; photos: number; imageBytes: number }> {
  const { outDir, count, poolSize, formats, images, seed } = options;
  await mkdir(images ? join(outDir, "images") : outDir, { recursive: true });
  const pool = describePool(poolSize);
  let imageBytes = 0;
  if (images) {
    const draws = pool.flatMap((set, setIndex) =>
      set.indices.map((poolIndex, view) => async () => {
        const photo = await drawStudioPhoto({
          kind: set.kind,
          color: hexOf(set.color),
          backdrop: setIndex % 2 === 0 ? "plain" : "seamless",
          view,
          width: SAMPLE_PHOTO_SIZE_PX,
          height: SAMPLE_PHOTO_SIZE_PX,
          seed: (seed * 100_003 + poolIndex) >>> 0,
        });
        imageBytes += photo.jpeg.length;
        await writeFile(join(outDir, "images", `pool-${poolIndex}.jpg`), photo.jpeg);
      }),
    );
    await runLimited(draws, DRAW_CONCURRENCY);
  }

  const colorNames = Object.keys(COLOR_HEX);
  const writer = new RowWriter(outDir, formats);
  await writer.start();
  for (let i = 0; i < count; i++) {
    // Per-row hashing rather than one PRNG stream: row i is the same whatever --count is.
    const h = (salt: string): number => hashSeed(`${seed}:${i}:${salt}`);
    const set = pool[h("set") % pool.length]!;
    const words = KIND_WORDS[set.kind];
    const sku = `${words.prefix}-${String(i + 1).padStart(6, "0")}`;
    // As in the sample: most products have four photos, about one in seven only two.
    const wanted = h("photos") % 7 === 0 ? 2 : 4;
    const photoCount = Math.max(1, Math.min(wanted, set.paths.length));
    const variantCount = h("variants") % 5;
    const variantColors: string[] = variantCount > 0 ? [set.color] : [];
    for (let v = 1; variantColors.length < variantCount && v < 40; v++) {
      const name = colorNames[h(`variant${v}`) % colorNames.length]!;
      if (!variantColors.includes(name)) variantColors.push(name);
    }
    const row = toRow(
      {
        sku,
        title: `${TITLE_WORDS[h("title") % TITLE_WORDS.length]} ${words.noun} ${i + 1}`,
        kind: set.kind,
        color: set.color,
        material: words.materials[h("material") % words.materials.length]!,
        variantColors,
      },
      set.paths.slice(0, photoCount),
    );
    await writer.add(row);
  }
  await writer.close();
  return { products: count, photos: images ? poolSize : 0, imageBytes };
}

// ---------------------------------------------------------------------------------------------
// Command line

function parseFormats(format: string | undefined): Array<"csv" | "jsonl"> {
  if (format === undefined) return ["jsonl", "csv"];
  if (format === "csv" || format === "jsonl") return [format];
  throw new Error(`--format must be csv or jsonl, got ${format}`);
}

function parsePositiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) {
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  }
  return parsed;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      count: { type: "string" },
      format: { type: "string" },
      pool: { type: "string" },
      "no-images": { type: "boolean", default: false },
      seed: { type: "string" },
    },
    strict: true,
  });
  const startedMs = performance.now();
  const formats = parseFormats(values.format);
  if (values.count === undefined) {
    const outDir = resolve(values.out ?? "examples/catalogue");
    const result = await writeSampleCatalogue(outDir, formats);
    report(outDir, result, startedMs);
    return;
  }
  const outDir = resolve(values.out ?? "/tmp/shotlist-catalogue");
  const result = await writeBigCatalogue({
    outDir,
    count: parsePositiveInt("count", values.count, 0),
    poolSize: parsePositiveInt("pool", values.pool, 24),
    formats,
    images: !values["no-images"],
    seed: parsePositiveInt("seed", values.seed, 1),
  });
  report(outDir, result, startedMs);
}

function report(
  outDir: string,
  result: { products: number; photos: number; imageBytes: number },
  startedMs: number,
): void {
  const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
  const megabytes = (result.imageBytes / 1e6).toFixed(2);
  process.stderr.write(
    `wrote ${result.products} products, ${result.photos} photos (${megabytes} MB) to ${outDir} in ${seconds} s\n`,
  );
}

const isEntryPoint =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isEntryPoint) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
