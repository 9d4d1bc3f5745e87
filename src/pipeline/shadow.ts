import sharp from "sharp";
import { ShotlistError } from "../domain/errors.js";
import type { RgbaImage } from "./decode.js";
import type { Frame, PlacedLayer } from "./place.js";

/** Share of the subject's height, from its lowest opaque row up, taken as its base (the foot). */
const BASE_SHARE = 0.06;

export interface ShadowOptions {
  /** Darkness at the shadow's centre, 0–1. */
  opacity: number;
  /** Softness in px at output size: the Gaussian's sigma is half of it. */
  blur: number;
}

/**
 * The shadow step: a soft contact shadow, a flattened ellipse as wide as the subject's base,
 * centred a little above the base so most of it sits behind the subject and only a soft rim
 * shows (light enough that a hero's 1% border stays white and its fill barely moves).
 */
export async function addContactShadow(frame: Frame, options: ShadowOptions): Promise<Frame> {
  if (!frame.subject) {
    throw new ShotlistError(
      "cannot_make_locally",
      "the shadow step needs a placed subject: put place or scene before it",
      { status: 422 },
    );
  }
  const shadow = await drawContactShadow(frame.subject, options);
  return { ...frame, shadow };
}

export async function drawContactShadow(
  subject: PlacedLayer,
  options: ShadowOptions,
): Promise<PlacedLayer | undefined> {
  const opacity = Math.min(1, Math.max(0, options.opacity));
  const base = measureBase(subject.image);
  if (!base || opacity === 0) return undefined;
  const sigma = Math.max(0.3, options.blur / 2);
  const rx = Math.max(2, (base.right - base.left + 1) * 0.55);
  const ry = Math.max(1.5, rx * 0.09);
  const marginPx = Math.ceil(3 * sigma + 2);
  const width = Math.ceil(2 * rx + 2 * marginPx);
  const height = Math.ceil(2 * ry + 2 * marginPx);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><ellipse cx="${width / 2}" cy="${height / 2}" rx="${rx.toFixed(2)}" ry="${ry.toFixed(2)}" fill="#000" fill-opacity="${opacity.toFixed(3)}"/></svg>`;
  const data = await sharp(Buffer.from(svg)).blur(sigma).ensureAlpha().raw().toBuffer();
  const image: RgbaImage = { data, width, height, channels: 4 };
  const centreX = subject.left + (base.left + base.right + 1) / 2;
  const centreY = subject.top + base.bottom + 1 - ry * 0.6;
  return {
    image,
    left: Math.round(centreX - width / 2),
    top: Math.round(centreY - height / 2),
  };
}

/** Horizontal extent of the subject's lowest BASE_SHARE of rows, and its lowest row. */
function measureBase(
  image: RgbaImage,
): { left: number; right: number; bottom: number } | undefined {
  const { data, width, height } = image;
  let bottom = -1;
  for (let y = height - 1; y >= 0 && bottom < 0; y--) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4 + 3]! >= 128) {
        bottom = y;
        break;
      }
    }
  }
  if (bottom < 0) return undefined;
  const top = Math.max(0, bottom - Math.max(1, Math.round(height * BASE_SHARE)));
  let left = width;
  let right = -1;
  for (let y = top; y <= bottom; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4 + 3]! >= 128) {
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  return { left, right, bottom };
}
