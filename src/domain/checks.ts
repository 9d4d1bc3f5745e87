/**
 * What a slot's output must satisfy before it is published (DESIGN §7). `decodes` and
 * `size` are always checked; the rest only when the slot asks.
 */
export interface CheckSpec {
  /** Marketplace main-image rule: every border pixel is (near) RGB 255,255,255. */
  whiteBorder?: { /** minimum channel value counted as white, default 250 */ minValue: number };
  /** Subject fill ratio bounds: longest side of the subject's box over the frame's, 0–1. */
  fill?: { min: number; max: number };
  /** Refuse flat images (standard deviation of luminance below `minStdDev`, default 4). */
  notBlank?: { minStdDev: number };
  /** Refuse an output that is byte-identical to, or visually the same as, its input. */
  notInput?: boolean;
  /**
   * Refuse soft images: Crete et al.'s no-reference blur measure (0 sharp … 1 flat) of the
   * subject's box on white, or of the whole frame, above `max` (see docs/checks.md).
   */
  blur?: { max: number };
}

export interface CheckResult {
  name: "decodes" | "size" | "whiteBorder" | "fill" | "notBlank" | "notInput" | "blur";
  passed: boolean;
  /** The measured value, where there is one (e.g. fill ratio 0.851). */
  value?: number;
  detail: string;
}

export function checksPassed(results: readonly CheckResult[]): boolean {
  return results.every((result) => result.passed);
}
