import sharp, { type OverlayOptions } from "sharp";
import { ShotlistError } from "../domain/errors.js";
import type { Rgb } from "./colors.js";
import { alphaBoundingBox, extractBox } from "./crop.js";
import type { RgbaImage } from "./decode.js";

/** A layer at a position on the frame. */
export interface PlacedLayer {
  image: RgbaImage;
  left: number;
  top: number;
}

/**
 * The output canvas as layers, kept apart until the end so a shadow can go under the subject:
 * background (a colour or a drawn scene), then shadow, then subject.
 */
export interface Frame {
  width: number;
  height: number;
  background: { kind: "colour"; colour: Rgb } | { kind: "image"; image: RgbaImage };
  shadow?: PlacedLayer;
  subject?: PlacedLayer;
  /** max(subjectWidth / frameWidth, subjectHeight / frameHeight) as placed. */
  fill?: number;
}

/** Alpha above which a pixel counts as subject when measuring it for placement. */
const PLACEMENT_MIN_ALPHA = 8;

/**
 * The subject's visible box (transparent padding ignored) scaled so that
 * max(width / frameWidth, height / frameHeight) = `fill`, resized with alpha premultiplied.
 */
export async function scaleSubject(
  subject: RgbaImage,
  frameWidth: number,
  frameHeight: number,
  fill: number,
  maxHeightShare = 1,
): Promise<RgbaImage> {
  if (!(fill > 0 && fill <= 1)) {
    throw new ShotlistError("cannot_make_locally", `fill must be in (0, 1], got ${fill}`, {
      status: 422,
    });
  }
  const box = alphaBoundingBox(subject, PLACEMENT_MIN_ALPHA);
  if (!box) {
    throw new ShotlistError("cannot_make_locally", "no subject was found to place", {
      status: 422,
    });
  }
  const tight = extractBox(subject, box);
  const scale = Math.min(
    fill / Math.max(box.width / frameWidth, box.height / frameHeight),
    (maxHeightShare * frameHeight) / box.height,
  );
  const width = Math.max(1, Math.min(frameWidth, Math.round(box.width * scale)));
  const height = Math.max(1, Math.min(frameHeight, Math.round(box.height * scale)));
  const data = await sharp(tight.data, {
    raw: { width: box.width, height: box.height, channels: 4 },
  })
    .resize({ width, height, fit: "fill", kernel: scale < 1 ? "lanczos3" : "mitchell" })
    .raw()
    .toBuffer();
  return { data, width, height, channels: 4 };
}

/** The place step: the subject centred on a `background` canvas of the output size at `fill`. */
export async function placeSubject(
  subject: RgbaImage,
  options: { width: number; height: number; fill: number; background: Rgb },
): Promise<Frame> {
  const scaled = await scaleSubject(subject, options.width, options.height, options.fill);
  return {
    width: options.width,
    height: options.height,
    background: { kind: "colour", colour: options.background },
    subject: {
      image: scaled,
      left: Math.floor((options.width - scaled.width) / 2),
      top: Math.floor((options.height - scaled.height) / 2),
    },
    fill: Math.max(scaled.width / options.width, scaled.height / options.height),
  };
}

/** Flattens the frame's layers (background, shadow, subject) to opaque RGB pixels. */
export async function flattenFrame(
  frame: Frame,
): Promise<{ data: Buffer; width: number; height: number; channels: 3 }> {
  const base =
    frame.background.kind === "colour"
      ? sharp({
          create: {
            width: frame.width,
            height: frame.height,
            channels: 3,
            background: frame.background.colour,
          },
        })
      : sharp(frame.background.image.data, {
          raw: { width: frame.width, height: frame.height, channels: 4 },
        });
  const layers: OverlayOptions[] = [];
  for (const layer of [frame.shadow, frame.subject]) {
    if (!layer) continue;
    const clipped = clipLayer(layer, frame.width, frame.height);
    if (!clipped) continue;
    layers.push({
      input: clipped.image.data,
      raw: { width: clipped.image.width, height: clipped.image.height, channels: 4 },
      left: clipped.left,
      top: clipped.top,
    });
  }
  const data = await base.composite(layers).removeAlpha().raw().toBuffer();
  return { data, width: frame.width, height: frame.height, channels: 3 };
}

/**
 * The part of a layer that lies inside the frame. libvips refuses an overlay larger than its
 * base, and a blurred shadow under a wide subject can reach past the frame's edges.
 */
export function clipLayer(
  layer: PlacedLayer,
  width: number,
  height: number,
): PlacedLayer | undefined {
  const left = Math.max(0, layer.left);
  const top = Math.max(0, layer.top);
  const right = Math.min(width, layer.left + layer.image.width);
  const bottom = Math.min(height, layer.top + layer.image.height);
  if (right <= left || bottom <= top) return undefined;
  if (
    left === layer.left &&
    top === layer.top &&
    right - left === layer.image.width &&
    bottom - top === layer.image.height
  ) {
    return layer;
  }
  const clippedWidth = right - left;
  const clippedHeight = bottom - top;
  const data = Buffer.alloc(clippedWidth * clippedHeight * 4);
  const sourceStride = layer.image.width * 4;
  for (let row = 0; row < clippedHeight; row++) {
    const sourceStart = (top - layer.top + row) * sourceStride + (left - layer.left) * 4;
    layer.image.data.copy(
      data,
      row * clippedWidth * 4,
      sourceStart,
      sourceStart + clippedWidth * 4,
    );
  }
  return { image: { data, width: clippedWidth, height: clippedHeight, channels: 4 }, left, top };
}
