import { Piscina } from "piscina";
import { type CutoutOptions, cutout } from "./cutout.js";
import type { RawImage, RgbaImage } from "./decode.js";
import type { CutoutTask } from "./pixel-worker.js";

/**
 * Pixel threads: the background removal's per-pixel JavaScript (170–250 ms for a 1,200 px
 * photo, most of the main thread's work in a backfill) runs on a small pool of worker threads
 * (piscina), so it neither blocks the event loop (HTTP answers, on-demand deadlines, heartbeats)
 * nor serialises two jobs' cut-outs on one core. Same code, same result as inline.
 *
 * `SHOTLIST_PIXEL_THREADS` sets the pool's size (unset: the cores in `start` and `serve`, 0 in
 * other commands; decision 0009); 0 runs inline.
 */
let threads = 0;
let pool: Piscina | undefined;

/** Sets the pool's size for what follows (the runtime calls it with its setting); 0 = inline. */
export function setPixelThreads(count: number): void {
  if (!Number.isInteger(count) || count < 0) throw new RangeError("pixel threads: 0 or more");
  if (count === threads) return;
  threads = count;
  const old = pool;
  pool = undefined;
  // Tasks already given to the old pool finish there; its idle threads are let go.
  void old?.close();
}

/**
 * Lets the pool's threads go once their tasks are done (the runtime's close; the process-wide
 * setting is then 0, so a later runtime starts a new pool).
 */
export async function closePixelThreads(): Promise<void> {
  const old = pool;
  threads = 0;
  pool = undefined;
  await old?.close();
}

/** The pool's size now (0 = cut-outs run inline). */
export function pixelThreadCount(): number {
  return threads;
}

function workerUrl(): string {
  // Under tsx (tests, benches) this module is the .ts source; built, it is dist/…/*.js.
  const ext = import.meta.url.endsWith(".ts") ? "ts" : "js";
  return new URL(`./pixel-worker.${ext}`, import.meta.url).href;
}

/** `cutout` (cutout.ts) on a pixel thread; inline when the pool has no threads. */
export async function cutoutOffThread(image: RawImage, options: CutoutOptions): Promise<RgbaImage> {
  if (threads === 0) return cutout(image, options);
  if (image.channels !== 3 && image.channels !== 4) return cutout(image, options);
  pool ??= new Piscina({
    filename: workerUrl(),
    minThreads: 0,
    maxThreads: threads,
    idleTimeout: 60_000,
  });
  const task: CutoutTask = {
    data: image.data,
    width: image.width,
    height: image.height,
    channels: image.channels,
    options,
  };
  const data: Uint8Array = await pool.run(task);
  return {
    data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    width: image.width,
    height: image.height,
    channels: 4,
  };
}
