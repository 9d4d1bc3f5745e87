import sharp from "sharp";
import type { CheckResult, CheckSpec } from "../domain/checks.js";
import type { OutputFormat } from "../domain/recipe.js";
import { DEFAULT_MAX_PIXELS, type RawImage } from "./decode.js";

/** A pixel is subject when some channel is further than this below white (0–255). */
export const SUBJECT_THRESHOLD = 20;
/** Border width for the white-border check, as a share of each side (marketplace rule). */
const BORDER_SHARE = 0.01;
/** Side of the thumbnails compared by notInput. */
const COMPARE_SIDE_PX = 32;
/** Mean absolute grey difference (0–255) below which two images are "the same picture". */
const SAME_PICTURE_MAX_DIFFERENCE = 2;

export interface SubjectFill {
  /** max(boxWidth / width, boxHeight / height), 0 when there is no subject. */
  fill: number;
  box?: { left: number; top: number; width: number; height: number };
}

/**
 * Subject fill ratio on an image meant to be on white: the box of pixels that differ from
 * white by more than SUBJECT_THRESHOLD. A row or column counts only with at least
 * `minCount` such pixels, so a stray speck or JPEG ringing does not stretch the box.
 */
export function measureSubjectFill(image: RawImage): SubjectFill {
  const { data, width, height, channels } = image;
  const rowCounts = new Uint32Array(height);
  const columnCounts = new Uint32Array(width);
  const hasAlpha = channels === 2 || channels === 4;
  const colourChannels = hasAlpha ? channels - 1 : channels;
  const limit = 255 - SUBJECT_THRESHOLD;
  for (let y = 0; y < height; y++) {
    let p = y * width * channels;
    for (let x = 0; x < width; x++, p += channels) {
      const alpha = hasAlpha ? data[p + channels - 1]! / 255 : 1;
      let darkest = 255;
      for (let c = 0; c < colourChannels; c++) {
        // Seen on white: transparent pixels are white.
        const value = data[p + c]! * alpha + 255 * (1 - alpha);
        if (value < darkest) darkest = value;
      }
      if (darkest < limit) {
        rowCounts[y]!++;
        columnCounts[x]!++;
      }
    }
  }
  const minCount = Math.max(1, Math.floor(Math.min(width, height) / 500));
  const first = (counts: Uint32Array): number => counts.findIndex((count) => count >= minCount);
  const last = (counts: Uint32Array): number => {
    for (let i = counts.length - 1; i >= 0; i--) if (counts[i]! >= minCount) return i;
    return -1;
  };
  const top = first(rowCounts);
  const left = first(columnCounts);
  if (top < 0 || left < 0) return { fill: 0 };
  const box = {
    left,
    top,
    width: last(columnCounts) - left + 1,
    height: last(rowCounts) - top + 1,
  };
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
): Promise<CheckResult[]> {
  let image: RawImage;
  let format: string;
  try {
    const metadata = await sharp(bytes, { limitInputPixels: DEFAULT_MAX_PIXELS }).metadata();
    format =
      metadata.format === "heif" && metadata.compression === "av1"
        ? "avif"
        : String(metadata.format);
    const { data, info } = await sharp(bytes, {
      failOn: "truncated",
      limitInputPixels: DEFAULT_MAX_PIXELS,
    })
      .toColourspace("srgb")
      .ensureAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    image = { data, width: info.width, height: info.height, channels: 4 };
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
  if (spec.fill) results.push(checkFill(image, spec.fill.min, spec.fill.max));
  if (spec.notBlank) results.push(checkNotBlank(image, spec.notBlank.minStdDev));
  if (spec.notInput) results.push(await checkNotInput(bytes, input));
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

function checkFill(image: RawImage, min: number, max: number): CheckResult {
  const { fill, box } = measureSubjectFill(image);
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

function checkNotBlank(image: RawImage, minStdDev: number): CheckResult {
  const { data, width, height, channels } = image;
  let sum = 0;
  let sumSquares = 0;
  const count = width * height;
  for (let p = 0; p < count * channels; p += channels) {
    const alpha = channels === 4 ? data[p + 3]! / 255 : 1;
    const luminance =
      (0.2126 * data[p]! + 0.7152 * data[p + 1]! + 0.0722 * data[p + 2]!) * alpha +
      255 * (1 - alpha);
    sum += luminance;
    sumSquares += luminance * luminance;
  }
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

async function checkNotInput(bytes: Buffer, input?: Buffer): Promise<CheckResult> {
  if (!input) return { name: "notInput", passed: true, detail: "no input image to compare with" };
  if (bytes.equals(input)) {
    return {
      name: "notInput",
      passed: false,
      value: 0,
      detail: "output is byte-identical to the input",
    };
  }
  let inputThumbnail: Buffer;
  try {
    inputThumbnail = await greyThumbnail(input);
  } catch {
    return {
      name: "notInput",
      passed: true,
      detail: "input does not decode, so the output cannot be it",
    };
  }
  const outputThumbnail = await greyThumbnail(bytes);
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

/** A small grey thumbnail, alpha seen on white, for comparing pictures whatever their size. */
function greyThumbnail(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes, { failOn: "truncated", limitInputPixels: DEFAULT_MAX_PIXELS })
    .flatten({ background: "#ffffff" })
    .resize({ width: COMPARE_SIDE_PX, height: COMPARE_SIDE_PX, fit: "fill" })
    .greyscale()
    .raw()
    .toBuffer();
}
