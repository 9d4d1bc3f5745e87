import sharp from "sharp";
import { ShotlistError } from "../domain/errors.js";
import type { Swatch } from "../domain/recipe.js";
import { escapeXml, luma, parseColour, toHex } from "./colors.js";
import type { RgbaImage } from "./decode.js";

/**
 * The swatch-grid step: one rounded tile per variant colour, `columns` across, its label
 * underneath, centred on white. Tiles of very light colours get a hairline so they still read
 * on the white page.
 */
export async function drawSwatchGrid(
  swatches: readonly Swatch[],
  options: { columns: number; width: number; height: number },
): Promise<RgbaImage> {
  if (swatches.length === 0) {
    throw new ShotlistError(
      "cannot_make_locally",
      "the swatch grid needs at least one variant colour; the product has none",
      {
        status: 422,
      },
    );
  }
  const { width, height } = options;
  const columns = Math.max(1, Math.min(Math.floor(options.columns), swatches.length));
  const rows = Math.ceil(swatches.length / columns);
  const marginPx = Math.min(width, height) * 0.06;
  const gapPx = Math.min(width, height) * 0.03;
  const cellWidth = (width - 2 * marginPx - (columns - 1) * gapPx) / columns;
  const labelShare = 0.24;
  const cellHeight = (height - 2 * marginPx - (rows - 1) * gapPx) / rows;
  const tilePx = Math.max(1, Math.min(cellWidth, cellHeight / (1 + labelShare)));
  const labelPx = tilePx * labelShare;
  const fontPx = Math.max(8, Math.min(labelPx * 0.55, cellWidth / 9));
  const gridWidth = columns * tilePx + (columns - 1) * gapPx;
  const gridHeight = rows * (tilePx + labelPx) + (rows - 1) * gapPx;
  const originX = (width - gridWidth) / 2;
  const originY = (height - gridHeight) / 2;
  const tiles = swatches.map((swatch, index) => {
    const colour = parseColour(swatch.color);
    const column = index % columns;
    const row = Math.floor(index / columns);
    const x = originX + column * (tilePx + gapPx);
    const y = originY + row * (tilePx + labelPx + gapPx);
    const outline =
      luma(colour) > 235
        ? ` stroke="#d0d0d0" stroke-width="${Math.max(1, tilePx / 120).toFixed(2)}"`
        : "";
    return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${tilePx.toFixed(1)}" height="${tilePx.toFixed(1)}" rx="${(tilePx * 0.06).toFixed(1)}" fill="${toHex(colour)}"${outline}/>
      <text x="${(x + tilePx / 2).toFixed(1)}" y="${(y + tilePx + labelPx * 0.7).toFixed(1)}" font-family="sans-serif" font-size="${fontPx.toFixed(1)}" fill="#333333" text-anchor="middle">${escapeXml(swatch.label)}</text>`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="${width}" height="${height}" fill="#ffffff"/>${tiles.join("")}</svg>`;
  const data = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer();
  return { data, width, height, channels: 4 };
}
