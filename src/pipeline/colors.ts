import { ShotlistError } from "../domain/errors.js";

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

export const WHITE: Rgb = { r: 255, g: 255, b: 255 };

const NAMED_COLOURS: Record<string, Rgb> = { white: WHITE, black: { r: 0, g: 0, b: 0 } };

/**
 * Parses `#rgb`, `#rrggbb` or `white`/`black`. Colours come from shot-list config and product
 * variants, so a bad one is refused with a clear reason before libvips ever sees it (ipx style).
 */
export function parseColour(text: string): Rgb {
  const trimmed = text.trim().toLowerCase();
  const named = NAMED_COLOURS[trimmed];
  if (named) return named;
  const short = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/.exec(trimmed);
  if (short) {
    const [, r, g, b] = short;
    return {
      r: Number.parseInt(r! + r!, 16),
      g: Number.parseInt(g! + g!, 16),
      b: Number.parseInt(b! + b!, 16),
    };
  }
  const long = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/.exec(trimmed);
  if (long) {
    const [, r, g, b] = long;
    return { r: Number.parseInt(r!, 16), g: Number.parseInt(g!, 16), b: Number.parseInt(b!, 16) };
  }
  throw new ShotlistError("cannot_make_locally", `"${text}" is not a colour (use #rrggbb)`, {
    status: 422,
  });
}

export function toHex(colour: Rgb): string {
  const hex = (value: number): string => Math.round(value).toString(16).padStart(2, "0");
  return `#${hex(colour.r)}${hex(colour.g)}${hex(colour.b)}`;
}

/** Relative luminance on the 0–255 scale (ITU-R BT.709 weights on the encoded values). */
export function luma(colour: Rgb): number {
  return 0.2126 * colour.r + 0.7152 * colour.g + 0.0722 * colour.b;
}

/** Mixes `colour` towards `target` by `amount` (0–1). */
export function mix(colour: Rgb, target: Rgb, amount: number): Rgb {
  return {
    r: colour.r + (target.r - colour.r) * amount,
    g: colour.g + (target.g - colour.g) * amount,
    b: colour.b + (target.b - colour.b) * amount,
  };
}

/** mulberry32: a small seeded PRNG. Renders must be byte-identical, so no Math.random. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Escapes text for SVG/XML content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}
