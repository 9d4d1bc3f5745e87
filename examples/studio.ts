/**
 * Draws synthetic studio product photos with a known answer: every photo comes with the exact
 * subject mask it was drawn from, so background removal, crop-to-subject and fill-ratio checks
 * can be tested against ground truth instead of eyeballed.
 *
 * Objects are SVG (rendered by sharp/librsvg) in a 1000×1000 design space, shaded with
 * gradients, folds and highlights, and placed on a studio backdrop (plain or seamless sweep)
 * with a soft contact shadow, vignetting and seeded sensor noise. The mask is rendered from the
 * same geometry in white on black, so it never contains the shadow or the backdrop.
 *
 * Deterministic: the same spec gives byte-identical JPEG and mask (seeded PRNG, no Math.random).
 */
import sharp from "sharp";
import { seededRandom } from "../src/pipeline/colors.js";

export const PRODUCT_KINDS = [
  "tshirt",
  "hoodie",
  "sneaker",
  "mug",
  "vase",
  "lamp",
  "tote",
  "backpack",
  "cap",
] as const;

export type ProductKind = (typeof PRODUCT_KINDS)[number];

export interface StudioSpec {
  kind: ProductKind;
  /** Main colour of the product, `#rrggbb`. */
  color: string;
  /** `plain`: flat light grey; `seamless`: light wall sweeping into a slightly darker floor. */
  backdrop: "plain" | "seamless";
  /** 0..3: front, three-quarter, side, back/detail — each a different drawing or pose. */
  view: number;
  width: number;
  height: number;
  seed: number;
  /** Soft contact shadow on the backdrop (never part of the mask). Default true. */
  shadow?: boolean;
  /** Sensor noise sigma in 0–255 units. Default 3. */
  noise?: number;
}

export interface StudioPhoto {
  jpeg: Buffer;
  /** Raw 8-bit single channel, width*height bytes: 255 subject, 0 backdrop, anti-aliased edge. */
  mask: Buffer;
  width: number;
  height: number;
}

/**
 * Backdrop tones (sRGB grey levels) the pipeline can expect around the subject. Plain: a soft
 * light falloff between the two values; seamless: wall at the top, floor sweep at the bottom.
 * Vignetting darkens the extreme corners by up to ~12% more.
 */
export const BACKDROP_TONES = {
  plain: { centre: 242, edge: 232 },
  seamless: { wall: 240, floor: 218 },
} as const;

/** JPEG quality of the drawn photos: what a photographer's export typically uses. */
export const STUDIO_JPEG_QUALITY = 90;

const DESIGN_SIZE = 1000;

export async function drawStudioPhoto(spec: StudioSpec): Promise<StudioPhoto> {
  validateSpec(spec);
  const { width, height } = spec;
  const random = seededRandom(spec.seed);
  const placement = placeSubject(spec, random);
  const drawing = drawKind(spec.kind, spec.view, parseHex(spec.color));
  const backdrop = drawBackdrop(spec, random);
  const tint = random() * 0.06 - 0.03;

  const photoSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<defs>${backdrop.defs}${drawing.defs}${SHARED_FILTERS}
<clipPath id="subject" clipPathUnits="userSpaceOnUse">${silhouetteElements(drawing.silhouette, "clip")}</clipPath>
<radialGradient id="vignette" cx="0.5" cy="0.48" r="0.75">
<stop offset="0.55" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity="0.13"/>
</radialGradient>
</defs>
${backdrop.body}
<g transform="${placement}">
${spec.shadow === false ? "" : drawShadow(drawing)}
<g clip-path="url(#subject)">${drawing.paint}</g>
</g>
<rect width="${width}" height="${height}" fill="url(#vignette)"/>
</svg>`;

  const maskSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect width="${width}" height="${height}" fill="#000"/>
<g transform="${placement}">${silhouetteElements(drawing.silhouette, "mask")}</g>
</svg>`;

  const [rendered, mask] = await Promise.all([
    sharp(Buffer.from(photoSvg)).removeAlpha().raw().toBuffer(),
    sharp(Buffer.from(maskSvg)).removeAlpha().extractChannel(0).raw().toBuffer(),
  ]);
  addSensorNoise(rendered, spec.noise ?? 3, tint, random);
  const jpeg = await sharp(rendered, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: STUDIO_JPEG_QUALITY })
    .toBuffer();
  return { jpeg, mask, width, height };
}

function validateSpec(spec: StudioSpec): void {
  if (!PRODUCT_KINDS.includes(spec.kind)) throw new Error(`unknown product kind ${spec.kind}`);
  if (!/^#[0-9a-fA-F]{6}$/.test(spec.color)) throw new Error(`color must be #rrggbb`);
  if (!Number.isInteger(spec.view) || spec.view < 0 || spec.view > 3) {
    throw new Error(`view must be an integer 0..3, got ${spec.view}`);
  }
  for (const [name, value] of [
    ["width", spec.width],
    ["height", spec.height],
  ] as const) {
    // Below ~64 px the drawings' details alias into mush; above 8k the SVG render is slow.
    if (!Number.isInteger(value) || value < 64 || value > 8192) {
      throw new Error(`${name} must be an integer 64..8192, got ${value}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Randomness, colour

type Rgb = readonly [number, number, number];

function parseHex(hex: string): Rgb {
  const value = Number.parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

function toHex(rgb: Rgb): string {
  return `#${rgb
    .map((c) =>
      Math.round(Math.min(255, Math.max(0, c)))
        .toString(16)
        .padStart(2, "0"),
    )
    .join("")}`;
}

/** Mixes towards white (amount > 0) or black (amount < 0). */
function shadeHex(rgb: Rgb, amount: number): string {
  const target = amount > 0 ? 255 : 0;
  const t = Math.abs(amount);
  return toHex([
    rgb[0] + (target - rgb[0]) * t,
    rgb[1] + (target - rgb[1]) * t,
    rgb[2] + (target - rgb[2]) * t,
  ]);
}

// ---------------------------------------------------------------------------------------------
// Placement, backdrop, shadow, noise

/** Design space → pixels, with a little seeded jitter so a catalogue is not 50 identical framings. */
function placeSubject(spec: StudioSpec, random: () => number): string {
  const scale = (Math.min(spec.width, spec.height) / DESIGN_SIZE) * (0.97 + random() * 0.06);
  const dx = (random() - 0.5) * 0.03 * spec.width;
  const dy = (random() - 0.5) * 0.02 * spec.height;
  // Flat-laid garments are never perfectly square to the camera; standing objects are.
  const flat = spec.kind === "tshirt" || spec.kind === "hoodie";
  const rotateDeg = flat ? (random() - 0.5) * 3 : 0;
  const cx = spec.width / 2 + dx;
  const cy = spec.height / 2 + dy;
  return `translate(${f(cx)} ${f(cy)}) rotate(${f(rotateDeg)}) scale(${scale.toFixed(5)}) translate(-500 -500)`;
}

function drawBackdrop(spec: StudioSpec, random: () => number): { defs: string; body: string } {
  const { width, height } = spec;
  const warm = Math.round(random() * 3);
  const grey = (level: number): string => toHex([level + warm, level + warm * 0.5, level]);
  if (spec.backdrop === "plain") {
    const { centre, edge } = BACKDROP_TONES.plain;
    const lightX = 0.35 + random() * 0.3;
    return {
      defs: `<radialGradient id="backdrop" cx="${f(lightX)}" cy="0.35" r="0.9">
<stop offset="0" stop-color="${grey(centre)}"/><stop offset="1" stop-color="${grey(edge)}"/></radialGradient>`,
      body: `<rect width="${width}" height="${height}" fill="url(#backdrop)"/>`,
    };
  }
  const { wall, floor } = BACKDROP_TONES.seamless;
  // The sweep: wall flat-ish, a smooth S-curve through the bend, then the floor falls off.
  const bend = 0.62 + random() * 0.08;
  return {
    defs: `<linearGradient id="backdrop" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="${grey(wall - 3)}"/>
<stop offset="${f(bend - 0.25)}" stop-color="${grey(wall)}"/>
<stop offset="${f(bend)}" stop-color="${grey(Math.round((wall + floor) / 2) + 4)}"/>
<stop offset="${f(bend + 0.15)}" stop-color="${grey(floor + 4)}"/>
<stop offset="1" stop-color="${grey(floor)}"/></linearGradient>
<radialGradient id="backdrop-light" cx="0.5" cy="0.3" r="0.7">
<stop offset="0" stop-color="#fff" stop-opacity="0.10"/><stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient>`,
    body: `<rect width="${width}" height="${height}" fill="url(#backdrop)"/><rect width="${width}" height="${height}" fill="url(#backdrop-light)"/>`,
  };
}

const SHARED_FILTERS = `
<filter id="blur-shadow" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="22"/></filter>
<filter id="blur-contact" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="7"/></filter>
<filter id="blur-soft" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="14"/></filter>
<filter id="blur-fine" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="4"/></filter>`;

function drawShadow(drawing: Drawing): string {
  const ground = drawing.ground;
  if (ground === "drop") {
    // Flat lay: the garment lifts a little off the table, so the shadow is its own silhouette,
    // offset away from the key light and heavily blurred.
    return `<g transform="translate(10 16)" opacity="0.28" filter="url(#blur-shadow)">${silhouetteElements(drawing.silhouette, "shadow")}</g>`;
  }
  const { x0, x1, y } = ground;
  const cx = (x0 + x1) / 2;
  const rx = (x1 - x0) / 2;
  return `<ellipse cx="${f(cx + 12)}" cy="${f(y + 6)}" rx="${f(rx * 1.15)}" ry="${f(Math.max(14, rx * 0.16))}" fill="#000" opacity="0.16" filter="url(#blur-shadow)"/>
<ellipse cx="${f(cx + 3)}" cy="${f(y)}" rx="${f(rx * 0.98)}" ry="${f(Math.max(5, rx * 0.05))}" fill="#000" opacity="0.42" filter="url(#blur-contact)"/>`;
}

/**
 * Gaussian-ish noise (sum of three uniforms) added to the raw render. Mostly luminance, with a
 * little chroma, as a demosaiced sensor gives; also a per-photo white-balance tint.
 */
function addSensorNoise(rgb: Buffer, sigma: number, tint: number, random: () => number): void {
  // The sum of three U(-1,1) has variance 1, so scaling by sigma gives the requested sigma.
  const gauss = (): number => random() + random() + random() - 1.5;
  const lumaSigma = sigma * 2 * 0.9;
  const chromaSigma = sigma * 2 * 0.35;
  const tintR = tint * 6;
  const tintB = -tint * 6;
  for (let i = 0; i + 2 < rgb.length; i += 3) {
    const luma = sigma > 0 ? gauss() * lumaSigma : 0;
    const r = rgb[i]! + luma + tintR + (sigma > 0 ? gauss() * chromaSigma : 0);
    const g = rgb[i + 1]! + luma;
    const b = rgb[i + 2]! + luma + tintB + (sigma > 0 ? gauss() * chromaSigma : 0);
    rgb[i] = r < 0 ? 0 : r > 255 ? 255 : Math.round(r);
    rgb[i + 1] = g < 0 ? 0 : g > 255 ? 255 : Math.round(g);
    rgb[i + 2] = b < 0 ? 0 : b > 255 ? 255 : Math.round(b);
  }
}

function f(value: number): string {
  return Number(value.toFixed(2)).toString();
}

// ---------------------------------------------------------------------------------------------
// Drawings

/** One filled outline of the subject; holes (handle loops, cap strap) use the even-odd rule. */
interface Outline {
  d: string;
  evenOdd?: boolean;
}

interface Drawing {
  defs: string;
  /** The subject's geometry: the clip of the paint, the mask, the flat-lay shadow. */
  silhouette: Outline[];
  /** Shaded rendering, clipped to the silhouette, so the photo and the mask agree exactly. */
  paint: string;
  /** Where the object stands (contact shadow), or "drop" for a flat lay. */
  ground: { x0: number; x1: number; y: number } | "drop";
}

function silhouetteElements(outlines: Outline[], use: "clip" | "mask" | "shadow"): string {
  const fill = use === "mask" ? "#fff" : "#000";
  return outlines
    .map((o) => {
      const rule = o.evenOdd ? "evenodd" : "nonzero";
      const ruleAttr = use === "clip" ? `clip-rule="${rule}"` : `fill-rule="${rule}"`;
      return `<path d="${o.d}" fill="${fill}" ${ruleAttr}/>`;
    })
    .join("");
}

/** Shared gradients of one material colour: cylinder, diagonal, vertical. */
function materialDefs(id: string, rgb: Rgb): string {
  return `<linearGradient id="${id}-cyl" x1="0" y1="0" x2="1" y2="0">
<stop offset="0" stop-color="${shadeHex(rgb, -0.45)}"/><stop offset="0.18" stop-color="${shadeHex(rgb, -0.12)}"/>
<stop offset="0.36" stop-color="${shadeHex(rgb, 0.18)}"/><stop offset="0.5" stop-color="${shadeHex(rgb, 0.05)}"/>
<stop offset="0.82" stop-color="${shadeHex(rgb, -0.25)}"/><stop offset="1" stop-color="${shadeHex(rgb, -0.5)}"/>
</linearGradient>
<linearGradient id="${id}-diag" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="${shadeHex(rgb, 0.14)}"/><stop offset="0.45" stop-color="${shadeHex(rgb, 0)}"/>
<stop offset="1" stop-color="${shadeHex(rgb, -0.3)}"/></linearGradient>
<linearGradient id="${id}-vert" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="${shadeHex(rgb, 0.1)}"/><stop offset="1" stop-color="${shadeHex(rgb, -0.28)}"/></linearGradient>`;
}

/** Soft dark fold or crease: a blurred stroke inside the silhouette. */
function fold(d: string, widthUnits: number, opacity: number): string {
  return `<path d="${d}" fill="none" stroke="#000" stroke-width="${widthUnits}" stroke-linecap="round" opacity="${opacity}" filter="url(#blur-soft)"/>`;
}

function highlight(d: string, widthUnits: number, opacity: number): string {
  return `<path d="${d}" fill="none" stroke="#fff" stroke-width="${widthUnits}" stroke-linecap="round" opacity="${opacity}" filter="url(#blur-soft)"/>`;
}

/** A sewn seam: a thin darker line with a faint light line beside it. */
function seam(d: string, opacity = 0.3): string {
  return `<path d="${d}" fill="none" stroke="#000" stroke-width="2.5" opacity="${opacity}"/><path d="${d}" fill="none" stroke="#fff" stroke-width="1.5" opacity="${opacity * 0.5}" transform="translate(0 3)"/>`;
}

/** Catmull-Rom through the points as cubic Béziers (the first point is the current point). */
function smoothCurve(points: ReadonlyArray<readonly [number, number]>): string {
  const segments: string[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const p0 = points[Math.max(0, i - 1)]!;
    const p1 = points[i]!;
    const p2 = points[i + 1]!;
    const p3 = points[Math.min(points.length - 1, i + 2)]!;
    const c1 = [p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6];
    const c2 = [p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6];
    segments.push(`C${f(c1[0]!)},${f(c1[1]!)} ${f(c2[0]!)},${f(c2[1]!)} ${f(p2[0])},${f(p2[1])}`);
  }
  return segments.join(" ");
}

function mirrorX(d: string): string {
  // Mirrors absolute "x,y" pairs of a path around x = 500 (all drawings use absolute commands).
  return d.replace(/(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)/g, (_m, x: string, y: string) => {
    return `${f(1000 - Number(x))},${y}`;
  });
}

/** Compresses x towards `about` (three-quarter views foreshorten the width). */
function squeezeX(d: string, factor: number, about = 500): string {
  return d.replace(/(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)/g, (_m, x: string, y: string) => {
    return `${f(about + (Number(x) - about) * factor)},${y}`;
  });
}

function drawKind(kind: ProductKind, view: number, rgb: Rgb): Drawing {
  switch (kind) {
    case "tshirt":
      return drawGarment(view, rgb, false);
    case "hoodie":
      return drawGarment(view, rgb, true);
    case "sneaker":
      return drawSneaker(view, rgb);
    case "mug":
      return drawMug(view, rgb);
    case "vase":
      return drawVase(view, rgb);
    case "lamp":
      return drawLamp(view, rgb);
    case "tote":
      return drawTote(view, rgb);
    case "backpack":
      return drawBackpack(view, rgb);
    case "cap":
      return drawCap(view, rgb);
  }
}

// --- Garments: tee and hoodie, flat lay. Views: front, three-quarter fold, side-folded, back.

function drawGarment(view: number, rgb: Rgb, hooded: boolean): Drawing {
  const defs = materialDefs("fabric", rgb);
  const sleeveEnd = hooded ? 700 : 420;
  const cuffL = hooded ? "M205,690 L245,735 L300,705 L262,660 Z" : "";
  // Front outline (left half mirrored) in design units; long sleeves angle down for the hoodie.
  const front = hooded
    ? `M415,215 Q500,${view === 3 ? 240 : 285} 585,215 L690,240 Q760,270 790,380 L835,${sleeveEnd} L760,${sleeveEnd + 30} L705,440 L700,835 Q500,850 300,835 L295,440 L240,${sleeveEnd + 30} L165,${sleeveEnd} L210,380 Q240,270 310,240 Z`
    : `M420,195 Q500,${view === 3 ? 215 : 250} 580,195 L685,220 L815,330 L755,${sleeveEnd} L680,365 L680,825 Q500,835 320,825 L320,365 L245,${sleeveEnd} L185,330 L315,220 Z`;
  let body = front;
  if (view === 1) body = squeezeX(front, 0.86, 520);
  if (view === 2) {
    // Ghost-mannequin profile facing right: a narrow body with the near sleeve in front.
    body = hooded
      ? "M455,215 Q500,205 548,215 Q580,255 605,310 Q628,430 620,560 L625,835 Q505,850 388,835 L390,560 Q378,430 400,310 Q420,250 455,215 Z"
      : "M455,200 Q500,192 548,200 Q575,240 600,300 Q622,420 615,560 L618,825 Q505,838 392,825 L395,560 Q385,420 405,300 Q425,235 455,200 Z";
  }
  const silhouette: Outline[] = [{ d: body }];
  const parts: string[] = [`<path d="${body}" fill="url(#fabric-diag)"/>`];
  if (view === 2) {
    const sleeve = hooded
      ? "M470,250 Q545,240 590,280 L625,700 Q590,720 545,712 L500,360 Z"
      : "M470,235 Q540,225 585,260 L640,420 Q590,445 535,440 L480,330 Z";
    silhouette.push({ d: sleeve });
    parts.push(
      fold(hooded ? "M505,300 L550,700" : "M500,260 L545,430", 26, 0.22),
      `<path d="${sleeve}" fill="url(#fabric-vert)"/>`,
      seam(hooded ? "M545,700 L622,690" : "M538,425 L635,408", 0.3),
      highlight(hooded ? "M540,300 L585,650" : "M535,270 L580,400", 18, 0.15),
    );
    if (hooded) {
      const hood = "M455,222 Q365,235 352,150 Q380,98 470,110 Q540,125 548,215 Q500,205 455,222 Z";
      silhouette.push({ d: hood });
      parts.push(
        `<path d="${hood}" fill="url(#fabric-vert)"/>`,
        fold("M380,150 Q430,200 470,215", 14, 0.25),
      );
    } else {
      parts.push(
        `<path d="M455,200 Q500,192 548,200" fill="none" stroke="${shadeHex(rgb, -0.2)}" stroke-width="18"/>`,
      );
    }
  }
  if (hooded && view !== 2) {
    // The hood lies above the neckline (front) or spreads over the back.
    const hood =
      view === 3
        ? "M360,250 Q350,120 500,110 Q650,120 640,250 Q600,420 500,430 Q400,420 360,250 Z"
        : "M375,230 Q360,135 500,125 Q640,135 625,230 Q600,265 585,215 Q500,290 415,215 Q400,265 375,230 Z";
    const hoodD = view === 1 ? squeezeX(hood, 0.86, 520) : hood;
    silhouette.push({ d: hoodD });
    parts.push(`<path d="${hoodD}" fill="url(#fabric-vert)"/>`);
    if (view !== 3) {
      parts.push(
        `<path d="${view === 1 ? squeezeX("M420,200 Q500,150 580,200 Q500,260 420,200 Z", 0.86, 520) : "M420,200 Q500,150 580,200 Q500,260 420,200 Z"}" fill="${shadeHex(rgb, -0.55)}" opacity="0.85"/>`,
      );
      // Drawstrings.
      const strings = "M470,250 L462,400 M530,250 L538,400";
      parts.push(
        `<path d="${view === 1 ? squeezeX(strings, 0.86, 520) : strings}" stroke="${shadeHex(rgb, 0.55)}" stroke-width="7" fill="none" stroke-linecap="round"/>`,
      );
      const pocket = "M370,620 L630,620 L670,760 L330,760 Z";
      const pocketD = view === 1 ? squeezeX(pocket, 0.86, 520) : pocket;
      parts.push(`<path d="${pocketD}" fill="${shadeHex(rgb, -0.06)}"/>`, seam(pocketD, 0.35));
    } else {
      parts.push(fold("M500,140 L500,410", 10, 0.25));
    }
    parts.push(
      `<path d="M300,815 L700,815" stroke="#000" stroke-width="36" opacity="0.08"/>`,
      seam("M300,800 L700,800"),
    );
    if (cuffL && view !== 1) {
      parts.push(
        `<path d="M180,690 L245,710" stroke="#000" stroke-width="22" opacity="0.1"/>`,
        `<path d="M820,690 L755,710" stroke="#000" stroke-width="22" opacity="0.1"/>`,
      );
    }
  } else if (!hooded && view !== 2) {
    // Ribbed collar.
    const collar = view === 3 ? "M420,195 Q500,215 580,195" : "M420,195 Q500,250 580,195";
    const collarD = view === 1 ? squeezeX(collar, 0.86, 520) : collar;
    parts.push(
      `<path d="${collarD}" fill="none" stroke="${shadeHex(rgb, -0.2)}" stroke-width="22"/>`,
      `<path d="${collarD}" fill="none" stroke="#000" stroke-width="3" opacity="0.3" transform="translate(0 12)"/>`,
    );
    if (view === 3) {
      // A woven neck label is the tell of a back view.
      parts.push(
        `<rect x="480" y="212" width="40" height="26" fill="${shadeHex(rgb, 0.6)}" opacity="0.9"/>`,
      );
    }
    if (view !== 2) {
      const hem = view === 1 ? squeezeX("M322,805 L678,805", 0.86, 520) : "M322,805 L678,805";
      parts.push(seam(hem));
      const sleeves =
        view === 1
          ? squeezeX("M260,400 L200,345 M740,400 L800,345", 0.86, 520)
          : "M260,400 L200,345 M740,400 L800,345";
      parts.push(seam(sleeves, 0.25));
    }
  }
  // Folds and creases that make cloth read as cloth.
  parts.push(
    fold("M360,420 Q420,560 380,760", 18, 0.16),
    fold("M620,380 Q600,520 650,700", 14, 0.14),
    fold("M320,370 L300,440", 20, 0.2),
    fold("M680,370 L700,440", 20, 0.2),
    highlight("M450,330 Q520,480 470,700", 40, 0.12),
    highlight("M560,300 Q600,360 580,420", 24, 0.1),
  );
  return { defs, silhouette, paint: parts.join("\n"), ground: "drop" };
}

// --- Sneaker. Views: lateral side, three-quarter, medial side (mirrored), heel/back.

function drawSneaker(view: number, rgb: Rgb): Drawing {
  const defs = `${materialDefs("upper", rgb)}
<linearGradient id="sole" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="#fbfbf8"/><stop offset="0.6" stop-color="#e9e8e3"/><stop offset="1" stop-color="#c9c8c2"/></linearGradient>`;
  if (view === 3) {
    // Heel view: narrow, tall, symmetric.
    const upper = "M420,360 Q500,330 580,360 L610,700 Q612,740 600,760 L400,760 Q388,740 390,700 Z";
    const sole = "M385,750 L615,750 Q625,800 600,820 L400,820 Q375,800 385,750 Z";
    return {
      defs,
      silhouette: [{ d: upper }, { d: sole }],
      paint: [
        `<path d="${upper}" fill="url(#upper-cyl)"/>`,
        `<path d="M470,340 Q500,330 530,340 L535,560 L465,560 Z" fill="${shadeHex(rgb, -0.25)}"/>`,
        `<rect x="475" y="600" width="50" height="90" rx="8" fill="#f4f4f0" opacity="0.9"/>`,
        `<path d="${sole}" fill="url(#sole)"/>`,
        seam("M395,770 L605,770", 0.2),
        highlight("M440,400 L430,680", 16, 0.2),
      ].join("\n"),
      ground: { x0: 390, x1: 610, y: 820 },
    };
  }
  // Low-top profile, toe to the right: heel counter, collar, ankle opening, tongue, vamp, toe.
  const upperSide =
    "M200,738 C186,700 186,620 212,575 Q226,548 262,546 Q318,550 352,580 Q380,598 408,572 L440,528 Q456,510 476,512 Q492,516 494,530 L500,545 Q590,600 700,628 Q800,650 846,690 Q872,715 862,738 Z";
  const soleSide =
    "M172,752 Q172,728 200,728 L835,728 Q870,728 878,752 Q880,790 840,795 L205,795 Q172,795 172,770 Z";
  const transform = (d: string): string => {
    if (view === 1) return squeezeX(d, 0.72, 470);
    if (view === 2) return mirrorX(d);
    return d;
  };
  const upper = transform(upperSide);
  const sole = transform(soleSide);
  const laces: string[] = [];
  for (let t = 0; t < 4; t++) {
    const ex = 494 + 44 * t;
    const ey = 572 + 20 * t;
    laces.push(
      `<path d="${transform(`M${ex},${ey} L${ex + 16},${ey - 26}`)}" stroke="#f2f2ee" stroke-width="10" stroke-linecap="round"/>`,
      `<circle cx="${transform(`${ex},${ey}`).split(",")[0]}" cy="${ey}" r="6" fill="${shadeHex(rgb, -0.6)}"/>`,
    );
  }
  const paint = [
    `<path d="${upper}" fill="url(#upper-vert)"/>`,
    `<path d="${transform("M200,738 C186,700 186,620 212,575 Q240,590 290,640 L305,738 Z")}" fill="${shadeHex(rgb, -0.16)}"/>`,
    `<path d="${transform("M700,628 Q800,650 846,690 Q872,715 862,738 L715,738 Q690,690 700,628 Z")}" fill="${shadeHex(rgb, -0.07)}"/>`,
    seam(transform("M700,628 Q690,690 715,738"), 0.25),
    `<path d="${transform("M212,575 Q226,548 262,546 Q318,550 352,580 Q380,598 408,572")}" fill="none" stroke="${shadeHex(rgb, -0.3)}" stroke-width="16"/>`,
    `<path d="${transform("M300,700 Q450,655 720,615 Q520,700 330,722 Z")}" fill="#f6f6f2" opacity="0.92"/>`,
    ...laces,
    seam(transform("M205,716 L850,716"), 0.22),
    `<path d="${sole}" fill="url(#sole)"/>`,
    `<path d="${transform("M178,775 L874,775")}" stroke="#000" stroke-width="4" opacity="0.12"/>`,
    highlight(transform("M250,600 Q330,570 380,600"), 18, 0.25),
    highlight(transform("M560,610 Q700,650 820,690"), 24, 0.2),
    fold(transform("M420,640 Q520,690 600,700"), 14, 0.12),
  ];
  if (view === 1) {
    // Three-quarter: the ankle opening is visible from above.
    paint.push(`<ellipse cx="369" cy="568" rx="40" ry="13" fill="${shadeHex(rgb, -0.65)}"/>`);
  }
  const ground =
    view === 1
      ? { x0: 255, x1: 764, y: 795 }
      : view === 2
        ? { x0: 122, x1: 828, y: 795 }
        : { x0: 172, x1: 878, y: 795 };
  return {
    defs,
    silhouette: [{ d: upper }, { d: sole }],
    paint: paint.join("\n"),
    ground,
  };
}

// --- Mug. Views: handle right, three-quarter from above, handle left, top-down-ish detail.

function drawMug(view: number, rgb: Rgb): Drawing {
  const defs = `${materialDefs("glaze", rgb)}
<radialGradient id="mug-inside" cx="0.5" cy="0.3" r="0.7">
<stop offset="0" stop-color="${shadeHex(rgb, -0.55)}"/><stop offset="1" stop-color="${shadeHex(rgb, -0.25)}"/></radialGradient>`;
  const left = 320;
  const right = 640;
  const top = view === 1 || view === 3 ? 380 : 370;
  const bottom = 760;
  const rimRy = view === 3 ? 85 : view === 1 ? 55 : 30;
  const cx = (left + right) / 2;
  const rx = (right - left) / 2;
  const body = `M${left},${top} L${left},${bottom - 10} Q${left},${bottom + rimRy * 0.6} ${cx},${bottom + rimRy * 0.6} Q${right},${bottom + rimRy * 0.6} ${right},${bottom - 10} L${right},${top} A${rx},${rimRy} 0 0 0 ${left},${top} Z`;
  const handleSide = view === 2 ? -1 : 1;
  const hx = handleSide === 1 ? right : left;
  const ho = handleSide * (view === 1 ? 95 : 125);
  const handle = `M${hx},${top + 60} C${hx + ho * 1.1},${top + 40} ${hx + ho * 1.2},${top + 280} ${hx},${top + 300} L${hx},${top + 250} C${hx + ho * 0.7},${top + 230} ${hx + ho * 0.65},${top + 100} ${hx},${top + 110} Z`;
  const silhouette: Outline[] = [{ d: body }];
  if (view !== 3) silhouette.push({ d: handle });
  const paint = [
    view !== 3 ? `<path d="${handle}" fill="url(#glaze-vert)"/>` : "",
    `<path d="${body}" fill="url(#glaze-cyl)"/>`,
    `<ellipse cx="${cx}" cy="${top}" rx="${rx - 8}" ry="${rimRy - 5}" fill="url(#mug-inside)"/>`,
    `<ellipse cx="${cx}" cy="${top}" rx="${rx - 4}" ry="${rimRy - 2}" fill="none" stroke="${shadeHex(rgb, 0.35)}" stroke-width="6"/>`,
    highlight(`M${left + 85},${top + 60} L${left + 85},${bottom - 40}`, 26, 0.45),
    highlight(`M${left + 120},${top + 90} L${left + 120},${bottom - 80}`, 8, 0.5),
    fold(`M${left + 10},${bottom} Q${cx},${bottom + rimRy} ${right - 10},${bottom}`, 16, 0.2),
  ];
  if (view === 3) {
    // Detail view: a printed band near the base, which only this pose shows.
    paint.push(
      `<path d="M${left},${bottom - 90} Q${cx},${bottom - 90 + rimRy} ${right},${bottom - 90}" fill="none" stroke="${shadeHex(rgb, 0.55)}" stroke-width="14"/>`,
    );
  }
  const xs = view === 2 ? [left - 120, right] : view === 3 ? [left, right] : [left, right + 90];
  return {
    defs,
    silhouette,
    paint: paint.join("\n"),
    ground: { x0: xs[0]!, x1: xs[1]!, y: bottom + rimRy * 0.6 - 4 },
  };
}

// --- Vase: a lathed profile. Views differ by camera height and, in the detail, crop.

function drawVase(view: number, rgb: Rgb): Drawing {
  const defs = materialDefs("ceramic", rgb);
  // Half-profile as (halfWidth, y) from the mouth to the foot.
  const profile: Array<[number, number]> = [
    [70, 150],
    [62, 200],
    [70, 260],
    [150, 380],
    [185, 480],
    [175, 600],
    [140, 720],
    [110, 830],
    [115, 860],
  ];
  const detail = view === 3;
  // The detail view is a closer crop that runs down towards the bottom edge of the frame.
  const scale = detail ? 1.15 : view === 2 ? 0.92 : 1;
  const vy = (y: number): number => 500 + (y - 500) * scale;
  const vx = (dx: number): number => 500 + dx * scale;
  const widen = view === 1 ? 1.08 : view === 2 ? 0.95 : 1;
  const pts = profile.map(([w, y]) => [w * widen * scale, vy(y)] as const);
  const mouthRy = view === 1 ? 22 : view === 2 ? 8 : 15;
  const top = pts[0]!;
  const foot = pts[pts.length - 1]!;
  const rightSide = smoothCurve(pts.map(([w, y]) => [500 + w, y] as const));
  const leftSide = smoothCurve([...pts].reverse().map(([w, y]) => [500 - w, y] as const));
  const body = `M${f(500 + top[0])},${f(top[1])} ${rightSide} Q500,${f(foot[1] + mouthRy)} ${f(500 - foot[0])},${f(foot[1])} ${leftSide} A${f(top[0])},${mouthRy} 0 0 1 ${f(500 + top[0])},${f(top[1])} Z`;
  const paint = [
    `<path d="${body}" fill="url(#ceramic-cyl)"/>`,
    `<ellipse cx="500" cy="${f(top[1])}" rx="${f(top[0] - 6)}" ry="${Math.max(3, mouthRy - 4)}" fill="${shadeHex(rgb, -0.7)}"/>`,
    highlight(
      `M${f(vx(-70))},${f(vy(420))} Q${f(vx(-100))},${f(vy(520))} ${f(vx(-75))},${f(vy(700))}`,
      34,
      0.4,
    ),
    highlight(`M${f(vx(-55))},${f(vy(470))} L${f(vx(-60))},${f(vy(560))}`, 10, 0.55),
    fold(`M${f(vx(-150))},${f(vy(490))} Q500,${f(vy(520))} ${f(vx(150))},${f(vy(490))}`, 12, 0.1),
  ];
  if (detail) {
    // Glaze drips only read in a close-up.
    for (const dx of [-70, -20, 60]) {
      paint.push(
        `<path d="M${f(vx(dx))},${f(vy(280))} L${f(vx(dx))},${f(vy(360 + ((dx + 100) % 70)))}" stroke="${shadeHex(rgb, 0.25)}" stroke-width="10" stroke-linecap="round" opacity="0.5"/>`,
      );
    }
  }
  return {
    defs,
    silhouette: [{ d: body }],
    paint: paint.join("\n"),
    ground: { x0: 500 - foot[0], x1: 500 + foot[0], y: foot[1] + mouthRy * 0.6 },
  };
}

// --- Table lamp: shade in the product colour, ceramic base, brass stem.

function drawLamp(view: number, rgb: Rgb): Drawing {
  const defs = `${materialDefs("shade", rgb)}${materialDefs("base", rgb)}
<linearGradient id="brass" x1="0" y1="0" x2="1" y2="0">
<stop offset="0" stop-color="#6e5320"/><stop offset="0.4" stop-color="#e6c66f"/><stop offset="1" stop-color="#7a5d24"/></linearGradient>
<radialGradient id="glow" cx="0.5" cy="1" r="0.8"><stop offset="0" stop-color="#fff6d8" stop-opacity="0.55"/><stop offset="1" stop-color="#fff6d8" stop-opacity="0"/></radialGradient>`;
  const ry = view === 1 ? 26 : view === 3 ? 40 : 16;
  const topW = view === 2 ? 105 : 120;
  const botW = view === 2 ? 195 : 215;
  const shadeTop = 150;
  const shadeBot = 430;
  const shade = `M${500 - topW},${shadeTop} A${topW},${ry * 0.6} 0 0 1 ${500 + topW},${shadeTop} L${500 + botW},${shadeBot} A${botW},${ry} 0 0 1 ${500 - botW},${shadeBot} Z`;
  const stem = `M488,${shadeBot} L512,${shadeBot} L512,600 L488,600 Z`;
  // Base: a gourd in front/side, a squat drum in three-quarter, a ribbed cylinder in detail.
  const base =
    view === 1
      ? "M400,600 L600,600 L610,850 Q500,880 390,850 Z"
      : view === 3
        ? "M420,590 L580,590 Q600,700 590,850 Q500,872 410,850 Q400,700 420,590 Z"
        : "M470,590 L530,590 Q620,660 610,760 Q600,845 540,858 L460,858 Q400,845 390,760 Q380,660 470,590 Z";
  const paint = [
    `<path d="${stem}" fill="url(#brass)"/>`,
    `<path d="${base}" fill="url(#base-cyl)"/>`,
    highlight("M445,650 Q430,740 450,830", 20, 0.4),
    `<path d="${shade}" fill="url(#shade-cyl)"/>`,
    `<path d="${shade}" fill="url(#glow)"/>`,
    // Linen texture: faint vertical ribs.
    ...[-150, -100, -50, 0, 50, 100, 150].map(
      (dx) =>
        `<path d="M${500 + dx * (topW / 215)},${shadeTop + 5} L${500 + dx * (botW / 215)},${shadeBot}" stroke="#000" stroke-width="3" opacity="0.06"/>`,
    ),
    `<ellipse cx="500" cy="${shadeBot}" rx="${botW - 2}" ry="${ry}" fill="none" stroke="${shadeHex(rgb, -0.4)}" stroke-width="8"/>`,
  ];
  if (view === 3) {
    paint.push(
      ...[640, 690, 740, 790].map(
        (y) =>
          `<path d="M410,${y} Q500,${y + 12} 592,${y}" stroke="#000" stroke-width="5" opacity="0.15" fill="none"/>`,
      ),
    );
  }
  const baseX = view === 1 ? [390, 610] : view === 3 ? [405, 595] : [385, 615];
  return {
    defs,
    silhouette: [{ d: shade }, { d: stem }, { d: base }],
    paint: paint.join("\n"),
    ground: { x0: baseX[0]!, x1: baseX[1]!, y: 860 },
  };
}

// --- Tote: canvas bag with two loop handles. Views: front, three-quarter, side gusset, back.

function drawTote(view: number, rgb: Rgb): Drawing {
  const defs = materialDefs("canvas", rgb);
  const handleRing = (cx: number, w: number): string =>
    `M${cx - w},420 C${cx - w},180 ${cx + w},180 ${cx + w},420 L${cx + w - 28},420 C${cx + w - 28},225 ${cx - w + 28},225 ${cx - w + 28},420 Z`;
  if (view === 2) {
    // Side: only the gusset and a handle seen edge-on.
    const gusset = "M430,420 L570,420 L590,840 L410,840 Z";
    const handleEdge = "M485,430 C470,260 530,200 515,430 L505,430 C515,250 480,280 495,430 Z";
    return {
      defs,
      silhouette: [{ d: gusset }, { d: handleEdge }],
      paint: [
        `<path d="${handleEdge}" fill="${shadeHex(rgb, -0.2)}"/>`,
        `<path d="${gusset}" fill="url(#canvas-cyl)"/>`,
        fold("M500,440 L500,830", 22, 0.22),
        seam("M430,450 L570,450"),
      ].join("\n"),
      ground: { x0: 410, x1: 590, y: 840 },
    };
  }
  const squeeze = view === 1 ? 0.82 : 1;
  const t = (d: string): string => (squeeze === 1 ? d : squeezeX(d, squeeze, 480));
  const bodyFront = "M300,420 L700,420 L725,850 L275,850 Z";
  const bodyD = t(bodyFront);
  const handles = [t(handleRing(400, 60)), t(handleRing(600, 60))];
  const silhouette: Outline[] = [{ d: bodyD }, ...handles.map((d) => ({ d, evenOdd: true }))];
  const paint = [
    ...handles.map((d) => `<path d="${d}" fill="${shadeHex(rgb, -0.12)}" fill-rule="evenodd"/>`),
    `<path d="${bodyD}" fill="url(#canvas-diag)"/>`,
    seam(t("M302,450 L698,450")),
    fold(t("M380,470 Q360,650 400,830"), 20, 0.15),
    fold(t("M640,470 Q660,640 620,830"), 16, 0.13),
    highlight(t("M480,500 Q520,650 490,800"), 50, 0.1),
  ];
  if (view === 1) {
    // Three-quarter: the side gusset shows on the right.
    const gusset = "M660,420 L760,440 L790,840 L703,850 Z";
    silhouette.push({ d: gusset });
    paint.push(`<path d="${gusset}" fill="${shadeHex(rgb, -0.3)}"/>`);
  }
  if (view === 3) {
    // Back: a patch pocket.
    paint.push(
      `<rect x="400" y="560" width="200" height="160" fill="${shadeHex(rgb, -0.08)}"/>`,
      seam("M400,560 L600,560 L600,720 L400,720 Z", 0.25),
    );
  } else {
    // Front: a printed logo block.
    paint.push(
      `<rect x="${view === 1 ? 430 : 440}" y="590" width="${view === 1 ? 100 : 120}" height="60" fill="${shadeHex(rgb, 0.6)}" opacity="0.8"/>`,
    );
  }
  const xs = view === 1 ? [255, 790] : [275, 725];
  return { defs, silhouette, paint: paint.join("\n"), ground: { x0: xs[0]!, x1: xs[1]!, y: 850 } };
}

// --- Backpack. Views: front, three-quarter, side profile, back with straps.

function drawBackpack(view: number, rgb: Rgb): Drawing {
  const defs = materialDefs("nylon", rgb);
  const loop = "M470,225 C470,170 530,170 530,225 L515,225 C515,190 485,190 485,225 Z";
  if (view === 2) {
    const profile =
      "M430,240 Q520,215 580,260 Q630,400 620,820 Q560,850 430,840 Q395,520 430,240 Z";
    const strap = "M420,290 Q340,450 380,760 L410,760 Q380,470 440,300 Z";
    return {
      defs,
      silhouette: [{ d: profile }, { d: strap }, { d: loop, evenOdd: true }],
      paint: [
        `<path d="${loop}" fill="${shadeHex(rgb, -0.35)}" fill-rule="evenodd"/>`,
        `<path d="${profile}" fill="url(#nylon-cyl)"/>`,
        `<path d="${strap}" fill="${shadeHex(rgb, -0.4)}"/>`,
        `<path d="M560,520 Q615,540 612,700 L565,700 Z" fill="${shadeHex(rgb, -0.12)}"/>`,
        seam("M455,260 Q540,300 590,560", 0.3),
        highlight("M500,300 Q540,500 520,780", 30, 0.14),
      ].join("\n"),
      ground: { x0: 420, x1: 625, y: 842 },
    };
  }
  const squeeze = view === 1 ? 0.85 : 1;
  const t = (d: string): string => (squeeze === 1 ? d : squeezeX(d, squeeze, 480));
  const body = t(
    "M330,320 Q330,225 500,225 Q670,225 670,320 L690,800 Q690,845 640,845 L360,845 Q310,845 310,800 Z",
  );
  const silhouette: Outline[] = [{ d: body }, { d: t(loop), evenOdd: true }];
  const paint = [
    `<path d="${t(loop)}" fill="${shadeHex(rgb, -0.35)}" fill-rule="evenodd"/>`,
    `<path d="${body}" fill="url(#nylon-diag)"/>`,
  ];
  if (view === 3) {
    // Back panel: padded straps, mesh panel.
    const strapL = "M390,260 Q360,500 400,780 L450,780 Q420,500 440,260 Z";
    const strapR = mirrorX(strapL);
    paint.push(
      `<path d="M360,300 L640,300 L650,760 L350,760 Z" fill="${shadeHex(rgb, -0.2)}"/>`,
      `<path d="${strapL}" fill="${shadeHex(rgb, -0.5)}"/>`,
      `<path d="${strapR}" fill="${shadeHex(rgb, -0.5)}"/>`,
      seam("M395,300 L430,300 M570,300 L605,300", 0.4),
    );
  } else {
    // Front: zipped pocket with a pull, and a top zip arc.
    const pocket = t(
      "M370,560 L630,560 Q650,560 650,590 L655,800 L345,800 L350,590 Q350,560 370,560 Z",
    );
    paint.push(
      `<path d="${pocket}" fill="${shadeHex(rgb, -0.08)}"/>`,
      seam(pocket, 0.35),
      `<path d="${t("M380,590 L620,590")}" stroke="#1a1a1a" stroke-width="6" opacity="0.7"/>`,
      `<rect x="${view === 1 ? 565 : 600}" y="584" width="14" height="38" rx="4" fill="#c9c9c9"/>`,
      `<path d="${t("M345,330 Q500,250 655,330")}" stroke="#1a1a1a" stroke-width="6" fill="none" opacity="0.6"/>`,
    );
    if (view === 1) {
      // Drawn under the body so the two meet without a seam of backdrop between them.
      const side = "M560,232 Q690,250 712,340 L738,805 Q735,845 690,848 L620,848 L620,300 Z";
      silhouette.push({ d: side });
      paint.splice(1, 0, `<path d="${side}" fill="${shadeHex(rgb, -0.35)}"/>`);
    }
  }
  paint.push(
    highlight(t("M400,300 Q380,450 400,540"), 34, 0.16),
    fold(t("M330,520 Q500,545 670,520"), 14, 0.12),
  );
  const xs = view === 1 ? [290, 735] : [310, 690];
  return { defs, silhouette, paint: paint.join("\n"), ground: { x0: xs[0]!, x1: xs[1]!, y: 845 } };
}

// --- Cap. Views: front, three-quarter, side profile, back with the strap opening.

function drawCap(view: number, rgb: Rgb): Drawing {
  const defs = materialDefs("twill", rgb);
  const brimColor = shadeHex(rgb, -0.1);
  if (view === 2) {
    const crown = "M270,640 Q270,350 480,340 Q640,340 680,520 L700,640 Z";
    const brim = "M640,610 Q760,600 860,660 Q800,690 680,675 L640,660 Z";
    return {
      defs,
      silhouette: [{ d: crown }, { d: brim }],
      paint: [
        `<path d="${crown}" fill="url(#twill-diag)"/>`,
        `<path d="${brim}" fill="${brimColor}"/>`,
        seam("M480,340 Q500,500 470,640", 0.3),
        seam("M270,630 L690,630", 0.25),
        `<circle cx="475" cy="342" r="13" fill="${shadeHex(rgb, -0.2)}"/>`,
        highlight("M340,520 Q380,420 470,380", 30, 0.2),
      ].join("\n"),
      ground: { x0: 270, x1: 860, y: 680 },
    };
  }
  const crown = "M250,650 Q250,330 500,320 Q750,330 750,650 Z";
  const silhouette: Outline[] = [];
  const paint: string[] = [];
  if (view === 3) {
    // Back: strap opening above the snapback strap (a hole in the mask).
    const backCrown = `${crown} M430,650 Q430,560 500,555 Q570,560 570,650 Z`;
    silhouette.push({ d: backCrown, evenOdd: true });
    paint.push(
      `<path d="${backCrown}" fill="url(#twill-cyl)" fill-rule="evenodd"/>`,
      `<rect x="410" y="615" width="180" height="22" rx="6" fill="#1c1c1c" opacity="0.85"/>`,
      seam("M500,322 L500,555", 0.3),
      seam("M330,420 Q380,560 420,645", 0.2),
      seam("M670,420 Q620,560 580,645", 0.2),
    );
  } else {
    const squeeze = view === 1 ? 0.9 : 1;
    const crownD = view === 1 ? squeezeX(crown, squeeze, 470) : crown;
    const brim =
      view === 1
        ? "M300,630 Q480,600 700,640 Q740,700 640,730 Q470,760 330,700 Q280,670 300,630 Z"
        : "M240,640 Q500,610 760,640 Q790,700 700,735 Q500,775 300,735 Q210,700 240,640 Z";
    silhouette.push({ d: crownD }, { d: brim });
    paint.push(
      `<path d="${crownD}" fill="url(#twill-cyl)"/>`,
      seam(view === 1 ? "M470,322 Q460,500 470,650" : "M500,322 L500,640", 0.3),
      seam(view === 1 ? "M340,420 Q370,560 380,650" : "M350,380 Q380,520 390,645", 0.2),
      `<path d="${brim}" fill="${brimColor}"/>`,
      seam(view === 1 ? "M320,660 Q470,640 690,665" : "M260,665 Q500,640 740,665", 0.25),
      `<path d="${view === 1 ? "M330,700 Q470,745 640,725" : "M300,720 Q500,760 700,720"}" stroke="#000" stroke-width="14" opacity="0.15" fill="none" filter="url(#blur-fine)"/>`,
      // Embroidered logo on the front panel.
      `<rect x="${view === 1 ? 420 : 450}" y="460" width="${view === 1 ? 90 : 100}" height="55" rx="10" fill="${shadeHex(rgb, 0.65)}" opacity="0.85"/>`,
    );
  }
  paint.push(
    `<circle cx="${view === 1 ? 470 : 500}" cy="324" r="13" fill="${shadeHex(rgb, -0.2)}"/>`,
    highlight("M330,520 Q360,400 450,360", 30, 0.2),
  );
  const ground = view === 3 ? { x0: 250, x1: 750, y: 652 } : { x0: 240, x1: 770, y: 745 };
  return { defs, silhouette, paint: paint.join("\n"), ground };
}
