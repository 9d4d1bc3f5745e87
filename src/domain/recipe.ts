import { canonicalJson, sha256Hex } from "./canonical.js";

export type OutputFormat = "jpeg" | "webp" | "avif" | "png";

/** What the bytes are made from: the N-th reference photo, or the product's colour variants. */
export type SlotSource = { kind: "reference"; index: number } | { kind: "variants" };

/**
 * One image step, as data (ipx style): the pipeline applies them in the order given.
 * Every number has a unit or a range in its doc comment; config validation enforces them.
 */
export type Step =
  /** Background removal for studio shots on a plain or seamless backdrop; soft edges kept as alpha. */
  | {
      op: "cutout" /** colour distance (0–255) still counted as backdrop; default 18 */;
      tolerance?: number;
    }
  /** Crop to the subject's bounding box (alpha > 0), keeping `padding` (fraction of the box) around it. */
  | { op: "crop"; padding?: number }
  /** Place the subject centred on a canvas of the output size so that it fills `fill` (0–1) of the frame. */
  | { op: "place"; fill: number; background: string }
  /** Soft contact shadow under the placed subject; `opacity` 0–1, `blur` in px at output size. */
  | { op: "shadow"; opacity: number; blur: number }
  /** Lifestyle composite: the cut-out on a procedurally drawn scene, at `fill` of the frame height. */
  | { op: "scene"; scene: string; fill: number }
  /** A grid of colour swatches from the product's variants, `columns` across. */
  | { op: "swatch-grid"; columns: number };

export interface Swatch {
  label: string;
  /** `#rrggbb` */
  color: string;
}

export interface OutputSpec {
  width: number;
  height: number;
  format: OutputFormat;
  /** 1–100 */
  quality: number;
}

/**
 * The fully resolved inputs of one link of one slot for one product (DESIGN §1). Its canonical
 * JSON hashed with SHA-256 is the recipe hash: same hash, same job, never made or paid twice.
 */
export interface Recipe {
  schema: 1;
  category: string;
  slot: string;
  provider: string;
  model: string;
  modelVersion: string;
  source: SlotSource;
  steps: Step[];
  prompt: string | null;
  seed: number;
  /** Reference images this recipe reads, by content hash (SHA-256 hex), in source order. */
  references: string[];
  /**
   * Product facts the steps read beyond the prompt (the swatches of the grid). Only what changes
   * the bytes belongs here: an edit to anything else must not change the hash and re-make images.
   */
  inputs: { swatches: Swatch[] };
  output: OutputSpec;
  /**
   * A paid link's input image when it is not the reference photo as it is: `cutout` = the local
   * cut-out of the first reference (cutout + crop, PNG with alpha). Absent: the reference.
   */
  input?: "cutout";
  /** Local steps run on a paid provider's output before the checks (absent: none). */
  then?: Step[];
  /**
   * Version of the local pipeline (`sharp … / vips … / pipeline n`) that runs `then` or makes the
   * `cutout` input, so a change of the local algorithms changes the hash of mixed recipes too.
   * Absent when the recipe runs no local work around its paid call.
   */
  localVersion?: string;
}

export function recipeHash(recipe: Recipe): string {
  return sha256Hex(canonicalJson(recipe));
}

/** A stable 31-bit seed from any text (e.g. "sku/slot"), so recipes need no randomness. */
export function seedFrom(text: string): number {
  return Number.parseInt(sha256Hex(text).slice(0, 8), 16) & 0x7fffffff;
}
