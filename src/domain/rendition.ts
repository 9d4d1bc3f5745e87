import { createHmac, timingSafeEqual } from "node:crypto";
import { canonicalJson, sha256Hex } from "./canonical.js";
import { ShotlistError } from "./errors.js";

/** Output formats a rendition may ask for; `auto` negotiates from `Accept`. */
export const RENDITION_FORMATS = ["auto", "avif", "webp", "jpeg", "png"] as const;
export type RenditionFormat = (typeof RENDITION_FORMATS)[number];
export type ConcreteFormat = Exclude<RenditionFormat, "auto">;
export const RENDITION_FITS = ["cover", "contain", "inside"] as const;
export type RenditionFit = (typeof RENDITION_FITS)[number];

/** Largest side in CSS pixels a request may ask for, and in device pixels after `dpr`. */
export const MAX_RENDITION_SIDE = 4096;
export const MAX_RENDITION_DEVICE_SIDE = 8192;
/** Bumped when the rendition pipeline changes its bytes, so cached renditions are not reused. */
export const RENDITION_VERSION = 1;

/** What a request asks for, validated; sizes are CSS pixels before `dpr`. */
export interface RenditionRequest {
  w?: number;
  h?: number;
  fit?: RenditionFit;
  dpr?: number;
  q?: number;
  format?: RenditionFormat;
}

/** What the pipeline makes: device pixels, one concrete format, every default filled in. */
export interface RenditionSpec {
  widthPx: number | null;
  heightPx: number | null;
  fit: RenditionFit;
  quality: number;
  format: ConcreteFormat;
}

/**
 * Named presets: the option sets anyone may ask for without a signature. `format: auto` so a
 * browser gets AVIF or WebP when it says it can read them.
 */
export const RENDITION_PRESETS: Readonly<Record<string, RenditionRequest>> = {
  thumb: { w: 200, h: 200, fit: "cover", format: "auto" },
  pdp: { w: 800, h: 800, fit: "inside", format: "auto" },
  zoom: { w: 2000, h: 2000, fit: "inside", format: "auto" },
};

export const RENDITION_OPTION_NAMES = ["w", "h", "fit", "dpr", "q", "format"] as const;

const DEFAULT_QUALITY: Readonly<Record<ConcreteFormat, number>> = {
  avif: 50,
  webp: 80,
  jpeg: 82,
  png: 100,
};

function invalid(detail: string, option: string): ShotlistError {
  return new ShotlistError("invalid_rendition_option", detail, { extra: { option } });
}

function integerIn(name: string, raw: string, min: number, max: number): number {
  if (!/^[0-9]{1,6}$/.test(raw)) throw invalid(`${name} must be a whole number`, name);
  const value = Number(raw);
  if (value < min || value > max)
    throw invalid(`${name} must be between ${min} and ${max}, got ${value}`, name);
  return value;
}

/**
 * Validates rendition query options before anything else sees them (ipx's VNumber/VEnum): an
 * unknown option, a repeated one or a value out of range is a 400 with a stable code.
 */
export function parseRenditionQuery(query: Readonly<Record<string, unknown>>): {
  options: RenditionRequest;
  signature: string | undefined;
} {
  const options: RenditionRequest = {};
  let signature: string | undefined;
  for (const [name, value] of Object.entries(query)) {
    if (typeof value !== "string") throw invalid(`option ${name} is given more than once`, name);
    if (name === "s") {
      signature = value;
      continue;
    }
    switch (name) {
      case "w":
        options.w = integerIn("w", value, 1, MAX_RENDITION_SIDE);
        break;
      case "h":
        options.h = integerIn("h", value, 1, MAX_RENDITION_SIDE);
        break;
      case "q":
        options.q = integerIn("q", value, 1, 100);
        break;
      case "dpr": {
        if (!/^[0-9](\.[0-9]{1,2})?$/.test(value))
          throw invalid("dpr must be a number from 1 to 4 with at most two decimals", "dpr");
        const dpr = Number(value);
        if (dpr < 1 || dpr > 4) throw invalid(`dpr must be between 1 and 4, got ${dpr}`, "dpr");
        options.dpr = dpr;
        break;
      }
      case "fit":
        if (!(RENDITION_FITS as readonly string[]).includes(value))
          throw invalid(`fit must be one of ${RENDITION_FITS.join(", ")}`, "fit");
        options.fit = value as RenditionFit;
        break;
      case "format":
        if (!(RENDITION_FORMATS as readonly string[]).includes(value))
          throw invalid(`format must be one of ${RENDITION_FORMATS.join(", ")}`, "format");
        options.format = value as RenditionFormat;
        break;
      default:
        throw invalid(
          `unknown option ${JSON.stringify(name.slice(0, 32))}; options are ${RENDITION_OPTION_NAMES.join(", ")}, s`,
          name.slice(0, 32),
        );
    }
  }
  return { options, signature };
}

/** `w=…&h=…` in a fixed order with defaults left out: the same options always sign the same. */
export function canonicalRenditionQuery(options: RenditionRequest): string {
  const parts: string[] = [];
  for (const name of RENDITION_OPTION_NAMES) {
    const value = options[name];
    if (value !== undefined) parts.push(`${name}=${value}`);
  }
  return parts.join("&");
}

/** The path a signature covers: `/i/{sku}/{slot}[/{preset}]?{canonical options}`. */
export function renditionSigningInput(
  sku: string,
  slot: string,
  preset: string | undefined,
  options: RenditionRequest,
): string {
  const path = `/i/${sku}/${slot}${preset ? `/${preset}` : ""}`;
  return `${path}?${canonicalRenditionQuery(options)}`;
}

function hmac(key: string, input: string): Buffer {
  return createHmac("sha256", key).update(input).digest();
}

/**
 * A signed on-demand URL path (imgproxy-style): `s` is the base64url HMAC-SHA256, keyed with
 * `SHOTLIST_SIGNING_KEY`, of the path and its canonical options. Prefix the public URL yourself.
 *
 *   signRenditionUrl(key, { sku: "MUG-1", slot: "hero", options: { w: 640, format: "webp" } })
 *   // → "/i/MUG-1/hero?w=640&format=webp&s=…"
 */
export function signRenditionUrl(
  key: string,
  target: { sku: string; slot: string; preset?: string; options: RenditionRequest },
): string {
  const input = renditionSigningInput(target.sku, target.slot, target.preset, target.options);
  const signature = hmac(key, input).toString("base64url");
  const query = canonicalRenditionQuery(target.options);
  return `${input.split("?")[0]}?${query ? `${query}&` : ""}s=${signature}`;
}

/** Constant-time check of a request's `s`; false for a missing key, a missing or wrong `s`. */
export function verifyRenditionSignature(
  key: string | undefined,
  input: string,
  signature: string | undefined,
): boolean {
  if (!key || !signature || !/^[A-Za-z0-9_-]{43}$/.test(signature)) return false;
  const expected = hmac(key, input);
  const given = Buffer.from(signature, "base64url");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** `format=auto`: AVIF, then WebP, then JPEG, by what `Accept` admits (q=0 means "not"). */
export function negotiateFormat(accept: string | undefined): ConcreteFormat {
  const admitted = new Set<string>();
  for (const entry of (accept ?? "").split(",")) {
    const [type = "", ...params] = entry.split(";").map((part) => part.trim().toLowerCase());
    const refused = params.some((param) => /^q=0(\.0*)?$/.test(param));
    if (!refused) admitted.add(type);
  }
  if (admitted.has("image/avif")) return "avif";
  if (admitted.has("image/webp")) return "webp";
  return "jpeg";
}

/** Fills in defaults and resolves `auto`; device pixels are capped (a 4096-px dpr-4 ask is 8192). */
export function resolveRendition(
  options: RenditionRequest,
  accept: string | undefined,
): RenditionSpec {
  const format =
    options.format === undefined || options.format === "auto"
      ? negotiateFormat(accept)
      : options.format;
  const dpr = options.dpr ?? 1;
  const device = (side: number | undefined) =>
    side === undefined ? null : Math.min(MAX_RENDITION_DEVICE_SIDE, Math.round(side * dpr));
  return {
    widthPx: device(options.w),
    heightPx: device(options.h),
    fit: options.fit ?? (options.w !== undefined && options.h !== undefined ? "cover" : "inside"),
    quality: options.q ?? DEFAULT_QUALITY[format],
    format,
  };
}

/** Content address of a rendition: the source's SHA-256 plus the resolved spec. */
export function renditionHash(sourceSha256: string, spec: RenditionSpec): string {
  return sha256Hex(canonicalJson({ source: sourceSha256, spec, version: RENDITION_VERSION }));
}

export const FORMAT_EXT: Readonly<Record<ConcreteFormat, string>> = {
  avif: "avif",
  webp: "webp",
  jpeg: "jpg",
  png: "png",
};

export const FORMAT_MIME: Readonly<Record<ConcreteFormat, string>> = {
  avif: "image/avif",
  webp: "image/webp",
  jpeg: "image/jpeg",
  png: "image/png",
};
