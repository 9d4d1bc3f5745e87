import type { RawImage, RgbaImage } from "./decode.js";

export interface CutoutOptions {
  /** Colour distance (0–255, Euclidean RGB) still counted as backdrop; default 18. */
  tolerance?: number;
  /**
   * Darkest contact shadow still counted as backdrop, as a fraction of the backdrop's
   * brightness (0–1); default 0.6 (studio contact shadows darken by 30% at most). Darker neutral regions are always kept as subject.
   */
  minShadowBrightness?: number;
}

export interface BackdropModel {
  /** Polynomial degree in normalised image coordinates (2 or 3). */
  degree: number;
  /** Per channel (R, G, B), one coefficient per monomial u^i·v^j, i + j ≤ degree. */
  coefficients: [Float64Array, Float64Array, Float64Array];
}

const DEFAULT_TOLERANCE = 18;
const DEFAULT_MIN_SHADOW_BRIGHTNESS = 0.6;
/** Backdrop cells per long side: enough to follow a sweep's curve, few enough to average noise. */
const GRID_CELLS_LONG_SIDE = 64;
/** Components smaller than this share of the largest are specks (dust, noise), not subject. */
const MIN_COMPONENT_SHARE = 0.1;
/** Long side of the binned copy the subject is classified on. */
const CLASSIFY_LONG_SIDE_PX = 640;
/** Full-resolution margin around the binned outline where alpha is estimated, not decided. */
const EDGE_BAND_PX = 2;
/** A shadow is a smooth darkening; deviation from its local mean above this is structure. */
const SHADOW_ROUGHNESS_START = 0.02;
const SHADOW_ROUGHNESS_SPAN = 0.04;
/** Low threshold of the hysteresis, as a share of the tolerance. */
const HYSTERESIS_SHARE = 0.5;

/**
 * Background removal for studio shots on a plain or seamless backdrop (DESIGN §6).
 *
 * The backdrop is modelled as a smooth colour surface (a robust low-order polynomial, first from
 * the border, then from everything that looks like backdrop); each pixel's distance from it
 * decides the subject. Neutral, smooth darkenings of the backdrop (contact shadows) count as
 * backdrop; the largest connected subject region(s) are kept and enclosed holes are filled, so
 * near-white details inside the subject stay opaque. Alpha along the outline is estimated from
 * the local contrast (anti-aliased and soft edges keep partial alpha) and edge colours are freed
 * of backdrop spill so the cut-out composites cleanly on other backgrounds.
 */
export function cutout(image: RawImage, options: CutoutOptions = {}): RgbaImage {
  const { width, height, channels } = image;
  if (channels !== 3 && channels !== 4) {
    throw new RangeError(`cutout needs RGB or RGBA pixels, got ${channels} channels`);
  }
  if (image.data.length < width * height * channels) {
    throw new RangeError("cutout: pixel buffer is shorter than width × height × channels");
  }
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const minShadowBrightness = options.minShadowBrightness ?? DEFAULT_MIN_SHADOW_BRIGHTNESS;
  if (channels === 4 && isAlreadyCutOut(image)) return copyRgba(image);

  // The subject is found on a binned copy (about CLASSIFY_LONG_SIDE_PX on the long side: 4×
  // fewer pixels at 1200 px, and binning averages sensor noise away); only the outline is
  // then measured at full resolution.
  const binFactor = Math.max(1, Math.ceil(Math.max(width, height) / CLASSIFY_LONG_SIDE_PX));
  const small = binRgb(image, binFactor);
  const smallWidth = Math.ceil(width / binFactor);
  const smallHeight = Math.ceil(height / binFactor);
  const smallCount = smallWidth * smallHeight;
  // A 3×3 box blur tames what noise binning left before distances are measured.
  const smoothed = boxBlurRgb(small, smallWidth, smallHeight, 1);
  const model = fitBackdrop(smoothed, smallWidth, smallHeight, tolerance);
  const backdrop = evaluateBackdrop(model, smallWidth, smallHeight);

  const distance = new Float32Array(smallCount);
  const chroma = new Float32Array(smallCount);
  const darkening = new Float32Array(smallCount);
  const shadowCandidate = new Float32Array(smallCount);
  for (let i = 0, p = 0; i < smallCount; i++, p += 3) {
    const measure = measureAgainstBackdrop(
      smoothed[p]!,
      smoothed[p + 1]!,
      smoothed[p + 2]!,
      backdrop[p]!,
      backdrop[p + 1]!,
      backdrop[p + 2]!,
    );
    distance[i] = measure.distance;
    chroma[i] = measure.chroma;
    if (measure.scale < 1 && measure.scale >= minShadowBrightness && measure.chroma < tolerance) {
      darkening[i] = 1 - measure.scale;
      shadowCandidate[i] = 1;
    }
  }

  // A contact shadow is low-frequency: compare each candidate's darkening with the mean of the
  // candidates around it. The rim of a neutral object is a step, so it stays subject.
  const shadowRadiusPx = Math.max(3, Math.round(Math.max(smallWidth, smallHeight) / 100));
  const weightedDarkening = new Float32Array(smallCount);
  for (let i = 0; i < smallCount; i++) weightedDarkening[i] = darkening[i]! * shadowCandidate[i]!;
  const darkeningSum = boxBlurChannel(weightedDarkening, smallWidth, smallHeight, shadowRadiusPx);
  const candidateSum = boxBlurChannel(shadowCandidate, smallWidth, smallHeight, shadowRadiusPx);
  // 1 = structure (subject), 0 = smooth shadow; pixels that are no candidate count as 1.
  const structure = new Float32Array(smallCount).fill(1);
  const backdropLike = new Uint8Array(smallCount);
  for (let i = 0; i < smallCount; i++) {
    if (distance[i]! < tolerance) backdropLike[i] = 1;
    if (shadowCandidate[i] === 0) continue;
    const localMean = darkeningSum[i]! / Math.max(1e-6, candidateSum[i]!);
    const roughness = Math.abs(darkening[i]! - localMean);
    structure[i] = clamp01((roughness - SHADOW_ROUGHNESS_START) / SHADOW_ROUGHNESS_SPAN);
    if (structure[i]! < 0.5) backdropLike[i] = 1;
  }
  // A shadow lies on the backdrop: a smooth neutral region counts as shadow only if it is
  // reached from the border through backdrop or shadow. The smooth inside of a grey object,
  // fenced by its sharp rim, is not reached and stays subject.
  const reachable = floodFromBorder(backdropLike, smallWidth, smallHeight, 1);
  for (let i = 0; i < smallCount; i++) {
    if (shadowCandidate[i] === 0) continue;
    if (reachable[i] === 0) {
      structure[i] = 1;
      continue;
    }
    const weight = structure[i]!;
    distance[i] = chroma[i]! * (1 - weight) + distance[i]! * weight;
  }

  const subject = new Uint8Array(smallCount);
  for (let i = 0; i < smallCount; i++) subject[i] = distance[i]! >= tolerance ? 1 : 0;
  keepMainComponents(subject, smallWidth, smallHeight);
  // Hysteresis (as in Canny edges): faint parts attached to the subject, such as a white sole
  // on a light grey backdrop, join it down to half the tolerance; lone faint specks do not.
  growSubject(subject, distance, tolerance * HYSTERESIS_SHARE, smallWidth, smallHeight);
  const outside = floodFromBorder(subject, smallWidth, smallHeight);

  return composeAlpha(image, {
    model,
    binFactor,
    smallWidth,
    smallHeight,
    distance,
    structure,
    outside,
    tolerance,
  });
}

/** Fraction of pixels that are subject (alpha ≥ 128): handy for tests and sanity checks. */
export function alphaCoverage(image: RgbaImage): number {
  let count = 0;
  const pixelCount = image.width * image.height;
  for (let i = 0; i < pixelCount; i++) if (image.data[i * 4 + 3]! >= 128) count++;
  return count / pixelCount;
}

function isAlreadyCutOut(image: RawImage): boolean {
  const { data, width, height } = image;
  let transparent = 0;
  let total = 0;
  const visit = (x: number, y: number): void => {
    total++;
    if (data[(y * width + x) * 4 + 3]! < 16) transparent++;
  };
  for (let x = 0; x < width; x++) {
    visit(x, 0);
    visit(x, height - 1);
  }
  for (let y = 1; y < height - 1; y++) {
    visit(0, y);
    visit(width - 1, y);
  }
  return transparent * 2 >= total;
}

function copyRgba(image: RawImage): RgbaImage {
  return {
    data: Buffer.from(image.data.subarray(0, image.width * image.height * 4)),
    width: image.width,
    height: image.height,
    channels: 4,
  };
}

/** RGB (alpha dropped) as floats, averaged over `factor`×`factor` blocks (edge blocks partial). */
function binRgb(image: RawImage, factor: number): Float32Array {
  const { data, width, height, channels } = image;
  const binnedWidth = Math.ceil(width / factor);
  const binnedHeight = Math.ceil(height / factor);
  const sums = new Float32Array(binnedWidth * binnedHeight * 3);
  const counts = new Float32Array(binnedWidth * binnedHeight);
  const binOfColumn = new Int32Array(width);
  for (let x = 0; x < width; x++) binOfColumn[x] = Math.floor(x / factor);
  for (let y = 0; y < height; y++) {
    const binRow = Math.floor(y / factor) * binnedWidth;
    let source = y * width * channels;
    for (let x = 0; x < width; x++, source += channels) {
      const bin = binRow + binOfColumn[x]!;
      const target = bin * 3;
      sums[target]! += data[source]!;
      sums[target + 1]! += data[source + 1]!;
      sums[target + 2]! += data[source + 2]!;
      counts[bin]! += 1;
    }
  }
  for (let bin = 0, target = 0; bin < counts.length; bin++, target += 3) {
    const inverse = 1 / counts[bin]!;
    sums[target]! *= inverse;
    sums[target + 1]! *= inverse;
    sums[target + 2]! *= inverse;
  }
  return sums;
}

/** Interleaved RGB floats, box-blurred per channel with the given radius (edges clamped). */
function boxBlurRgb(
  rgb: Float32Array,
  width: number,
  height: number,
  radiusPx: number,
): Float32Array {
  const pixelCount = width * height;
  const planes = [
    new Float32Array(pixelCount),
    new Float32Array(pixelCount),
    new Float32Array(pixelCount),
  ];
  for (let i = 0, p = 0; i < pixelCount; i++, p += 3) {
    planes[0]![i] = rgb[p]!;
    planes[1]![i] = rgb[p + 1]!;
    planes[2]![i] = rgb[p + 2]!;
  }
  const blurred = planes.map((plane) => boxBlurChannel(plane, width, height, radiusPx, true));
  const interleaved = new Float32Array(pixelCount * 3);
  for (let i = 0, p = 0; i < pixelCount; i++, p += 3) {
    interleaved[p] = blurred[0]![i]!;
    interleaved[p + 1] = blurred[1]![i]!;
    interleaved[p + 2] = blurred[2]![i]!;
  }
  return interleaved;
}

/**
 * Separable box filter with running sums (O(1) per pixel whatever the radius). With
 * `normalise`, the window is clamped at the edges and divided by its size; without, the raw
 * sum is returned, which callers divide by a matching sum of weights.
 */
function boxBlurChannel(
  plane: Float32Array,
  width: number,
  height: number,
  radiusPx: number,
  normalise = false,
): Float32Array {
  const inverseCountX = windowWeights(width, radiusPx, normalise);
  const inverseCountY = windowWeights(height, radiusPx, normalise);
  const horizontal = new Float32Array(plane.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let sum = 0;
    for (let x = 0; x <= Math.min(radiusPx, width - 1); x++) sum += plane[row + x]!;
    for (let x = 0; x < width; x++) {
      horizontal[row + x] = sum * inverseCountX[x]!;
      const entering = x + radiusPx + 1;
      const leaving = x - radiusPx;
      if (entering < width) sum += plane[row + entering]!;
      if (leaving >= 0) sum -= plane[row + leaving]!;
    }
  }
  const result = new Float32Array(plane.length);
  const columnSums = new Float64Array(width);
  for (let y = 0; y <= Math.min(radiusPx, height - 1); y++) {
    const offset = y * width;
    for (let x = 0; x < width; x++) columnSums[x]! += horizontal[offset + x]!;
  }
  for (let y = 0; y < height; y++) {
    const weight = inverseCountY[y]!;
    const row = y * width;
    for (let x = 0; x < width; x++) result[row + x] = columnSums[x]! * weight;
    const entering = y + radiusPx + 1;
    const leaving = y - radiusPx;
    if (entering < height) {
      const offset = entering * width;
      for (let x = 0; x < width; x++) columnSums[x]! += horizontal[offset + x]!;
    }
    if (leaving >= 0) {
      const offset = leaving * width;
      for (let x = 0; x < width; x++) columnSums[x]! -= horizontal[offset + x]!;
    }
  }
  return result;
}

function windowWeights(length: number, radiusPx: number, normalise: boolean): Float64Array {
  const weights = new Float64Array(length).fill(1);
  if (!normalise) return weights;
  for (let i = 0; i < length; i++) {
    weights[i] = 1 / (Math.min(length - 1, i + radiusPx) - Math.max(0, i - radiusPx) + 1);
  }
  return weights;
}

/** Scratch result of measureAgainstBackdrop: no allocation per pixel. */
const measured = { distance: 0, chroma: 0, scale: 0 };

/**
 * A pixel against the modelled backdrop: Euclidean distance; `scale`, its brightness along the
 * backdrop's own colour direction (a shadow only scales the backdrop); `chroma`, what is left
 * over, the change of chromaticity, which a shadow does not have.
 */
function measureAgainstBackdrop(
  r: number,
  g: number,
  b: number,
  br: number,
  bg: number,
  bb: number,
): typeof measured {
  const dr = r - br;
  const dg = g - bg;
  const db = b - bb;
  const scale = (r * br + g * bg + b * bb) / Math.max(1, br * br + bg * bg + bb * bb);
  const cr = r - scale * br;
  const cg = g - scale * bg;
  const cb = b - scale * bb;
  measured.distance = Math.sqrt(dr * dr + dg * dg + db * db);
  measured.chroma = Math.sqrt(cr * cr + cg * cg + cb * cb);
  measured.scale = scale;
  return measured;
}

interface Cell {
  u: number;
  v: number;
  rgb: [number, number, number];
  ring: number;
}

/**
 * Robust fit of the backdrop surface. Pass 1 uses only the outer rings of a coarse grid (the
 * subject may touch an edge, so outliers are dropped by their residual, starting from the
 * median); pass 2 refits a cubic on every cell that pass 1 calls backdrop, which follows a
 * seamless sweep or a vignette across the whole frame.
 */
export function fitBackdrop(
  rgb: Float32Array,
  width: number,
  height: number,
  tolerance: number,
): BackdropModel {
  const cellPx = Math.max(2, Math.ceil(Math.max(width, height) / GRID_CELLS_LONG_SIDE));
  const columns = Math.ceil(width / cellPx);
  const rows = Math.ceil(height / cellPx);
  const sums = new Float64Array(columns * rows * 3);
  const counts = new Float64Array(columns * rows);
  for (let y = 0; y < height; y++) {
    const cellRow = Math.floor(y / cellPx) * columns;
    for (let x = 0; x < width; x++) {
      const cell = cellRow + Math.floor(x / cellPx);
      const p = (y * width + x) * 3;
      sums[cell * 3]! += rgb[p]!;
      sums[cell * 3 + 1]! += rgb[p + 1]!;
      sums[cell * 3 + 2]! += rgb[p + 2]!;
      counts[cell]! += 1;
    }
  }
  const cells: Cell[] = [];
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      const index = row * columns + column;
      const count = counts[index]!;
      const centreX = Math.min(width, column * cellPx + cellPx / 2);
      const centreY = Math.min(height, row * cellPx + cellPx / 2);
      cells.push({
        u: (2 * centreX) / width - 1,
        v: (2 * centreY) / height - 1,
        rgb: [sums[index * 3]! / count, sums[index * 3 + 1]! / count, sums[index * 3 + 2]! / count],
        ring: Math.min(column, row, columns - 1 - column, rows - 1 - row),
      });
    }
  }

  const border = cells.filter((cell) => cell.ring < 2);
  const median: [number, number, number] = [0, 1, 2].map((channel) =>
    medianOf(border.map((cell) => cell.rgb[channel]!)),
  ) as [number, number, number];
  let inliers = border.filter((cell) => colourDistance(cell.rgb, median) < 4 * tolerance);
  if (inliers.length < 12) inliers = border;
  let model = fitPolynomial(inliers, 2);
  for (let iteration = 0; iteration < 3; iteration++) {
    const residuals = border.map((cell) =>
      colourDistance(cell.rgb, evaluateAt(model, cell.u, cell.v)),
    );
    const limit = Math.max(tolerance * 0.75, 3 * medianOf(residuals));
    const next = border.filter((_, index) => residuals[index]! < limit);
    if (next.length < 12) break;
    inliers = next;
    model = fitPolynomial(inliers, 2);
  }

  // Pass 2: the whole frame. A cell next to subject is averaged with it, so only cells whose
  // four neighbours are also backdrop are used.
  const isBackdrop = cells.map(
    (cell) => colourDistance(cell.rgb, evaluateAt(model, cell.u, cell.v)) < tolerance * 0.75,
  );
  const interior = cells.filter((_, index) => {
    if (!isBackdrop[index]) return false;
    const row = Math.floor(index / columns);
    const column = index % columns;
    return [
      [row - 1, column],
      [row + 1, column],
      [row, column - 1],
      [row, column + 1],
    ].every(
      ([r, c]) => r! < 0 || c! < 0 || r! >= rows || c! >= columns || isBackdrop[r! * columns + c!],
    );
  });
  // A cubic needs samples spread around the frame; with too few, the border quadratic stays.
  if (interior.length >= Math.max(40, border.length * 0.6)) {
    let refined = fitPolynomial(interior, 3);
    const residuals = interior.map((cell) =>
      colourDistance(cell.rgb, evaluateAt(refined, cell.u, cell.v)),
    );
    const limit = Math.max(tolerance * 0.5, 3 * medianOf(residuals));
    const kept = interior.filter((_, index) => residuals[index]! < limit);
    if (kept.length >= 40) refined = fitPolynomial(kept, 3);
    model = refined;
  }
  return model;
}

function monomials(degree: number): Array<[number, number]> {
  const terms: Array<[number, number]> = [];
  for (let total = 0; total <= degree; total++) {
    for (let j = 0; j <= total; j++) terms.push([total - j, j]);
  }
  return terms;
}

function fitPolynomial(samples: readonly Cell[], degree: number): BackdropModel {
  const terms = monomials(degree);
  const size = terms.length;
  const normal = new Float64Array(size * size);
  const rhs = [new Float64Array(size), new Float64Array(size), new Float64Array(size)];
  const basis = new Float64Array(size);
  for (const sample of samples) {
    for (let k = 0; k < size; k++) {
      const [i, j] = terms[k]!;
      basis[k] = sample.u ** i * sample.v ** j;
    }
    for (let a = 0; a < size; a++) {
      for (let b = 0; b < size; b++) normal[a * size + b]! += basis[a]! * basis[b]!;
      for (let channel = 0; channel < 3; channel++) {
        rhs[channel]![a]! += basis[a]! * sample.rgb[channel]!;
      }
    }
  }
  // A little ridge keeps the system solvable when samples sit on few lines (border only).
  for (let k = 1; k < size; k++) normal[k * size + k]! += 1e-3 * samples.length;
  const coefficients = rhs.map((vector) => solveLinear(normal, vector, size)) as [
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  return { degree, coefficients };
}

function solveLinear(matrix: Float64Array, vector: Float64Array, size: number): Float64Array {
  const a = Float64Array.from(matrix);
  const b = Float64Array.from(vector);
  for (let column = 0; column < size; column++) {
    let pivot = column;
    for (let row = column + 1; row < size; row++) {
      if (Math.abs(a[row * size + column]!) > Math.abs(a[pivot * size + column]!)) pivot = row;
    }
    if (pivot !== column) {
      for (let k = 0; k < size; k++) {
        const swap = a[column * size + k]!;
        a[column * size + k] = a[pivot * size + k]!;
        a[pivot * size + k] = swap;
      }
      const swap = b[column]!;
      b[column] = b[pivot]!;
      b[pivot] = swap;
    }
    const diagonal = a[column * size + column]!;
    if (Math.abs(diagonal) < 1e-12) continue;
    for (let row = column + 1; row < size; row++) {
      const factor = a[row * size + column]! / diagonal;
      if (factor === 0) continue;
      for (let k = column; k < size; k++) a[row * size + k]! -= factor * a[column * size + k]!;
      b[row]! -= factor * b[column]!;
    }
  }
  const x = new Float64Array(size);
  for (let row = size - 1; row >= 0; row--) {
    let sum = b[row]!;
    for (let k = row + 1; k < size; k++) sum -= a[row * size + k]! * x[k]!;
    const diagonal = a[row * size + row]!;
    x[row] = Math.abs(diagonal) < 1e-12 ? 0 : sum / diagonal;
  }
  return x;
}

function evaluateAt(model: BackdropModel, u: number, v: number): [number, number, number] {
  const terms = monomials(model.degree);
  const result: [number, number, number] = [0, 0, 0];
  for (let k = 0; k < terms.length; k++) {
    const [i, j] = terms[k]!;
    const basis = u ** i * v ** j;
    for (let channel = 0; channel < 3; channel++) {
      result[channel]! += model.coefficients[channel]![k]! * basis;
    }
  }
  return result;
}

/** The modelled backdrop at every pixel (RGB floats), one Horner polynomial in u per row. */
export function evaluateBackdrop(
  model: BackdropModel,
  width: number,
  height: number,
): Float32Array {
  const terms = monomials(model.degree);
  const degree = model.degree;
  const backdrop = new Float32Array(width * height * 3);
  const us = new Float64Array(width);
  for (let x = 0; x < width; x++) us[x] = (2 * (x + 0.5)) / width - 1;
  const rowCoefficients = [
    new Float64Array(degree + 1),
    new Float64Array(degree + 1),
    new Float64Array(degree + 1),
  ];
  for (let y = 0; y < height; y++) {
    const v = (2 * (y + 0.5)) / height - 1;
    for (let channel = 0; channel < 3; channel++) {
      const row = rowCoefficients[channel]!;
      row.fill(0);
      for (let k = 0; k < terms.length; k++) {
        const [i, j] = terms[k]!;
        row[i]! += model.coefficients[channel]![k]! * v ** j;
      }
    }
    const [red, green, blue] = rowCoefficients as [Float64Array, Float64Array, Float64Array];
    for (let x = 0; x < width; x++) {
      const u = us[x]!;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = degree; i >= 0; i--) {
        r = r * u + red[i]!;
        g = g * u + green[i]!;
        b = b * u + blue[i]!;
      }
      const p = (y * width + x) * 3;
      backdrop[p] = r;
      backdrop[p + 1] = g;
      backdrop[p + 2] = b;
    }
  }
  return backdrop;
}

/**
 * Keeps the largest 8-connected subject region and any other region at least
 * MIN_COMPONENT_SHARE of its size (a pair of earrings is two regions); clears the rest.
 */
function keepMainComponents(subject: Uint8Array, width: number, height: number): void {
  const labels = new Int32Array(subject.length);
  const sizes: number[] = [0];
  const stack = new Int32Array(subject.length);
  for (let start = 0; start < subject.length; start++) {
    if (subject[start] === 0 || labels[start] !== 0) continue;
    const label = sizes.length;
    let size = 0;
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    while (top > 0) {
      const index = stack[--top]!;
      size++;
      const x = index % width;
      const y = (index - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const neighbour = ny * width + nx;
          if (subject[neighbour] === 1 && labels[neighbour] === 0) {
            labels[neighbour] = label;
            stack[top++] = neighbour;
          }
        }
      }
    }
    sizes.push(size);
  }
  const largest = Math.max(0, ...sizes);
  const minimum = Math.max(1, largest * MIN_COMPONENT_SHARE);
  for (let i = 0; i < subject.length; i++) {
    if (subject[i] === 1 && sizes[labels[i]!]! < minimum) subject[i] = 0;
  }
}

/**
 * Pixels whose `mask` value is `passable` and that the frame's border reaches through such
 * pixels (4-connected). With the subject mask and passable 0: the backdrop, without enclosed holes.
 */
function floodFromBorder(
  mask: Uint8Array,
  width: number,
  height: number,
  passable: 0 | 1 = 0,
): Uint8Array {
  const outside = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  let top = 0;
  const seed = (index: number): void => {
    if (mask[index] === passable && outside[index] === 0) {
      outside[index] = 1;
      stack[top++] = index;
    }
  };
  for (let x = 0; x < width; x++) {
    seed(x);
    seed((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    seed(y * width);
    seed(y * width + width - 1);
  }
  while (top > 0) {
    const index = stack[--top]!;
    const x = index % width;
    if (x > 0) seed(index - 1);
    if (x < width - 1) seed(index + 1);
    if (index >= width) seed(index - width);
    if (index < mask.length - width) seed(index + width);
  }
  return outside;
}

/** Adds to `subject` every pixel at least `minDistance` from the backdrop connected to it. */
function growSubject(
  subject: Uint8Array,
  distance: Float32Array,
  minDistance: number,
  width: number,
  height: number,
): void {
  const stack = new Int32Array(subject.length);
  let top = 0;
  for (let i = 0; i < subject.length; i++) if (subject[i] === 1) stack[top++] = i;
  const visit = (index: number): void => {
    if (subject[index] === 0 && distance[index]! >= minDistance) {
      subject[index] = 1;
      stack[top++] = index;
    }
  };
  while (top > 0) {
    const index = stack[--top]!;
    const x = index % width;
    if (x > 0) visit(index - 1);
    if (x < width - 1) visit(index + 1);
    if (index >= width) visit(index - width);
    if (index < height * width - width) visit(index + width);
  }
}

interface Classification {
  model: BackdropModel;
  binFactor: number;
  smallWidth: number;
  smallHeight: number;
  /** Shadow-aware distance from the backdrop, per binned pixel. */
  distance: Float32Array;
  /** 0 = smooth shadow … 1 = structure, per binned pixel. */
  structure: Float32Array;
  /** 1 = backdrop connected to the border, per binned pixel. */
  outside: Uint8Array;
  tolerance: number;
}

/**
 * Alpha is 255 inside the outline and 0 outside it. Near the outline (the binned boundary
 * blocks plus EDGE_BAND_PX) it is measured at full resolution as the pixel's distance from the
 * backdrop over the nearby subject's distance, i.e. the share of the pixel the subject covers
 * (a mix a·F + (1−a)·B lies a·|F−B| from B).
 */
function composeAlpha(image: RawImage, classification: Classification): RgbaImage {
  const { data, width, height, channels } = image;
  const { binFactor, smallWidth, smallHeight, distance, structure, outside, tolerance } =
    classification;
  const output = Buffer.alloc(width * height * 4);
  const binOfColumn = new Int32Array(width);
  for (let x = 0; x < width; x++) binOfColumn[x] = Math.floor(x / binFactor);
  for (let y = 0; y < height; y++) {
    const binRow = Math.floor(y / binFactor) * smallWidth;
    let source = y * width * channels;
    let target = y * width * 4;
    for (let x = 0; x < width; x++, source += channels, target += 4) {
      output[target] = data[source]!;
      output[target + 1] = data[source + 1]!;
      output[target + 2] = data[source + 2]!;
      output[target + 3] = outside[binRow + binOfColumn[x]!] === 1 ? 0 : 255;
    }
  }

  const band = new Uint8Array(width * height);
  const marginPx = EDGE_BAND_PX;
  for (let sy = 0; sy < smallHeight; sy++) {
    for (let sx = 0; sx < smallWidth; sx++) {
      const index = sy * smallWidth + sx;
      const isOutside = outside[index]!;
      const differs =
        (sx > 0 && outside[index - 1] !== isOutside) ||
        (sx < smallWidth - 1 && outside[index + 1] !== isOutside) ||
        (sy > 0 && outside[index - smallWidth] !== isOutside) ||
        (sy < smallHeight - 1 && outside[index + smallWidth] !== isOutside);
      if (!differs) continue;
      const top = Math.max(0, sy * binFactor - marginPx);
      const bottom = Math.min(height, (sy + 1) * binFactor + marginPx);
      const left = Math.max(0, sx * binFactor - marginPx);
      const right = Math.min(width, (sx + 1) * binFactor + marginPx);
      for (let y = top; y < bottom; y++) band.fill(1, y * width + left, y * width + right);
    }
  }

  const noiseFloor = tolerance * 0.25;
  const referenceRadius = 2;
  const rowBackdrop = backdropRows(classification.model, height);
  const degree = classification.model.degree;
  for (let y = 0; y < height; y++) {
    const sy = Math.floor(y / binFactor);
    const coefficients = rowBackdrop[y]!;
    for (let x = 0; x < width; x++) {
      const index = y * width + x;
      if (band[index] === 0) continue;
      const sx = binOfColumn[x]!;
      // The subject's own contrast against the backdrop nearby: the strongest distance among
      // inside pixels around this one.
      let reference = tolerance * 0.75;
      for (let dy = -referenceRadius; dy <= referenceRadius; dy++) {
        const ny = sy + dy;
        if (ny < 0 || ny >= smallHeight) continue;
        for (let dx = -referenceRadius; dx <= referenceRadius; dx++) {
          const nx = sx + dx;
          if (nx < 0 || nx >= smallWidth) continue;
          const neighbour = ny * smallWidth + nx;
          if (outside[neighbour] === 0 && distance[neighbour]! > reference) {
            reference = distance[neighbour]!;
          }
        }
      }
      // 3×3 mean at full resolution: the same denoising the binned classification had.
      let r = 0;
      let g = 0;
      let b = 0;
      let count = 0;
      for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
          const p = (ny * width + nx) * channels;
          r += data[p]!;
          g += data[p + 1]!;
          b += data[p + 2]!;
          count++;
        }
      }
      r /= count;
      g /= count;
      b /= count;
      const u = (2 * (x + 0.5)) / width - 1;
      let br = 0;
      let bg = 0;
      let bb = 0;
      for (let i = degree; i >= 0; i--) {
        br = br * u + coefficients[i]!;
        bg = bg * u + coefficients[degree + 1 + i]!;
        bb = bb * u + coefficients[2 * (degree + 1) + i]!;
      }
      const measure = measureAgainstBackdrop(r, g, b, br, bg, bb);
      const weight = structure[sy * smallWidth + sx]!;
      const pixelDistance = measure.chroma * (1 - weight) + measure.distance * weight;
      const alpha = clamp01((pixelDistance - noiseFloor) / (reference - noiseFloor));
      const target = index * 4;
      output[target + 3] = Math.round(alpha * 255);
      if (alpha > 0 && alpha < 1) {
        // Remove the backdrop's share from the edge colour (un-mixing), limited so that noise
        // in faint pixels is not amplified.
        const gain = 1 / Math.max(alpha, 0.3);
        output[target] = clampByte(br + (output[target]! - br) * gain);
        output[target + 1] = clampByte(bg + (output[target + 1]! - bg) * gain);
        output[target + 2] = clampByte(bb + (output[target + 2]! - bb) * gain);
      }
    }
  }
  return { data: output, width, height, channels: 4 };
}

/** Per row, the backdrop polynomial's coefficients in u: [R0..Rd, G0..Gd, B0..Bd]. */
function backdropRows(model: BackdropModel, height: number): Float64Array[] {
  const terms = monomials(model.degree);
  const stride = model.degree + 1;
  const rows: Float64Array[] = [];
  for (let y = 0; y < height; y++) {
    const v = (2 * (y + 0.5)) / height - 1;
    const row = new Float64Array(stride * 3);
    for (let channel = 0; channel < 3; channel++) {
      for (let k = 0; k < terms.length; k++) {
        const [i, j] = terms[k]!;
        row[channel * stride + i]! += model.coefficients[channel]![k]! * v ** j;
      }
    }
    rows.push(row);
  }
  return rows;
}

function colourDistance(
  a: readonly [number, number, number],
  b: readonly [number, number, number],
): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

function medianOf(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function clamp01(value: number): number {
  return Math.max(0, Math.min(1, value));
}

function clampByte(value: number): number {
  return value < 0 ? 0 : value > 255 ? 255 : Math.round(value);
}
