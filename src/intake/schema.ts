import { z } from "zod";
import { MAX_SKU_LENGTH, SKU_PATTERN } from "../domain/sku.js";

/** Limits on one product; a PIM that sends more is told so, not silently truncated. */
export const MAX_VARIANTS = 250;
export const MAX_REFERENCE_IMAGES = 16;
export const MAX_ATTRIBUTES = 64;

/** JSON Schema metadata stating the rule validateSku enforces, for the OpenAPI document. */
export const SKU_SCHEMA_META = {
  description: "letters, digits, '.', '_' and '-', starting with a letter or digit, no '..'",
  pattern: SKU_PATTERN.source,
  minLength: 1,
  maxLength: MAX_SKU_LENGTH,
};

// Longer than a SKU may be, so validateSku, not zod, says what is wrong with a long one.
const SKU_TEXT = z
  .string()
  .max(MAX_SKU_LENGTH + 1000)
  .meta(SKU_SCHEMA_META);
const attributeValue = z
  .union([z.string().max(1000), z.number(), z.boolean()])
  .transform((value) => String(value));
const attributes = z
  .record(z.string().min(1).max(64), attributeValue)
  .refine((value) => Object.keys(value).length <= MAX_ATTRIBUTES, {
    message: `at most ${MAX_ATTRIBUTES} attributes`,
  })
  .default({});

const referenceImage = z
  .union([
    z.strictObject({ url: z.string().url().max(4096) }),
    z.strictObject({ base64: z.string().min(1) }),
    z.strictObject({ path: z.string().min(1).max(4096) }),
  ])
  .meta({
    description:
      "a photographer's photo: {url} (fetched by the server; private addresses refused) or {base64}; {path} only from files given to `shotlist import`",
  });

/** The product body of every door (DESIGN §11). SKUs are checked separately by validateSku. */
export const productInputSchema = z.strictObject({
  sku: SKU_TEXT,
  title: z.string().trim().min(1, "title must not be empty").max(500),
  category: z.string().min(1).max(64),
  attributes,
  variants: z
    .array(z.strictObject({ sku: SKU_TEXT, attributes }))
    .max(MAX_VARIANTS, `at most ${MAX_VARIANTS} variants`)
    .default([]),
  referenceImages: z
    .array(referenceImage)
    .max(MAX_REFERENCE_IMAGES, `at most ${MAX_REFERENCE_IMAGES} reference images`)
    .default([]),
});

export type ProductInputBody = z.input<typeof productInputSchema>;

/** "variants.3.sku: Too big" — one line per problem, paths as a reader would write them. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? `${issue.path.join(".")}: ` : ""}${issue.message}`)
    .join("; ");
}
