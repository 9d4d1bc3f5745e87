/**
 * Uncached 800-px WebP renditions per second through Shotlist ÷ unjs/ipx on the same images.
 *
 *   node --import tsx bench/renditions.ts [--rounds 3] [--images 52]
 *
 * Figure: Shotlist's rendition function (src/pipeline/rendition.ts: read the source bytes,
 * decode with the pixel guard, resize to 800 px inside, WebP q80) on the sample catalogue's
 * photos, 2 at a time (one per core here). Baseline: ipx 3 (createIPX + ipxFSStorage) making
 * the same `w=800, f=webp, q=80` renditions of the same files, 2 at a time. The two alternate
 * round by round and are pooled, so drift on this shared machine hits both. Target ratio ≥ 1.0.
 */
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createIPX, ipxFSStorage } from "ipx";
import { resolveRendition } from "../src/domain/rendition.js";
import { DEFAULT_MAX_PIXELS } from "../src/pipeline/decode.js";
import { renderRendition } from "../src/pipeline/rendition.js";
import { intOption, mapLimited, printResult, round, runAsScript, say, timed } from "./harness.js";

const IMAGE_DIR = fileURLToPath(new URL("../examples/catalogue/images/", import.meta.url));
const CONCURRENCY = 2;
const WIDTH_PX = 800;
const QUALITY = 80;

async function main(): Promise<void> {
  const rounds = intOption(process.argv, "rounds", 3);
  const names = readdirSync(IMAGE_DIR)
    .filter((name) => name.endsWith(".jpg"))
    .sort()
    .slice(0, intOption(process.argv, "images", 52));
  const spec = resolveRendition({ w: WIDTH_PX, format: "webp", q: QUALITY }, undefined);
  const ipx = createIPX({ storage: ipxFSStorage({ dir: IMAGE_DIR }) });

  const shotlistRound = () =>
    mapLimited(names, CONCURRENCY, async (name) => {
      const source = await readFile(join(IMAGE_DIR, name));
      const made = await renderRendition(source, spec, { maxPixels: DEFAULT_MAX_PIXELS });
      if (made.width !== WIDTH_PX) throw new Error(`${name}: rendition is ${made.width} px wide`);
      return made.bytes.length;
    });
  const ipxRound = () =>
    mapLimited(names, CONCURRENCY, async (name) => {
      const made = await ipx(name, {
        w: String(WIDTH_PX),
        f: "webp",
        q: String(QUALITY),
      }).process();
      if (made.format !== "webp") throw new Error(`${name}: ipx made ${made.format}`);
      return made.data.length;
    });

  // One warm-up each: libvips and ipx's first call load codecs and thread pools.
  await shotlistRound();
  await ipxRound();
  let shotlistMs = 0;
  let ipxMs = 0;
  let shotlistBytes = 0;
  let ipxBytes = 0;
  for (let index = 0; index < rounds; index++) {
    const ours = await timed(shotlistRound);
    const theirs = await timed(ipxRound);
    shotlistMs += ours.ms;
    ipxMs += theirs.ms;
    shotlistBytes += ours.result.reduce((sum, size) => sum + size, 0);
    ipxBytes += theirs.result.reduce((sum, size) => sum + size, 0);
    say(
      `round ${index + 1}: shotlist ${round((names.length * 1000) / ours.ms, 1)}/s, ipx ${round((names.length * 1000) / theirs.ms, 1)}/s`,
    );
  }
  const renditions = names.length * rounds;
  const figure = (renditions * 1000) / shotlistMs;
  const baseline = (renditions * 1000) / ipxMs;
  say(
    `${renditions} renditions each, ${names.length} source photos (1200×1200 JPEG), ${CONCURRENCY} at a time`,
  );
  say(`shotlist: ${round(figure, 2)} renditions/s; ipx: ${round(baseline, 2)} renditions/s`);
  printResult({
    bench: "renditions",
    figure,
    baseline,
    ratio: figure / baseline,
    unit: "renditions/s",
    extra: {
      images: names.length,
      rounds,
      widthPx: WIDTH_PX,
      shotlistMeanBytes: Math.round(shotlistBytes / renditions),
      ipxMeanBytes: Math.round(ipxBytes / renditions),
    },
  });
}

runAsScript(import.meta.url, main);
