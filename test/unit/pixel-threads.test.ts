/**
 * Pixel threads (src/pipeline/pixel-threads.ts): background removal on a worker thread gives
 * the same bytes as on the main thread, keeps the event loop free while it runs, and runs
 * inline when the pool has no threads.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadSettings } from "../../src/config/env.js";
import { createLogger } from "../../src/observability/logger.js";
import { cutout } from "../../src/pipeline/cutout.js";
import {
  cutoutOffThread,
  pixelThreadCount,
  setPixelThreads,
} from "../../src/pipeline/pixel-threads.js";
import { createRuntime } from "../../src/runtime.js";
import { drawSyntheticStudioPhoto, studioCases } from "../fixtures/pipeline/synthetic.js";

describe("pixel threads", () => {
  after(() => setPixelThreads(0));

  it("cuts out on a worker thread exactly as on the main thread, several at once", async () => {
    setPixelThreads(2);
    const scenes = Object.values(studioCases(400)).slice(0, 4);
    const photos = await Promise.all(scenes.map((scene) => drawSyntheticStudioPhoto(scene)));
    const images = photos.map((photo) => ({
      data: photo.rgb,
      width: photo.width,
      height: photo.height,
      channels: 3 as const,
    }));
    const threaded = await Promise.all(images.map((image) => cutoutOffThread(image, {})));
    for (const [index, image] of images.entries()) {
      const inline = cutout(image, {});
      const made = threaded[index];
      assert.deepEqual([made?.width, made?.height, made?.channels], [image.width, image.height, 4]);
      assert.ok(made && Buffer.compare(made.data, inline.data) === 0, `scene ${index} differs`);
      // The caller's pixels were copied, not taken.
      assert.equal(image.data.length, image.width * image.height * 3);
    }
    // A tolerance reaches the thread: a huge one leaves nothing of the subject.
    const loose = await cutoutOffThread(images[0]!, { tolerance: 400 });
    assert.equal(Buffer.compare(loose.data, cutout(images[0]!, { tolerance: 400 }).data), 0);
  });

  it("leaves the event loop free while a cut-out runs on a thread", async () => {
    setPixelThreads(1);
    const photo = await drawSyntheticStudioPhoto(Object.values(studioCases(1200))[0]!);
    const image = {
      data: photo.rgb,
      width: photo.width,
      height: photo.height,
      channels: 3 as const,
    };
    await cutoutOffThread(image, {}); // the thread starts and warms up
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    await cutoutOffThread(image, {});
    const threadMs = performance.now() - started;
    clearInterval(timer);
    // Inline, not one 5-ms tick could fire during the cut-out; on a thread most of them do.
    assert.ok(
      ticks >= Math.floor(threadMs / 5 / 4),
      `${ticks} ticks in ${Math.round(threadMs)} ms`,
    );
    let inlineTicks = 0;
    const inlineTimer = setInterval(() => inlineTicks++, 5);
    setPixelThreads(0);
    await cutoutOffThread(image, {});
    clearInterval(inlineTimer);
    assert.equal(inlineTicks, 0, "with 0 threads the cut-out runs on the main thread");
  });

  it("sizes the pool from the runtime's setting and lets it go when the runtime closes", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "shotlist-threads-"));
    try {
      const runtime = await createRuntime(
        loadSettings({ SHOTLIST_DATA_DIR: dataDir, SHOTLIST_PIXEL_THREADS: "2" }),
        createLogger("silent"),
        { pixelThreads: 1 },
      );
      assert.equal(pixelThreadCount(), 2, "the variable wins over the command's default");
      await runtime.close();
      assert.equal(pixelThreadCount(), 0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses a negative or fractional pool size", () => {
    assert.throws(() => setPixelThreads(-1), RangeError);
    assert.throws(() => setPixelThreads(1.5), RangeError);
  });
});
