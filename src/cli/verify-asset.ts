import { assetKey, referenceKey } from "../blobs/store.js";
import { sha256Hex } from "../domain/canonical.js";
import { ShotlistError } from "../domain/errors.js";
import { isPaidProvider } from "../providers/provider.js";
import type { Runtime } from "../runtime.js";
import { getAsset, getRecipes } from "../store/assets.js";

export interface VerifyResult {
  assetId: number;
  sha256: string;
  reproducedSha256: string;
  identical: boolean;
}

/**
 * Renders an asset's recipe again with its provider and compares the bytes with the stored
 * asset (issue 5 §3: every recipe regenerates byte-identical output). Only free providers
 * (local, template) are run: re-running a paid recipe would pay for it again, so it is refused.
 */
export async function verifyAsset(runtime: Runtime, assetId: number): Promise<VerifyResult> {
  const asset = await getAsset(runtime.db, assetId);
  if (!asset) throw new ShotlistError("not_found", `no asset ${assetId}`, { status: 404 });
  if (asset.made_by === "human") {
    throw new ShotlistError(
      "invalid_request",
      `asset ${assetId} is a human upload: it has no recipe of its own to render again`,
    );
  }
  const recipe = (await getRecipes(runtime.db, [asset.recipe_hash])).get(asset.recipe_hash);
  if (!recipe) throw new ShotlistError("internal", `recipe ${asset.recipe_hash} is missing`);
  const provider = runtime.providers.get(recipe.provider);
  if (isPaidProvider(provider)) {
    throw new ShotlistError(
      "invalid_request",
      `asset ${assetId} was made by the paid provider ${recipe.provider}: verifying it would pay for the call again`,
    );
  }
  const references = new Map<string, Buffer>();
  for (const sha256 of recipe.references) {
    const bytes = await runtime.blobs.get(referenceKey(sha256));
    if (!bytes) {
      throw new ShotlistError("reference_image_missing", `reference image ${sha256} is gone`);
    }
    references.set(sha256, bytes);
  }
  const stored = await runtime.blobs.get(assetKey(asset.sha256, asset.ext));
  if (!stored) throw new ShotlistError("not_found", `the bytes of asset ${assetId} are gone`);
  const result = await provider.run(
    { recipe, recipeHash: asset.recipe_hash, references },
    { signal: AbortSignal.timeout(120_000) },
  );
  const reproducedSha256 = sha256Hex(result.bytes);
  return {
    assetId,
    sha256: asset.sha256,
    reproducedSha256,
    identical: reproducedSha256 === sha256Hex(stored),
  };
}

/** `shotlist verify-asset ID`: exits non-zero when the bytes differ. */
export async function verifyAssetCommand(
  runtime: Runtime,
  id: string,
  print: (line: string) => void,
): Promise<VerifyResult> {
  const assetId = Number(id);
  if (!/^[1-9]\d{0,15}$/.test(id) || !Number.isSafeInteger(assetId)) {
    throw new ShotlistError("invalid_request", `asset id must be a positive integer, not "${id}"`);
  }
  const result = await verifyAsset(runtime, assetId);
  if (!result.identical) {
    throw new ShotlistError(
      "check_failed",
      `asset ${assetId}: its recipe now renders ${result.reproducedSha256}, not ${result.sha256}`,
    );
  }
  print(`asset ${assetId}: its recipe renders the same bytes (sha256 ${result.sha256})`);
  return result;
}
