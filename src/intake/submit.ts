import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { BlobStore } from "../blobs/store.js";
import { referenceKey } from "../blobs/store.js";
import { canonicalJson, sha256Hex } from "../domain/canonical.js";
import { ShotlistError } from "../domain/errors.js";
import { planProduct, type SlotPlan } from "../domain/plan.js";
import type { ProductInput, ReferenceImage, ReferenceImageInput } from "../domain/product.js";
import type { ShotListConfig } from "../domain/shotlist.js";
import { validateSku } from "../domain/sku.js";
import { luminanceGrid } from "../pipeline/checks.js";
import { decodeImage } from "../pipeline/decode.js";
import type { ProviderRegistry } from "../providers/registry.js";
import type { OnPublishing } from "../store/assets.js";
import type { Db, Queryable } from "../store/db.js";
import { type SavedSlot, saveProductPlan } from "../store/products.js";
import { fetchReference } from "./fetch-reference.js";
import { describeIssues, productInputSchema } from "./schema.js";

export interface IntakeDeps {
  db: Db;
  blobs: BlobStore;
  shotList: ShotListConfig;
  providers: ProviderRegistry;
  limits: {
    maxPixels: number;
    maxImageBytes: number;
    maxAttempts: number;
    allowPrivateNetworks: boolean;
  };
  /**
   * Write-back and outbound webhooks for slots that settle at intake by taking over a recipe
   * that finished before; the render path calls the same function when it publishes.
   */
  onPublishing?: OnPublishing;
  /** Called after a commit that created jobs (wakes in-process workers). */
  onJobsCreated?: (count: number) => void;
  /** Called after every commit of a product's plan (its slots may have changed). */
  onProductSaved?: (sku: string) => void;
}

export interface SubmitOptions {
  /** Folder that `{path}` reference images are read from; without it `{path}` is refused. */
  baseDir?: string;
  /**
   * Runs inside the product's transaction, before it is written (a webhook door records its
   * delivery receipt here, so receipt and jobs commit together). Throwing rolls all back.
   */
  withinTransaction?: (tx: Queryable, product: ProductInput) => Promise<void>;
}

export interface SubmitResult {
  sku: string;
  created: boolean;
  changed: boolean;
  jobsCreated: number;
  slots: SavedSlot[];
}

/** Validates an outside body into a ProductInput, or throws one clear `invalid_request`. */
export function parseProductInput(body: unknown, shotList: ShotListConfig): ProductInput {
  const parsed = productInputSchema.safeParse(body);
  if (!parsed.success) {
    throw new ShotlistError("invalid_request", describeIssues(parsed.error), { status: 422 });
  }
  const product = parsed.data;
  validateSku(product.sku);
  const seen = new Set<string>();
  for (const [index, variant] of product.variants.entries()) {
    try {
      validateSku(variant.sku);
    } catch (error) {
      throw new ShotlistError("invalid_sku", `variants.${index}.sku: ${(error as Error).message}`, {
        status: 422,
      });
    }
    if (seen.has(variant.sku)) {
      throw new ShotlistError(
        "invalid_request",
        `variants.${index}.sku: duplicate variant sku ${variant.sku}`,
        {
          status: 422,
        },
      );
    }
    seen.add(variant.sku);
  }
  if (!shotList.categories.has(product.category)) {
    throw new ShotlistError(
      "unknown_category",
      `category "${product.category}" has no shot list; known: ${[...shotList.categories.keys()].join(", ")}`,
      { status: 422 },
    );
  }
  return product;
}

/** Plans a product without touching anything (for --dry-run); reference hashes are unknown. */
export function planWithoutReferences(
  product: ProductInput,
  deps: Pick<IntakeDeps, "shotList" | "providers">,
): SlotPlan[] {
  const shotList = deps.shotList.categories.get(product.category);
  if (!shotList)
    throw new ShotlistError("unknown_category", `category "${product.category}" has no shot list`);
  const placeholders = product.referenceImages.map((_, index) => `unresolved-${index}`);
  return planProduct(product, placeholders, shotList, deps.providers.modelVersionOf);
}

/**
 * The one door (DESIGN §2): every entry point hands its product here. Validates, fetches and
 * hashes reference images, plans recipes, then writes product + recipes + jobs in one
 * transaction. Reference bytes are stored content-addressed before that transaction, so a
 * failure leaves at most unreferenced blobs, never a half-written product.
 */
export async function submitProduct(
  deps: IntakeDeps,
  body: unknown,
  options: SubmitOptions = {},
): Promise<SubmitResult> {
  const product = parseProductInput(body, deps.shotList);
  const references: ReferenceImage[] = [];
  for (const [index, input] of product.referenceImages.entries()) {
    references.push(await resolveReference(deps, input, index, options));
  }
  const shotList = deps.shotList.categories.get(product.category);
  if (!shotList)
    throw new ShotlistError("unknown_category", `category "${product.category}" has no shot list`);
  const plans = planProduct(
    product,
    references.map((reference) => reference.sha256),
    shotList,
    deps.providers.modelVersionOf,
  );
  const inputHash = sha256Hex(
    canonicalJson({
      product: { ...product, referenceImages: undefined },
      references: references.map((reference) => reference.sha256),
      recipes: plans.map((plan) => plan.links.map((link) => link.recipeHash)),
    }),
  );
  const saved = await deps.db.transaction(async (tx) => {
    await options.withinTransaction?.(tx, product);
    return saveProductPlan(
      tx,
      product,
      references,
      references.map((reference) => reference.origin),
      plans,
      inputHash,
      deps.limits.maxAttempts,
      deps.onPublishing,
    );
  });
  deps.onProductSaved?.(product.sku);
  const jobsCreated = saved.slots.filter((slot) => slot.jobCreated).length;
  if (jobsCreated > 0) deps.onJobsCreated?.(jobsCreated);
  return { sku: product.sku, ...saved, jobsCreated };
}

async function resolveReference(
  deps: IntakeDeps,
  input: ReferenceImageInput,
  index: number,
  options: SubmitOptions,
): Promise<ReferenceImage> {
  const where = `referenceImages.${index}`;
  let bytes: Buffer;
  let origin: string;
  if ("base64" in input) {
    origin = "upload";
    bytes = Buffer.from(input.base64, "base64");
    if (bytes.length === 0) {
      throw new ShotlistError("reference_image_undecodable", `${where}: base64 holds no bytes`, {
        status: 422,
      });
    }
  } else if ("url" in input) {
    origin = input.url;
    bytes = await fetchReference(input.url, {
      maxBytes: deps.limits.maxImageBytes,
      allowPrivateNetworks: deps.limits.allowPrivateNetworks,
    }).catch((error: unknown) => {
      if (error instanceof ShotlistError) {
        throw new ShotlistError(error.code, `${where}: ${error.message}`, {
          status: error.status,
          retryable: error.retryable,
          cause: error,
        });
      }
      throw error;
    });
  } else {
    if (!options.baseDir) {
      throw new ShotlistError(
        "invalid_request",
        `${where}: {path} references are only accepted from files (shotlist import); send {url} or {base64}`,
        { status: 422 },
      );
    }
    const path = isAbsolute(input.path) ? input.path : resolve(options.baseDir, input.path);
    origin = input.path;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      throw new ShotlistError("reference_image_missing", `${where}: cannot read ${input.path}`, {
        status: 422,
        cause,
      });
    }
  }
  if (bytes.length > deps.limits.maxImageBytes) {
    throw new ShotlistError(
      "reference_image_too_large",
      `${where}: ${bytes.length} bytes; at most ${deps.limits.maxImageBytes}`,
      { status: 413 },
    );
  }
  let meta: Awaited<ReturnType<typeof decodeImage>>;
  try {
    meta = await decodeImage(bytes, { maxPixels: deps.limits.maxPixels });
  } catch (error) {
    if (error instanceof ShotlistError) {
      const code =
        error.code === "image_too_large"
          ? "reference_image_too_large"
          : "reference_image_undecodable";
      throw new ShotlistError(code, `${where} (${origin}): ${error.message}`, {
        status: error.status,
        cause: error,
      });
    }
    throw error;
  }
  const sha256 = sha256Hex(bytes);
  const key = referenceKey(sha256);
  if (!(await deps.blobs.has(key))) await deps.blobs.put(key, bytes);
  return {
    sha256,
    width: meta.width,
    height: meta.height,
    format: meta.format,
    byteSize: bytes.length,
    origin,
    luminanceGrid: luminanceGrid(meta.preview),
  };
}
