import { ShotlistError } from "./errors.js";

/** SKUs appear in URLs and blob keys, so they are a closed alphabet: no path tricks possible. */
export const SKU_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const MAX_SKU_LENGTH = 128;

/** Returns the SKU unchanged or throws `invalid_sku` saying what is wrong with it. */
export function validateSku(sku: unknown): string {
  if (typeof sku !== "string" || sku.length === 0) {
    throw new ShotlistError("invalid_sku", "sku must be a non-empty string");
  }
  if (sku.length > MAX_SKU_LENGTH) {
    throw new ShotlistError(
      "invalid_sku",
      `sku is ${sku.length} characters; at most ${MAX_SKU_LENGTH}`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(sku)) {
    throw new ShotlistError("invalid_sku", "sku contains control characters");
  }
  if (!SKU_PATTERN.test(sku) || sku.includes("..")) {
    throw new ShotlistError(
      "invalid_sku",
      `sku ${JSON.stringify(sku)} may hold only letters, digits, '.', '_' and '-', must start with a letter or digit and may not contain '..'`,
    );
  }
  return sku;
}
