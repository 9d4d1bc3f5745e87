import sharp from "sharp";
import { ShotlistError } from "../domain/errors.js";
import type { OutputFormat, Recipe, Step } from "../domain/recipe.js";
import { measureSubjectFill } from "./checks.js";
import { luma, parseColour, WHITE } from "./colors.js";
import { cropToSubject } from "./crop.js";
import { decodeToRgba, type RawImage, type RgbaImage } from "./decode.js";
import { encodeImage } from "./encode.js";
import { cutoutOffThread } from "./pixel-threads.js";
import { type Frame, flattenFrame, placeSubject } from "./place.js";
import { placeOnScene } from "./scene.js";
import { addContactShadow } from "./shadow.js";
import { drawSwatchGrid } from "./swatch.js";
import { buildXmp } from "./xmp.js";

/**
 * Version of the local pipeline's algorithms, recorded in every local recipe's modelVersion.
 * Bump it whenever a change alters output pixels, so stale assets can be found and regenerated.
 */
export const PIPELINE_VERSION = "1";

/** Per-pixel steps work on at most this many pixels; larger photos are shrunk first. */
const MAX_WORKING_PIXELS = 16_000_000;
/** A frame whose background is at least this light is measured as "on white" for fill. */
const WHITE_BACKGROUND_MIN_LUMA = 240;

export interface RenderOptions {
  /** Decompression-bomb guard for reference photos (DESIGN §9). */
  maxPixels: number;
  /** Written into the output's XMP, so the file names its own provenance. */
  recipeHash: string;
  /** IPTC digital source type for the XMP; omit for local renders (they are not AI media). */
  digitalSourceType?: string;
  /** Checked between steps: an aborted job stops at the next step boundary. */
  signal?: AbortSignal;
  /**
   * Also measure the subject's fill on the finished pixels (`subjectFill`), for tests and tools.
   * Default false, as in the worker: its checks measure the published output, and a full scan of a 1,600 px
   * frame on the main thread for a value nobody read was 15–20 ms of every job.
   */
  measureFill?: boolean;
}

export interface RenderResult {
  bytes: Buffer;
  format: OutputFormat;
  width: number;
  height: number;
  /**
   * With `measureFill`: measured on the flattened pixels for white frames; the placed ratio for
   * scenes.
   */
  subjectFill?: number;
}

/** What the steps have made so far: a subject (photo or cut-out) and, once placed, a frame. */
interface RenderState {
  subject?: RgbaImage;
  frame?: Frame;
}

/**
 * Makes a recipe's image with the local pipeline: reads the source, applies the steps in order
 * (ipx style: operations are data), encodes to the output spec with XMP. Deterministic: the same
 * recipe and reference bytes give the same output bytes (the recipe's seed drives all variation).
 * A recipe that cannot be made here fails with `cannot_make_locally` and a reason, which the
 * caller turns into the review queue.
 */
export async function renderRecipe(
  recipe: Recipe,
  references: ReadonlyMap<string, Buffer>,
  options: RenderOptions,
): Promise<RenderResult> {
  const { output } = recipe;
  options.signal?.throwIfAborted();
  let state: RenderState = {};
  if (recipe.source.kind === "reference") {
    state.subject = await readSourceReference(recipe, references, options.maxPixels);
  }
  for (const step of recipe.steps) {
    options.signal?.throwIfAborted();
    state = await applyStep(step, state, recipe);
  }
  options.signal?.throwIfAborted();

  const pixels = await finish(state, recipe);
  const subjectFill = options.measureFill ? measureFill(state, pixels) : undefined;
  const xmp = buildXmp({
    recipeHash: options.recipeHash,
    ...(options.digitalSourceType === undefined
      ? {}
      : { digitalSourceType: options.digitalSourceType }),
  });
  const bytes = await encodeImage(pixels, output, xmp);
  return {
    bytes,
    format: output.format,
    width: output.width,
    height: output.height,
    ...(subjectFill === undefined ? {} : { subjectFill }),
  };
}

/**
 * The local half of a mixed recipe: `recipe.then` applied to a paid provider's output, which is
 * the subject (its alpha, if any, is the cut-out: crop and place read it), then finished and
 * encoded to the recipe's output with XMP like any render. Deterministic for the same output
 * bytes, so a retry that reuses the ledger's stored output makes the same asset.
 */
export async function renderOnImage(
  recipe: Recipe,
  image: Buffer,
  options: RenderOptions,
): Promise<RenderResult> {
  options.signal?.throwIfAborted();
  let state: RenderState = {
    subject: await decodeToRgba(image, {
      maxPixels: options.maxPixels,
      maxWorkingPixels: MAX_WORKING_PIXELS,
    }),
  };
  for (const step of recipe.then ?? []) {
    options.signal?.throwIfAborted();
    state = await applyStep(step, state, recipe);
  }
  options.signal?.throwIfAborted();
  const pixels = await finish(state, recipe);
  const subjectFill = options.measureFill ? measureFill(state, pixels) : undefined;
  const xmp = buildXmp({
    recipeHash: options.recipeHash,
    ...(options.digitalSourceType === undefined
      ? {}
      : { digitalSourceType: options.digitalSourceType }),
  });
  const bytes = await encodeImage(pixels, recipe.output, xmp);
  return {
    bytes,
    format: recipe.output.format,
    width: recipe.output.width,
    height: recipe.output.height,
    ...(subjectFill === undefined ? {} : { subjectFill }),
  };
}

/**
 * The `input: cutout` of a paid link: the recipe's reference photo through the local `cutout`
 * and `crop` steps, as a lossless PNG with alpha. Deterministic (same reference, same pipeline
 * version → same bytes), so the provider's input is known by content hash.
 */
export async function renderCutoutInput(
  recipe: Recipe,
  references: ReadonlyMap<string, Buffer>,
  options: Pick<RenderOptions, "maxPixels" | "signal">,
): Promise<Buffer> {
  options.signal?.throwIfAborted();
  const photo = await readSourceReference(recipe, references, options.maxPixels);
  const subject = cropToSubject(await cutoutOffThread(photo, {}), {});
  options.signal?.throwIfAborted();
  return sharp(subject.data, {
    raw: { width: subject.width, height: subject.height, channels: 4 },
  })
    .png({ compressionLevel: 8, adaptiveFiltering: true })
    .toBuffer();
}

async function readSourceReference(
  recipe: Recipe,
  references: ReadonlyMap<string, Buffer>,
  maxPixels: number,
): Promise<RgbaImage> {
  if (recipe.source.kind !== "reference") throw new TypeError("not a reference source");
  const photoNumber = recipe.source.index + 1;
  // The planner puts exactly the one reference this slot reads into recipe.references.
  const referenceHash = recipe.references[0];
  if (referenceHash === undefined) {
    throw new ShotlistError(
      "cannot_make_locally",
      `slot ${recipe.slot} needs reference photo #${photoNumber}, which this product does not have`,
      { status: 422, extra: { slot: recipe.slot, referenceIndex: recipe.source.index } },
    );
  }
  const bytes = references.get(referenceHash);
  if (!bytes) {
    throw new ShotlistError(
      "cannot_make_locally",
      `slot ${recipe.slot} needs reference photo #${photoNumber} (sha256 ${referenceHash.slice(0, 12)}…), which was not supplied`,
      { status: 422, extra: { slot: recipe.slot, referenceHash } },
    );
  }
  return decodeToRgba(bytes, { maxPixels, maxWorkingPixels: MAX_WORKING_PIXELS });
}

async function applyStep(step: Step, state: RenderState, recipe: Recipe): Promise<RenderState> {
  const { width, height } = recipe.output;
  switch (step.op) {
    case "cutout":
      return {
        subject: await cutoutOffThread(requireUnplacedSubject(state, step.op, recipe), {
          ...(step.tolerance === undefined ? {} : { tolerance: step.tolerance }),
        }),
      };
    case "crop":
      return {
        subject: cropToSubject(requireUnplacedSubject(state, step.op, recipe), {
          ...(step.padding === undefined ? {} : { padding: step.padding }),
        }),
      };
    case "place":
      return {
        frame: await placeSubject(requireUnplacedSubject(state, step.op, recipe), {
          width,
          height,
          fill: step.fill,
          background: parseColour(step.background),
        }),
      };
    case "shadow":
      if (!state.frame) throw stepOrderError(recipe, "shadow", "needs place or scene before it");
      return {
        frame: await addContactShadow(state.frame, { opacity: step.opacity, blur: step.blur }),
      };
    case "scene":
      return {
        frame: await placeOnScene(requireUnplacedSubject(state, step.op, recipe), {
          scene: step.scene,
          fill: step.fill,
          width,
          height,
          seed: recipe.seed,
        }),
      };
    case "swatch-grid": {
      if (recipe.source.kind !== "variants") {
        throw stepOrderError(recipe, "swatch-grid", "needs the product's variants as its source");
      }
      if (recipe.inputs.swatches.length === 0) {
        throw new ShotlistError(
          "cannot_make_locally",
          `slot ${recipe.slot} is a swatch grid, but the product has no variant colours`,
          { status: 422, extra: { slot: recipe.slot } },
        );
      }
      const grid = await drawSwatchGrid(recipe.inputs.swatches, {
        columns: step.columns,
        width,
        height,
      });
      return { frame: { width, height, background: { kind: "image", image: grid } } };
    }
  }
}

function requireUnplacedSubject(state: RenderState, op: Step["op"], recipe: Recipe): RgbaImage {
  if (state.frame) throw stepOrderError(recipe, op, "cannot follow place, scene or swatch-grid");
  if (!state.subject) throw stepOrderError(recipe, op, "needs a reference photo as its source");
  return state.subject;
}

function stepOrderError(recipe: Recipe, op: string, reason: string): ShotlistError {
  return new ShotlistError("cannot_make_locally", `slot ${recipe.slot}: the ${op} step ${reason}`, {
    status: 422,
    extra: { slot: recipe.slot, op },
  });
}

/** Opaque RGB at the output size: the frame flattened, or the subject fitted inside on white. */
async function finish(state: RenderState, recipe: Recipe): Promise<RawImage> {
  const { width, height } = recipe.output;
  if (state.frame) return flattenFrame(state.frame);
  if (!state.subject) {
    throw stepOrderError(recipe, "render", "has no steps that make an image from its source");
  }
  // No place step: the whole subject fits the frame, centred on white.
  const { subject } = state;
  const scale = Math.min(width / subject.width, height / subject.height);
  const frame = await placeSubject(subject, {
    width,
    height,
    fill: Math.min(1, Math.max((subject.width * scale) / width, (subject.height * scale) / height)),
    background: WHITE,
  });
  return flattenFrame(frame);
}

function measureFill(state: RenderState, pixels: RawImage): number | undefined {
  const frame = state.frame;
  if (!frame?.subject) return undefined;
  if (
    frame.background.kind === "colour" &&
    luma(frame.background.colour) >= WHITE_BACKGROUND_MIN_LUMA
  ) {
    return Math.round(measureSubjectFill(pixels).fill * 1000) / 1000;
  }
  return frame.fill === undefined ? undefined : Math.round(frame.fill * 1000) / 1000;
}
