import sharp from "sharp";
import { ShotlistError } from "../domain/errors.js";
import { mix, parseColour, type Rgb, seededRandom, toHex } from "./colors.js";
import type { RgbaImage } from "./decode.js";
import { type Frame, scaleSubject } from "./place.js";
import { drawContactShadow } from "./shadow.js";

/** A scene's palette and layout; each render varies it a little from the recipe's seed. */
interface SceneStyle {
  wallTop: string;
  wallBottom: string;
  floorFar: string;
  floorNear: string;
  /** Horizon (where wall meets floor) as a share of the frame height. */
  horizon: number;
  /** Warm or cool tint of the window light. */
  light: string;
  /** Extra SVG drawn over the wall and floor (skirting, tiles, planks, hills). */
  details: (
    size: { width: number; height: number; horizonY: number },
    random: () => number,
  ) => string;
}

const SCENES: Record<string, SceneStyle> = {
  "living-room": {
    wallTop: "#e9e2d8",
    wallBottom: "#d9cfc2",
    floorFar: "#a9825e",
    floorNear: "#8a6446",
    horizon: 0.62,
    light: "#fff6e8",
    details: ({ width, height, horizonY }, random) => {
      const skirtingPx = height * 0.025;
      let planks = "";
      const count = 7 + Math.floor(random() * 4);
      for (let i = 1; i < count; i++) {
        // Floor planks converge towards a vanishing point above the frame's centre.
        const nearX = (width * i) / count;
        const farX = width / 2 + (nearX - width / 2) * 0.55;
        planks += `<line x1="${farX.toFixed(1)}" y1="${horizonY.toFixed(1)}" x2="${nearX.toFixed(1)}" y2="${height}" stroke="#000" stroke-opacity="0.08" stroke-width="${(width / 600).toFixed(2)}"/>`;
      }
      return `${planks}<rect x="0" y="${(horizonY - skirtingPx).toFixed(1)}" width="${width}" height="${skirtingPx.toFixed(1)}" fill="#f4f0ea"/>
        <rect x="0" y="${horizonY.toFixed(1)}" width="${width}" height="${(height * 0.004).toFixed(1)}" fill="#000" fill-opacity="0.12"/>`;
    },
  },
  kitchen: {
    wallTop: "#eef0ee",
    wallBottom: "#e1e5e2",
    floorFar: "#cfc8bd",
    floorNear: "#b9b0a3",
    horizon: 0.58,
    light: "#f4f8ff",
    details: ({ width, horizonY }, random) => {
      // Subway tiles on the splashback, a worktop edge at the horizon.
      const tileW = width / (9 + Math.floor(random() * 3));
      const tileH = tileW / 2;
      let tiles = "";
      for (let row = 0; row * tileH < horizonY; row++) {
        const y = horizonY - (row + 1) * tileH;
        tiles += `<line x1="0" y1="${y.toFixed(1)}" x2="${width}" y2="${y.toFixed(1)}" stroke="#9aa39d" stroke-opacity="0.25" stroke-width="1"/>`;
        for (let x = (row % 2) * (tileW / 2); x < width; x += tileW) {
          tiles += `<line x1="${x.toFixed(1)}" y1="${y.toFixed(1)}" x2="${x.toFixed(1)}" y2="${(y + tileH).toFixed(1)}" stroke="#9aa39d" stroke-opacity="0.25" stroke-width="1"/>`;
        }
      }
      return `${tiles}<rect x="0" y="${horizonY.toFixed(1)}" width="${width}" height="${(tileH * 0.35).toFixed(1)}" fill="#ffffff" fill-opacity="0.35"/>`;
    },
  },
  "studio-warm": {
    wallTop: "#e8d6c2",
    wallBottom: "#f1e3d3",
    floorFar: "#f1e3d3",
    floorNear: "#e6d2bd",
    horizon: 0.6,
    light: "#fff1de",
    // A paper sweep: no hard horizon, only a soft fold of light.
    details: ({ width, horizonY, height }) =>
      `<rect x="0" y="${(horizonY - height * 0.04).toFixed(1)}" width="${width}" height="${(height * 0.08).toFixed(1)}" fill="#ffffff" fill-opacity="0.10"/>`,
  },
  // The stock-template fallback's backdrop (issue 5 §5): a plain light-grey sweep, no props, so
  // it suits any category when nothing better could be made.
  "neutral-gradient": {
    wallTop: "#f4f4f4",
    wallBottom: "#e4e4e4",
    floorFar: "#e4e4e4",
    floorNear: "#d6d6d6",
    horizon: 0.62,
    light: "#ffffff",
    details: () => "",
  },
  outdoor: {
    wallTop: "#9cc3e6",
    wallBottom: "#dcebf4",
    floorFar: "#9db07a",
    floorNear: "#7a8f5a",
    horizon: 0.6,
    light: "#fffbe6",
    details: ({ width, horizonY, height }, random) => {
      // Distant hills on the horizon, a stone terrace under the subject.
      const hillsY = horizonY - height * (0.05 + random() * 0.04);
      const ridge = Array.from({ length: 7 }, (_, i) => {
        const x = (width * i) / 6;
        const y = hillsY + (random() - 0.5) * height * 0.05;
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      }).join(" ");
      const terraceY = horizonY + (height - horizonY) * 0.25;
      return `<polygon points="0,${horizonY.toFixed(1)} ${ridge} ${width},${horizonY.toFixed(1)}" fill="#8aa39a" fill-opacity="0.7"/>
        <rect x="0" y="${terraceY.toFixed(1)}" width="${width}" height="${(height - terraceY).toFixed(1)}" fill="#cfc6b8"/>
        <rect x="0" y="${terraceY.toFixed(1)}" width="${width}" height="${(height * 0.006).toFixed(1)}" fill="#000" fill-opacity="0.12"/>`;
    },
  },
};

export const SCENE_NAMES: readonly string[] = Object.keys(SCENES);

/** Where the subject stands: the floor line is this share of the way from horizon to bottom. */
const FLOOR_LINE_SHARE = 0.55;

/**
 * Draws the named scene (wall and floor gradients, a horizon, details, window light), varied
 * by `seed`: the same seed always gives the same pixels. Returns opaque RGBA and the horizon.
 */
export async function drawScene(
  name: string,
  width: number,
  height: number,
  seed: number,
): Promise<{ image: RgbaImage; horizonY: number }> {
  const style = SCENES[name];
  if (!style) {
    throw new ShotlistError(
      "cannot_make_locally",
      `unknown scene "${name}"; the local pipeline draws ${SCENE_NAMES.join(", ")}`,
      { status: 422 },
    );
  }
  const random = seededRandom(seed);
  const jitter = (hex: string): string => {
    const shade = (random() - 0.5) * 0.12;
    const target: Rgb = shade > 0 ? { r: 255, g: 255, b: 255 } : { r: 0, g: 0, b: 0 };
    return toHex(mix(parseColour(hex), target, Math.abs(shade)));
  };
  const horizonY = height * (style.horizon + (random() - 0.5) * 0.06);
  const lightX = (0.15 + random() * 0.7).toFixed(3);
  const lightStrength = (0.35 + random() * 0.25).toFixed(3);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs>
      <linearGradient id="wall" x1="0" y1="0" x2="0" y2="1">
        <stop offset="0" stop-color="${jitter(style.wallTop)}"/>
        <stop offset="1" stop-color="${jitter(style.wallBottom)}"/>
      </linearGradient>
      <linearGradient id="floor" x1="0" y1="0" x2="0" y2="1">
        <stop offset="0" stop-color="${jitter(style.floorFar)}"/>
        <stop offset="1" stop-color="${jitter(style.floorNear)}"/>
      </linearGradient>
      <radialGradient id="light" cx="${lightX}" cy="0.25" r="0.8">
        <stop offset="0" stop-color="${style.light}" stop-opacity="${lightStrength}"/>
        <stop offset="1" stop-color="${style.light}" stop-opacity="0"/>
      </radialGradient>
      <linearGradient id="vignette" x1="0" y1="0" x2="0" y2="1">
        <stop offset="0.7" stop-color="#000" stop-opacity="0"/>
        <stop offset="1" stop-color="#000" stop-opacity="0.12"/>
      </linearGradient>
    </defs>
    <rect width="${width}" height="${horizonY.toFixed(1)}" fill="url(#wall)"/>
    <rect y="${horizonY.toFixed(1)}" width="${width}" height="${(height - horizonY).toFixed(1)}" fill="url(#floor)"/>
    ${style.details({ width, height, horizonY }, random)}
    <rect width="${width}" height="${height}" fill="url(#light)"/>
    <rect width="${width}" height="${height}" fill="url(#vignette)"/>
  </svg>`;
  // A slight blur reads as depth of field and hides the drawing's hard edges.
  const blurSigma = Math.max(0.3, Math.min(width, height) / 700);
  const data = await sharp(Buffer.from(svg)).blur(blurSigma).ensureAlpha().raw().toBuffer();
  return { image: { data, width, height, channels: 4 }, horizonY };
}

/**
 * The scene step: the cut-out standing on the scene's floor line, `fill` of the frame height
 * tall (at most 90% of its width), a little off-centre by seed, with a contact shadow.
 */
export async function placeOnScene(
  subject: RgbaImage,
  options: { scene: string; fill: number; width: number; height: number; seed: number },
): Promise<Frame> {
  const { width, height } = options;
  const { image, horizonY } = await drawScene(options.scene, width, height, options.seed);
  const scaled = await scaleSubject(
    subject,
    Math.round(width * 0.9),
    height,
    1,
    Math.min(1, options.fill),
  );
  const random = seededRandom(options.seed ^ 0x5eed);
  let baseY = horizonY + (height - horizonY) * FLOOR_LINE_SHARE;
  // Keep the whole subject in frame: if it is too tall to stand there, it stands lower.
  const minTopPx = height * 0.03;
  if (baseY - scaled.height < minTopPx) baseY = Math.min(height * 0.98, minTopPx + scaled.height);
  const offsetX = (random() - 0.5) * width * 0.08;
  const left = Math.round(
    Math.min(width - scaled.width, Math.max(0, (width - scaled.width) / 2 + offsetX)),
  );
  const top = Math.round(Math.min(height - scaled.height, baseY - scaled.height));
  const subjectLayer = { image: scaled, left, top };
  const shadow = await drawContactShadow(subjectLayer, {
    opacity: 0.45,
    blur: Math.max(4, scaled.width * 0.05),
  });
  return {
    width,
    height,
    background: { kind: "image", image },
    ...(shadow ? { shadow } : {}),
    subject: subjectLayer,
    fill: Math.max(scaled.width / width, scaled.height / height),
  };
}
