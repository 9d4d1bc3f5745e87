import sharp from "sharp";
import type { CheckResult, CheckSpec } from "../domain/checks.js";
import type { OutputFormat } from "../domain/recipe.js";
import { DEFAULT_MAX_PIXELS, decodeImage, type RawImage } from "./decode.js";

/** A pixel is subject when some channel is further than this below white (0–255). */
export const SUBJECT_THRESHOLD = 20;
/** Border width for the white-border check, as a share of each side (marketplace rule). */
const BORDER_SHARE = 0.01;
/** Side of the grid of mean luminances compared by notInput. */
const COMPARE_SIDE_PX = 32;
/** Mean absolute grey difference (0–255) below which two images are "the same picture". */
const SAME_PICTURE_MAX_DIFFERENCE = 2;
/**
 * The fill and blank checks visit every 2nd pixel of every 2nd row: a quarter of the work,
 * the subject box exact to 1 px (0.06% of a 1,600 px side, against fill bounds that are
 * percent-wide) and the luminance spread of a 640,000-pixel sample. The white border is
 * checked on every pixel, and the whole file is decoded at full size.
 */
const CHECK_SCAN_STRIDE = 2;
/** Half-width of the blur check's re-blur: a 9-tap box, as in Crete et al. (2007). */
const BLUR_REBLUR_RADIUS_PX = 4;
/**
 * The blur check measures every 4th row and every 4th column: on the sample catalogue's heroes,
 * their blurred and their upscaled versions it agrees with every line to 0.013 (every 8th line:
 * 0.027), at a quarter of the cost (docs/checks.md).
 */
const BLUR_STRIDE = 4;
/** The subject's box is grown by this much for the blur check: the re-blur's reach, twice. */
const BLUR_BOX_MARGIN_PX = 2 * (2 * BLUR_REBLUR_RADIUS_PX + 1);

export interface SubjectFill {
  /** max(boxWidth / width, boxHeight / height), 0 when there is no subject. */
  fill: number;
  box?: { left: number; top: number; width: number; height: number };
}

interface OnWhiteScan {
  /** Per row and per column: how many pixels are subject (see SUBJECT_THRESHOLD). */
  rowCounts: Uint32Array;
  columnCounts: Uint32Array;
  /** Sum and sum of squares of the luminance, alpha seen on white. */
  luminanceSum: number;
  luminanceSquares: number;
  /** Pixels visited, and the step between them along each axis. */
  samples: number;
  stride: number;
  /**
   * When asked for: the mean luminance (0–255, seen on white) of each cell of a
   * COMPARE_SIDE_PX square grid over the frame, row by row, from the same samples.
   */
  thumbnail?: Float64Array;
}

/**
 * One pass over an image as it would look on white: subject counts for the fill ratio and
 * luminance moments for the blank check, and (for notInput) a grid of mean luminances. Opaque
 * pixels take the integer path; only pixels with partial alpha are composited onto white first.
 * The luminance is summed as integers (×10,000 Rec. 709 weights) and scaled once per row: the
 * same moments as per-pixel float sums, without a division per pixel.
 */
function scanOnWhite(image: RawImage, stride = 1, withThumbnail = false): OnWhiteScan {
  const { width, height, channels } = image;
  const side = COMPARE_SIDE_PX;
  // Each row is walked in segments: one per grid column when a thumbnail is wanted (each
  // segment's sum goes to its cell once), else one for the whole row. A segment starts at the
  // first sampled x of its cell, so every sample lands in the cell of its own x.
  const segments = withThumbnail ? side : 1;
  const segmentStart = new Uint32Array(segments + 1);
  for (let cell = 0; cell <= segments; cell++) {
    const from = Math.ceil((cell * width) / segments);
    segmentStart[cell] = Math.min(width, Math.ceil(from / stride) * stride);
  }
  const cellSums = withThumbnail ? new Float64Array(side * side) : undefined;
  const cellCounts = withThumbnail ? new Uint32Array(side * side) : undefined;
  // A plain Uint8Array view: indexing a Buffer subclass is slower in V8's hot loops.
  const data = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.length);
  const rowCounts = new Uint32Array(height);
  const columnCounts = new Uint32Array(width);
  const limit = 255 - SUBJECT_THRESHOLD;
  const hasAlpha = channels === 2 || channels === 4;
  const grey = channels < 3;
  const alphaOffset = channels - 1;
  const greenOffset = grey ? 0 : 1;
  const blueOffset = grey ? 0 : 2;
  let luminanceSum = 0;
  let luminanceSquares = 0;
  let samples = 0;
  for (let y = 0; y < height; y += stride) {
    let rowCount = 0;
    // Integer sums in a double: exact while a row has fewer than ~1,380 samples, and within one
    // part in 10^15 beyond; scaled once per row.
    let rowSum = 0;
    let rowSquares = 0;
    const cellRow = Math.floor((y * side) / height) * side;
    for (let segment = 0; segment < segments; segment++) {
      const from = segmentStart[segment]!;
      const to = segmentStart[segment + 1]!;
      let segmentSum = 0;
      let p = (y * width + from) * channels;
      for (let x = from; x < to; x += stride, p += stride * channels) {
        let r = data[p]!;
        let g = data[p + greenOffset]!;
        let b = data[p + blueOffset]!;
        if (hasAlpha) {
          const alpha = data[p + alphaOffset]!;
          if (alpha !== 255) {
            // Seen on white: transparent pixels are white.
            r = (255 - ((255 - r) * alpha + 127) / 255) | 0;
            g = (255 - ((255 - g) * alpha + 127) / 255) | 0;
            b = (255 - ((255 - b) * alpha + 127) / 255) | 0;
          }
        }
        if (r < limit || g < limit || b < limit) {
          rowCount++;
          columnCounts[x]!++;
        }
        const luminance = 2126 * r + 7152 * g + 722 * b;
        segmentSum += luminance;
        rowSquares += luminance * luminance;
      }
      rowSum += segmentSum;
      if (cellSums && cellCounts) {
        cellSums[cellRow + segment] = cellSums[cellRow + segment]! + segmentSum;
        cellCounts[cellRow + segment]! += Math.ceil((to - from) / stride);
      }
    }
    rowCounts[y] = rowCount;
    samples += Math.ceil(width / stride);
    luminanceSum += rowSum / 10_000;
    luminanceSquares += rowSquares / 100_000_000;
  }
  const scan: OnWhiteScan = {
    rowCounts,
    columnCounts,
    luminanceSum,
    luminanceSquares,
    samples,
    stride,
  };
  if (cellSums && cellCounts) {
    scan.thumbnail = cellSums.map((sum, cell) => sum / 10_000 / Math.max(1, cellCounts[cell]!));
  }
  return scan;
}

/**
 * The blur measure of Crete et al. (2007), "The blur effect: perception and estimation with a
 * new no-reference perceptual blur metric": the image is blurred again with a 9-tap box along
 * each axis, and the measure is the share of its neighbour-to-neighbour variation that the
 * re-blur leaves in place — 0 for a sharp image (re-blurring removes much), towards 1 for an
 * image that was blurry already (there was little left to remove). The larger of the two axes'
 * values counts (an axis with no variation at all is left out). Measured on luminance (alpha
 * seen on white) inside `box` (the subject; the white around a product says nothing of its
 * focus). A sharp step edge scores 1/9; an image with no variation at all scores 1.
 */
export function measureBlur(
  image: RawImage,
  box: { left: number; top: number; width: number; height: number } = {
    left: 0,
    top: 0,
    width: image.width,
    height: image.height,
  },
  stride = 1,
): number {
  const { width: boxWidth, height: boxHeight } = box;
  if (boxWidth < 2 || boxHeight < 2) return 1;
  const radius = BLUR_REBLUR_RADIUS_PX;
  const line = new Int32Array(Math.max(boxWidth, boxHeight));
  // Along rows, every `stride`-th one.
  const rowMeasure = { variation: 0, removed: 0 };
  for (let y = 0; y < boxHeight; y += stride) {
    readLuminance(image, box.left, box.top + y, 1, 0, boxWidth, line);
    reblurLine(line, boxWidth, radius, rowMeasure);
  }
  // Along columns, every `stride`-th one.
  const columnMeasure = { variation: 0, removed: 0 };
  for (let x = 0; x < boxWidth; x += stride) {
    readLuminance(image, box.left + x, box.top, 0, 1, boxHeight, line);
    reblurLine(line, boxHeight, radius, columnMeasure);
  }
  // An axis along which nothing varies (a pattern of vertical stripes, along its columns) says
  // nothing about focus; with no variation along either, the image is flat: 1.
  const shares = [rowMeasure, columnMeasure]
    .filter((measure) => measure.variation > 0)
    .map((measure) => (measure.variation - measure.removed) / measure.variation);
  return shares.length === 0 ? 1 : Math.max(...shares);
}

/**
 * One line of Crete's measure: adds to `measure` the line's neighbour-to-neighbour variation
 * (Σ|F(i) − F(i−1)|) and the part of it a (2·radius + 1)-tap box re-blur B removes
 * (Σ max(0, |F(i) − F(i−1)| − |B(i) − B(i−1)|)); the measure is what is left, as a share.
 * Where the window is whole, B(i) − B(i−1) is (F(i + radius) − F(i − radius − 1)) / taps, so
 * the interior runs on integers scaled by `taps` (exact); the window's clipped ends near either
 * end of the line are averaged as they are.
 */
function reblurLine(
  line: Int32Array,
  length: number,
  radius: number,
  measure: { variation: number; removed: number },
): void {
  const taps = 2 * radius + 1;
  let variation = 0;
  // The removed variation, times `taps`.
  let removedTimesTaps = 0;
  const interiorEnd = length - radius - 1;
  for (let i = 1; i <= Math.min(radius, length - 1); i++) {
    variation += Math.abs(line[i]! - line[i - 1]!);
    removedTimesTaps += clippedRemovedTimesTaps(line, i, radius, length);
  }
  for (let i = radius + 1; i <= interiorEnd; i++) {
    const sharpStep = Math.abs(line[i]! - line[i - 1]!);
    variation += sharpStep;
    const excess = sharpStep * taps - Math.abs(line[i + radius]! - line[i - radius - 1]!);
    if (excess > 0) removedTimesTaps += excess;
  }
  for (let i = Math.max(radius + 1, interiorEnd + 1); i < length; i++) {
    variation += Math.abs(line[i]! - line[i - 1]!);
    removedTimesTaps += clippedRemovedTimesTaps(line, i, radius, length);
  }
  measure.variation += variation;
  measure.removed += removedTimesTaps / taps;
}

/** At step i near either end of the line, where the window is clipped: the removed part × taps. */
function clippedRemovedTimesTaps(
  line: Int32Array,
  i: number,
  radius: number,
  length: number,
): number {
  const sharpStep = Math.abs(line[i]! - line[i - 1]!);
  const blurredStep = Math.abs(
    windowMean(line, i, radius, length) - windowMean(line, i - 1, radius, length),
  );
  return sharpStep > blurredStep ? (sharpStep - blurredStep) * (2 * radius + 1) : 0;
}

/** The mean of `line` over [i − radius, i + radius], clipped to the line's ends. */
function windowMean(line: Int32Array, i: number, radius: number, length: number): number {
  const from = Math.max(0, i - radius);
  const to = Math.min(length - 1, i + radius);
  let sum = 0;
  for (let j = from; j <= to; j++) sum += line[j]!;
  return sum / (to - from + 1);
}

/**
 * Luminance (Rec. 709 weights ×10,000, so 0–2,550,000 in integers; alpha seen on white) of
 * `length` pixels from (x, y) in steps of (dx, dy), into `line`. The blur measure is a ratio of
 * sums of differences, so the scale cancels.
 */
function readLuminance(
  image: RawImage,
  x: number,
  y: number,
  dx: 0 | 1,
  dy: 0 | 1,
  length: number,
  line: Int32Array,
): void {
  const { width, channels } = image;
  const data = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.length);
  const hasAlpha = channels === 2 || channels === 4;
  const grey = channels < 3;
  const step = (dy * width + dx) * channels;
  const white = 2_550_000;
  let p = (y * width + x) * channels;
  // One loop per layout, so the hot loop holds no branch on it.
  if (!hasAlpha && !grey) {
    for (let i = 0; i < length; i++, p += step) {
      line[i] = 2126 * data[p]! + 7152 * data[p + 1]! + 722 * data[p + 2]!;
    }
  } else if (!hasAlpha) {
    for (let i = 0; i < length; i++, p += step) line[i] = 10_000 * data[p]!;
  } else {
    const alphaOffset = channels - 1;
    for (let i = 0; i < length; i++, p += step) {
      const r = data[p]!;
      const value = grey ? 10_000 * r : 2126 * r + 7152 * data[p + 1]! + 722 * data[p + 2]!;
      line[i] = white - Math.round(((white - value) * data[p + alphaOffset]!) / 255);
    }
  }
}

/**
 * Subject fill ratio on an image meant to be on white: the box of pixels that differ from
 * white by more than SUBJECT_THRESHOLD. A row or column counts only with at least
 * `minCount` such pixels, so a stray speck or JPEG ringing does not stretch the box.
 */
export function measureSubjectFill(image: RawImage): SubjectFill {
  return subjectFillFrom(scanOnWhite(image), image);
}

/** Whether the pixel at byte offset p is subject on white (same rule as scanOnWhite). */
function isSubject(image: RawImage, p: number): boolean {
  const { data, channels } = image;
  const alpha = channels === 2 || channels === 4 ? data[p + channels - 1]! : 255;
  let darkest = data[p]!;
  if (channels >= 3) darkest = Math.min(darkest, data[p + 1]!, data[p + 2]!);
  return 255 - ((255 - darkest) * alpha + 127) / 255 < 255 - SUBJECT_THRESHOLD;
}

/** Subject pixels on row (axis "row") or column `index`, visiting every `stride`-th pixel. */
function lineCount(image: RawImage, axis: "row" | "column", index: number, stride: number): number {
  const { width, height, channels } = image;
  let count = 0;
  if (axis === "row") {
    for (let x = 0; x < width; x += stride) {
      if (isSubject(image, (index * width + x) * channels)) count++;
    }
  } else {
    for (let y = 0; y < height; y += stride) {
      if (isSubject(image, (y * width + index) * channels)) count++;
    }
  }
  return count;
}

function subjectFillFrom(scan: OnWhiteScan, image: RawImage): SubjectFill {
  const { width, height } = image;
  const { rowCounts, columnCounts, stride } = scan;
  // A sampled row or column holds 1/stride of its pixels, so it needs 1/stride of the count.
  const minCount = Math.max(1, Math.ceil(Math.floor(Math.min(width, height) / 500) / stride));
  const first = (counts: Uint32Array): number => counts.findIndex((count) => count >= minCount);
  const last = (counts: Uint32Array): number => {
    for (let i = counts.length - 1; i >= 0; i--) if (counts[i]! >= minCount) return i;
    return -1;
  };
  let top = first(rowCounts);
  let left = first(columnCounts);
  if (top < 0 || left < 0) return { fill: 0 };
  let bottom = last(rowCounts);
  let right = last(columnCounts);
  // A sampled scan finds each edge to within stride - 1 px: walk the skipped lines just
  // outside it, so the box is exact along its edges.
  const grows = (axis: "row" | "column", index: number, limit: number): boolean =>
    index >= 0 && index < limit && lineCount(image, axis, index, stride) >= minCount;
  for (let i = 1; i < stride && grows("row", top - 1, height); i++) top--;
  for (let i = 1; i < stride && grows("row", bottom + 1, height); i++) bottom++;
  for (let i = 1; i < stride && grows("column", left - 1, width); i++) left--;
  for (let i = 1; i < stride && grows("column", right + 1, width); i++) right++;
  const box = { left, top, width: right - left + 1, height: bottom - top + 1 };
  return { fill: Math.max(box.width / width, box.height / height), box };
}

/**
 * Runs a slot's checks on an output (DESIGN §7). `decodes` and `size` always run; a file that
 * does not decode fails `decodes` and nothing else is measured. Never throws for a bad image.
 */
export async function runChecks(
  bytes: Buffer,
  spec: CheckSpec,
  expected: { width: number; height: number; format: OutputFormat },
  input?: Buffer,
  /** The input's luminance grid as intake stored it (luminanceGrid); else measured from `input`. */
  inputGrid?: ArrayLike<number>,
): Promise<CheckResult[]> {
  let image: RawImage;
  let format: string;
  try {
    const metadata = await sharp(bytes, { limitInputPixels: DEFAULT_MAX_PIXELS }).metadata();
    format =
      metadata.format === "heif" && metadata.compression === "av1"
        ? "avif"
        : String(metadata.format);
    let decoder = sharp(bytes, { failOn: "truncated", limitInputPixels: DEFAULT_MAX_PIXELS });
    // An sRGB file decodes to sRGB already; converting anyway cost 8 ms of CPU per 1,600 px hero.
    if (metadata.space !== "srgb") decoder = decoder.toColourspace("srgb");
    const { data, info } = await decoder
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    image = { data, width: info.width, height: info.height, channels: info.channels };
  } catch (cause) {
    const message = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    return [{ name: "decodes", passed: false, detail: `does not decode: ${message}` }];
  }

  const results: CheckResult[] = [
    {
      name: "decodes",
      passed: true,
      detail: `decodes as ${format} ${image.width}×${image.height}`,
    },
  ];
  const sizeOk =
    image.width === expected.width &&
    image.height === expected.height &&
    format === expected.format;
  results.push({
    name: "size",
    passed: sizeOk,
    detail: sizeOk
      ? `${format} ${image.width}×${image.height} as expected`
      : `got ${format} ${image.width}×${image.height}, expected ${expected.format} ${expected.width}×${expected.height}`,
  });
  if (spec.whiteBorder) results.push(checkWhiteBorder(image, spec.whiteBorder.minValue));
  // notInput compares against the input only when there is one that differs byte for byte;
  // its output thumbnail then comes from this same scan, not from decoding the file again.
  const compare = spec.notInput === true && input !== undefined && !bytes.equals(input);
  const scan =
    spec.fill || spec.notBlank || spec.blur || compare
      ? scanOnWhite(image, CHECK_SCAN_STRIDE, compare)
      : undefined;
  const subject = scan && (spec.fill || spec.blur) ? subjectFillFrom(scan, image) : undefined;
  if (spec.fill && subject) results.push(checkFill(subject, spec.fill.min, spec.fill.max));
  if (spec.notBlank && scan) results.push(checkNotBlank(scan, spec.notBlank.minStdDev));
  if (spec.blur && subject) results.push(checkBlur(image, subject, spec.blur.max));
  if (spec.notInput) results.push(await checkNotInput(bytes, scan?.thumbnail, input, inputGrid));
  return results;
}

function checkWhiteBorder(image: RawImage, minValue: number): CheckResult {
  const { data, width, height, channels } = image;
  const borderX = Math.max(1, Math.round(width * BORDER_SHARE));
  const borderY = Math.max(1, Math.round(height * BORDER_SHARE));
  let darkest = 255;
  let failing = 0;
  let total = 0;
  let firstFailure: string | undefined;
  for (let y = 0; y < height; y++) {
    const inBand = y < borderY || y >= height - borderY;
    for (let x = 0; x < width; x++) {
      if (!inBand && x >= borderX && x < width - borderX) {
        x = width - borderX - 1;
        continue;
      }
      total++;
      const p = (y * width + x) * channels;
      // Alpha counts as a channel: a transparent border is not a white one.
      let pixelMin = 255;
      for (let c = 0; c < channels; c++) pixelMin = Math.min(pixelMin, data[p + c]!);
      if (pixelMin < darkest) darkest = pixelMin;
      if (pixelMin < minValue) {
        failing++;
        firstFailure ??= `(${x}, ${y})`;
      }
    }
  }
  return {
    name: "whiteBorder",
    passed: failing === 0,
    value: darkest,
    detail:
      failing === 0
        ? `all ${total} border pixels have every channel ≥ ${minValue} (darkest ${darkest})`
        : `${failing} of ${total} border pixels have a channel below ${minValue}, first at ${firstFailure} (darkest ${darkest})`,
  };
}

function checkFill(subject: SubjectFill, min: number, max: number): CheckResult {
  const { fill, box } = subject;
  const value = Math.round(fill * 1000) / 1000;
  const passed = fill >= min && fill <= max;
  return {
    name: "fill",
    passed,
    value,
    detail: box
      ? `subject box ${box.width}×${box.height} at (${box.left}, ${box.top}) fills ${value}; allowed ${min}–${max}`
      : `no subject found on white; allowed ${min}–${max}`,
  };
}

function checkBlur(image: RawImage, subject: SubjectFill, max: number): CheckResult {
  // On white, the subject's box grown by a margin, so its outline against the white counts
  // (where focus shows first); with no subject found on white (a scene), the whole frame.
  const box = subject.box
    ? grownBox(subject.box, BLUR_BOX_MARGIN_PX, image.width, image.height)
    : { left: 0, top: 0, width: image.width, height: image.height };
  const value = Math.round(measureBlur(image, box, BLUR_STRIDE) * 1000) / 1000;
  return {
    name: "blur",
    passed: value <= max,
    value,
    detail: `blur ${value} over the ${subject.box ? "subject's" : "frame's"} ${box.width}×${box.height} box (0 sharp … 1 flat; maximum ${max})`,
  };
}

function grownBox(
  box: { left: number; top: number; width: number; height: number },
  margin: number,
  width: number,
  height: number,
): { left: number; top: number; width: number; height: number } {
  const left = Math.max(0, box.left - margin);
  const top = Math.max(0, box.top - margin);
  const right = Math.min(width, box.left + box.width + margin);
  const bottom = Math.min(height, box.top + box.height + margin);
  return { left, top, width: right - left, height: bottom - top };
}

function checkNotBlank(scan: OnWhiteScan, minStdDev: number): CheckResult {
  const count = scan.samples;
  const sum = scan.luminanceSum;
  const sumSquares = scan.luminanceSquares;
  const mean = sum / count;
  const stdDev = Math.sqrt(Math.max(0, sumSquares / count - mean * mean));
  const value = Math.round(stdDev * 100) / 100;
  return {
    name: "notBlank",
    passed: stdDev >= minStdDev,
    value,
    detail: `luminance standard deviation ${value} (minimum ${minStdDev})`,
  };
}

async function checkNotInput(
  bytes: Buffer,
  outputThumbnail: Float64Array | undefined,
  input?: Buffer,
  inputGrid?: ArrayLike<number>,
): Promise<CheckResult> {
  if (!input) return { name: "notInput", passed: true, detail: "no input image to compare with" };
  if (bytes.equals(input) || !outputThumbnail) {
    return {
      name: "notInput",
      passed: false,
      value: 0,
      detail: "output is byte-identical to the input",
    };
  }
  let inputThumbnail: ArrayLike<number>;
  try {
    inputThumbnail =
      inputGrid?.length === outputThumbnail.length ? inputGrid : await thumbnailOfFile(input);
  } catch {
    return {
      name: "notInput",
      passed: true,
      detail: "input does not decode, so the output cannot be it",
    };
  }
  let difference = 0;
  for (let i = 0; i < outputThumbnail.length; i++) {
    difference += Math.abs(outputThumbnail[i]! - inputThumbnail[i]!);
  }
  const value = Math.round((difference / outputThumbnail.length) * 100) / 100;
  const passed = value >= SAME_PICTURE_MAX_DIFFERENCE;
  return {
    name: "notInput",
    passed,
    value,
    detail: passed
      ? `differs from the input by ${value} grey levels on average`
      : `looks the same as the input (mean difference ${value} < ${SAME_PICTURE_MAX_DIFFERENCE} grey levels)`,
  };
}

/**
 * An image's grid of mean luminances (COMPARE_SIDE_PX square, row by row; alpha seen on white),
 * as the notInput check compares them. Intake measures each reference photo's grid once, on the
 * small preview its validating decode keeps (decodeImage), and stores it with the reference.
 */
export function luminanceGrid(image: RawImage): Float64Array {
  const grid = scanOnWhite(image, 1, true).thumbnail;
  if (!grid) throw new Error("no luminance grid");
  return grid;
}

/** The grid of an input file, from the same preview intake measures it on. */
async function thumbnailOfFile(bytes: Buffer): Promise<Float64Array> {
  return luminanceGrid((await decodeImage(bytes, { maxPixels: DEFAULT_MAX_PIXELS })).preview);
}
