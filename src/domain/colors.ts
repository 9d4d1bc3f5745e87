/**
 * Colour names merchandisers actually type into a PIM, mapped to sRGB hex. A variant may also
 * carry an explicit `hex` attribute, which wins. Unknown names get no swatch rather than a guess.
 */
const NAMED_COLORS: Readonly<Record<string, string>> = {
  black: "#111111",
  white: "#f7f7f5",
  ivory: "#fffff0",
  cream: "#f3ead3",
  sand: "#d8c3a0",
  beige: "#d9c7a7",
  tan: "#c8a27a",
  brown: "#6b4226",
  chocolate: "#5a3520",
  camel: "#c19a6b",
  grey: "#8a8d91",
  gray: "#8a8d91",
  charcoal: "#36393d",
  silver: "#c0c0c0",
  navy: "#1f2a44",
  blue: "#2f5fb3",
  sky: "#8ec5e8",
  teal: "#1b7f7a",
  green: "#2e7d32",
  forest: "#228b22",
  olive: "#6b6b2a",
  sage: "#9caf88",
  mint: "#a8e6cf",
  yellow: "#f2c230",
  mustard: "#d4a017",
  orange: "#e8772e",
  rust: "#b7472a",
  red: "#c62828",
  burgundy: "#800020",
  pink: "#f2a0b6",
  blush: "#e8b4b8",
  purple: "#6a3d9a",
  lavender: "#b8a6d9",
  terracotta: "#c8643b",
};

const HEX_PATTERN = /^#[0-9a-f]{6}$/;

/** `#rrggbb` for an explicit hex or a known colour name; undefined when neither. */
export function resolveColor(name: string | undefined, hex?: string): string | undefined {
  const explicit = hex?.trim().toLowerCase();
  if (explicit && HEX_PATTERN.test(explicit)) return explicit;
  if (!name) return undefined;
  const key = name.trim().toLowerCase();
  if (HEX_PATTERN.test(key)) return key;
  return NAMED_COLORS[key];
}
