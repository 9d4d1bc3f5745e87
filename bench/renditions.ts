/**
 * Uncached 800-px WebP renditions per second through Shotlist ÷ unjs/ipx on the same images.
 *
 *   node --import tsx bench/renditions.ts [--photos 52] [--rounds 3] [--connections 2]
 *
 * Figure (over HTTP, the load from a second process, as the issue asks): `--rounds` × `--photos`
 * products, each a sample-catalogue photo tagged with its SKU (same pixels, own bytes, own
 * recipe), imaged once with the shipped hero recipe (1,600 px JPEG) before anything is timed;
 * the worker then stops. Each round, autocannon (bench/renditions-load.ts, its own process)
 * asks Shotlist `GET /i/{sku}/hero/pdp` with `Accept: image/webp` once for each of the round's
 * products: every request is a rendition nobody has made yet (slot lookup, single-flight claim,
 * source read, decode, resize to 800 px inside, WebP q80, blob write, answer). Baseline: ipx 3's
 * Node server (`createIPXNodeServer`, `ipxFSStorage` on Shotlist's own blob folder) asked
 * `GET /s_800x800,fit_inside,f_webp,q_80/assets/…` for the very same hero files, same
 * connections. The two alternate round by round (mirrored) and are pooled.
 *
 * Printed beside it, not the figure: the engines alone, in process (`renderRendition` against
 * `createIPX(...)(id, modifiers).process()`), on the same hero files, 2 at a time.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createIPX, createIPXNodeServer, ipxFSStorage } from "ipx";
import { heroOnlyShotList } from "../examples/shot-lists.js";
import { assetKey } from "../src/blobs/store.js";
import { loadSettings } from "../src/config/env.js";
import { resolveRendition } from "../src/domain/rendition.js";
import { buildApp } from "../src/http/app.js";
import { submitProduct } from "../src/intake/submit.js";
import { createLogger } from "../src/observability/logger.js";
import { DEFAULT_MAX_PIXELS } from "../src/pipeline/decode.js";
import { renderRendition } from "../src/pipeline/rendition.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { countOpenJobs } from "../src/store/jobs.js";
import {
  intOption,
  makeTempDir,
  mapLimited,
  note,
  printResult,
  round,
  runAsScript,
  say,
  taggedJpeg,
  timed,
  waitUntil,
} from "./harness.js";

const IMAGE_DIR = fileURLToPath(new URL("../examples/catalogue/images/", import.meta.url));
const LOAD = fileURLToPath(new URL("./renditions-load.ts", import.meta.url));
const WIDTH_PX = 800;
const QUALITY = 80;
/** What `pdp` with `Accept: image/webp` resolves to, in ipx's modifiers. */
const IPX_MODIFIERS = `s_${WIDTH_PX}x${WIDTH_PX},fit_inside,f_webp,q_${QUALITY}`;

interface HeroFile {
  sku: string;
  /** The hero asset's path inside the blob folder, as ipx's storage sees it. */
  key: string;
}

interface Load {
  ms: number;
  total: number;
  non2xx: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  webp: number;
  fallbacks: number;
}

/** Each path once, `connections` at a time, from autocannon in its own process. */
async function load(
  origin: string,
  paths: readonly string[],
  connections: number,
  scratch: string,
): Promise<Load> {
  const file = join(scratch, "paths.json");
  writeFileSync(file, JSON.stringify(paths));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", LOAD, origin, String(connections), file],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`renditions-load exited with ${code}`);
  const result = JSON.parse(stdout) as Load;
  if (result.errors > 0 || result.non2xx > 0 || result.total !== paths.length) {
    throw new Error(`load against ${origin}: ${JSON.stringify(result)}`);
  }
  if (result.webp !== paths.length || result.fallbacks > 0) {
    throw new Error(`load against ${origin}: not every answer was a WebP rendition`);
  }
  return result;
}

async function listen(server: Server): Promise<string> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function renditionsMade(runtime: Runtime): Promise<number> {
  const values = (await runtime.metrics.onDemandRequests.get()).values;
  return values
    .filter((value) => value.labels.outcome === "rendition_made")
    .reduce((total, value) => total + value.value, 0);
}

/** Submits a round's products (the worker images their heroes); returns their SKUs. */
async function submitHeroes(
  runtime: Runtime,
  photos: readonly string[],
  roundNumber: number,
): Promise<string[]> {
  const skus: string[] = [];
  for (const [index, name] of photos.entries()) {
    const sku = `BENCH-RND-${roundNumber}-${String(index + 1).padStart(3, "0")}`;
    skus.push(sku);
    const photo = taggedJpeg(readFileSync(join(IMAGE_DIR, name)), sku);
    await submitProduct(runtime.intake, {
      sku,
      title: `Bench product ${sku}`,
      category: "home",
      referenceImages: [{ base64: photo.toString("base64") }],
    });
  }
  return skus;
}

/** Each product's published hero file. */
async function heroFiles(runtime: Runtime, skus: readonly string[]): Promise<HeroFile[]> {
  const rows = await runtime.db.query<{ sku: string; sha256: string; ext: string }>(
    `select s.product_sku as sku, a.sha256, a.ext from product_slots s
       join assets a on a.id = s.asset_id
     where s.slot = 'hero' and s.state = 'published' and s.product_sku = any($1::text[])`,
    [skus],
  );
  const bySku = new Map(rows.map((row) => [row.sku, assetKey(row.sha256, row.ext)]));
  return skus.map((sku) => {
    const key = bySku.get(sku);
    if (!key) throw new Error(`${sku}: no published hero`);
    return { sku, key };
  });
}

async function main(): Promise<void> {
  const photoCount = intOption(process.argv, "photos", 52);
  const rounds = intOption(process.argv, "rounds", 3);
  const connections = intOption(process.argv, "connections", 2);
  const photos = readdirSync(IMAGE_DIR)
    .filter((name) => name.endsWith(".jpg"))
    .sort()
    .filter((_, index, all) => index % Math.max(1, Math.floor(all.length / photoCount)) === 0)
    .slice(0, photoCount);
  const temp = makeTempDir("renditions");
  writeFileSync(join(temp.path, "shotlist.yaml"), heroOnlyShotList(1600));
  const settings = loadSettings({
    SHOTLIST_DATA_DIR: join(temp.path, "data"),
    SHOTLIST_CONFIG: join(temp.path, "shotlist.yaml"),
    SHOTLIST_LOG_LEVEL: "warn",
    PORT: "0",
  });
  const runtime = await createRuntime(settings, createLogger("warn"));
  const app = await buildApp(runtime);
  const ipx = createIPX({ storage: ipxFSStorage({ dir: settings.storage }) });
  const ipxServer = createServer(createIPXNodeServer(ipx));
  try {
    // Every hero made before anything is timed (one more round for the warm-up).
    const worker = runtime.startWorker({ pollMs: 20 });
    const pending: string[][] = [];
    for (let index = 0; index <= rounds; index++) {
      pending.push(await submitHeroes(runtime, photos, index));
    }
    await waitUntil(
      async () => (await countOpenJobs(runtime.db)) === 0,
      "the heroes to be made",
      600_000,
      500,
    );
    await worker.stop();
    const sets: HeroFile[][] = [];
    for (const skus of pending) sets.push(await heroFiles(runtime, skus));

    await app.listen({ port: 0, host: "127.0.0.1" });
    const shotlistOrigin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const ipxOrigin = await listen(ipxServer);
    const shotlistPaths = (heroes: readonly HeroFile[]) =>
      heroes.map((hero) => `/i/${hero.sku}/hero/pdp`);
    const ipxPaths = (heroes: readonly HeroFile[]) =>
      heroes.map((hero) => `/${IPX_MODIFIERS}/${hero.key}`);

    // Warm-up round (its own products): JIT, libvips, both servers' first requests.
    const [warm, ...timedSets] = sets as [HeroFile[], ...HeroFile[][]];
    await load(shotlistOrigin, shotlistPaths(warm), connections, temp.path);
    await load(ipxOrigin, ipxPaths(warm), connections, temp.path);

    const ours: Load[] = [];
    const theirs: Load[] = [];
    for (const [index, heroes] of timedSets.entries()) {
      const madeBefore = await renditionsMade(runtime);
      const runOurs = () => load(shotlistOrigin, shotlistPaths(heroes), connections, temp.path);
      const runTheirs = () => load(ipxOrigin, ipxPaths(heroes), connections, temp.path);
      let mine: Load;
      let other: Load;
      if (index % 2 === 0) {
        mine = await runOurs();
        other = await runTheirs();
      } else {
        other = await runTheirs();
        mine = await runOurs();
      }
      const made = (await renditionsMade(runtime)) - madeBefore;
      if (made !== heroes.length) {
        throw new Error(
          `round ${index + 1}: ${made} renditions made for ${heroes.length} requests`,
        );
      }
      ours.push(mine);
      theirs.push(other);
      say(
        `  round ${index + 1}: shotlist ${round((heroes.length * 1000) / mine.ms, 2)}/s (p99 ${mine.p99Ms} ms), ipx ${round((heroes.length * 1000) / other.ms, 2)}/s (p99 ${other.p99Ms} ms)`,
      );
    }
    const requests = timedSets.reduce((total, heroes) => total + heroes.length, 0);
    const totalMs = (loads: readonly Load[]) => loads.reduce((total, run) => total + run.ms, 0);
    const figure = (requests * 1000) / totalMs(ours);
    const baseline = (requests * 1000) / totalMs(theirs);
    const p99 = (loads: readonly Load[]) => Math.max(...loads.map((run) => run.p99Ms));

    // The engines alone, in process, on the first timed round's hero files.
    note("engines alone, in process");
    const files = timedSets[0]!.map((hero) => join(settings.storage, hero.key));
    const spec = resolveRendition(
      { w: WIDTH_PX, h: WIDTH_PX, fit: "inside", format: "webp", q: QUALITY },
      undefined,
    );
    const engineOurs = () =>
      mapLimited(files, connections, async (file) => {
        const made = await renderRendition(readFileSync(file), spec, {
          maxPixels: DEFAULT_MAX_PIXELS,
        });
        if (made.width !== WIDTH_PX) throw new Error(`${file}: ${made.width} px wide`);
        return made.bytes.length;
      });
    const ipxKeys = timedSets[0]!.map((hero) => hero.key);
    const engineTheirs = () =>
      mapLimited(ipxKeys, connections, async (key) => {
        const made = await ipx(key, {
          s: `${WIDTH_PX}x${WIDTH_PX}`,
          fit: "inside",
          f: "webp",
          q: String(QUALITY),
        }).process();
        if (made.format !== "webp") throw new Error(`${key}: ipx made ${made.format}`);
        return made.data.length;
      });
    let engineOursMs = 0;
    let engineTheirsMs = 0;
    let oursBytes = 0;
    let theirsBytes = 0;
    for (let pass = 0; pass < 2; pass++) {
      const first = await timed(pass === 0 ? engineOurs : engineTheirs);
      const second = await timed(pass === 0 ? engineTheirs : engineOurs);
      const [a, b] = pass === 0 ? [first, second] : [second, first];
      engineOursMs += a.ms;
      engineTheirsMs += b.ms;
      oursBytes += a.result.reduce((sum, size) => sum + size, 0);
      theirsBytes += b.result.reduce((sum, size) => sum + size, 0);
    }
    const engineRatio = engineTheirsMs / engineOursMs;

    say(
      `renditions: ${rounds} rounds × ${photos.length} uncached 800-px WebP renditions of 1,600-px hero JPEGs over HTTP, ${connections} connections, load from a second process`,
    );
    say(
      `  shotlist /i/{sku}/hero/pdp: ${round(figure, 2)} renditions/s (p99 ${p99(ours)} ms); ipx 3 server: ${round(baseline, 2)} renditions/s (p99 ${p99(theirs)} ms)`,
    );
    say(`  ratio shotlist / ipx: ${round(figure / baseline, 3)} (target ≥ 1.0)`);
    say(
      `  engines alone, in process, 2 passes × ${files.length}: shotlist ÷ ipx ${round(engineRatio, 3)}; mean bytes ${Math.round(oursBytes / (2 * files.length))} vs ${Math.round(theirsBytes / (2 * files.length))}`,
    );
    printResult({
      bench: "renditions",
      figure,
      baseline,
      ratio: figure / baseline,
      unit: "renditions/s",
      extra: {
        photos: photos.length,
        rounds,
        connections,
        widthPx: WIDTH_PX,
        shotlistP99Ms: p99(ours),
        ipxP99Ms: p99(theirs),
        engineRatio: round(engineRatio, 4),
        engineShotlistMeanBytes: Math.round(oursBytes / (2 * files.length)),
        engineIpxMeanBytes: Math.round(theirsBytes / (2 * files.length)),
      },
    });
  } finally {
    ipxServer.close();
    await app.close();
    await runtime.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
