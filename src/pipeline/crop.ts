import { ShotlistError } from "../domain/errors.js";
import type { RgbaImage } from "./decode.js";

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Bounding box of pixels whose alpha exceeds `minAlpha`, or undefined when there are none. */
export function alphaBoundingBox(image: RgbaImage, minAlpha = 0): Box | undefined {
  const { data, width, height } = image;
  let left = width;
  let right = -1;
  let top = height;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    let rowLeft = -1;
    let rowRight = -1;
    const row = y * width * 4;
    for (let x = 0; x < width; x++) {
      if (data[row + x * 4 + 3]! > minAlpha) {
        if (rowLeft < 0) rowLeft = x;
        rowRight = x;
      }
    }
    if (rowLeft < 0) continue;
    if (top > y) top = y;
    bottom = y;
    if (rowLeft < left) left = rowLeft;
    if (rowRight > right) right = rowRight;
  }
  if (bottom < 0) return undefined;
  return { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/** Copies `box` out of `image`; parts of the box outside the image are transparent. */
export function extractBox(image: RgbaImage, box: Box): RgbaImage {
  const data = Buffer.alloc(box.width * box.height * 4);
  const fromX = Math.max(0, box.left);
  const toX = Math.min(image.width, box.left + box.width);
  if (toX > fromX) {
    for (let y = 0; y < box.height; y++) {
      const sourceY = box.top + y;
      if (sourceY < 0 || sourceY >= image.height) continue;
      image.data.copy(
        data,
        (y * box.width + (fromX - box.left)) * 4,
        (sourceY * image.width + fromX) * 4,
        (sourceY * image.width + toX) * 4,
      );
    }
  }
  return { data, width: box.width, height: box.height, channels: 4 };
}

/**
 * The crop step: the subject's bounding box (alpha > 0) plus `padding` (a fraction of the box's
 * own width and height, each side; default 0), padded with transparency where the photo ends.
 */
export function cropToSubject(image: RgbaImage, options: { padding?: number } = {}): RgbaImage {
  const box = alphaBoundingBox(image, 0);
  if (!box) {
    throw new ShotlistError("cannot_make_locally", "no subject was found against the backdrop", {
      status: 422,
    });
  }
  const padding = Math.max(0, options.padding ?? 0);
  const padX = Math.round(box.width * padding);
  const padY = Math.round(box.height * padding);
  return extractBox(image, {
    left: box.left - padX,
    top: box.top - padY,
    width: box.width + 2 * padX,
    height: box.height + 2 * padY,
  });
}
