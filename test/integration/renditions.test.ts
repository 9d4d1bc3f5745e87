import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Fastify, { type FastifyInstance } from "fastify";
import sharp from "sharp";
import { signRenditionUrl } from "../../src/domain/rendition.js";
import { buildApp } from "../../src/http/app.js";
import { errorHandler } from "../../src/http/problem.js";
import { renditionRoutes } from "../../src/http/routes/renditions.js";
import { submitProduct } from "../../src/intake/submit.js";
import type { Worker } from "../../src/queue/worker.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
const enamel = (index: number) =>
  readFileSync(
    fileURLToPath(
      new URL(`../../examples/catalogue/images/MUG-ENAMEL-${index}.jpg`, import.meta.url),
    ),
  );
const SIGNING_KEY = "test-signing-key-0123456789abcdef";

/** Every file under a folder, recursively (missing folder → none). */
function filesUnder(path: string): string[] {
  try {
    return readdirSync(path, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
  } catch {
    return [];
  }
}

for (const backend of BACKENDS) {
  describe(`on-demand images (/i/) on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let worker: Worker;
    const renditionFiles = () => filesUnder(join(env.settings.storage, "renditions"));
    const counted = async (outcome: string) =>
      (await env.runtime.metrics.onDemandRequests.get()).values.find(
        (value) => value.labels.outcome === outcome,
      )?.value ?? 0;
    const renders = async () =>
      (await env.runtime.metrics.renditionDuration.get()).values
        .filter((value) => value.metricName === "shotlist_rendition_duration_seconds_count")
        .reduce((sum, value) => sum + value.value, 0);

    before(async () => {
      env = await createTestRuntime(backend, {
        SHOTLIST_SIGNING_KEY: SIGNING_KEY,
        // Long enough for a hero render on a busy machine; only slots whose job is queued or
        // running wait, and every slot set up in before() has finished.
        SHOTLIST_ONDEMAND_DEADLINE_MS: "20000",
      });
      app = await buildApp(env.runtime);
      worker = env.runtime.startWorker({ pollMs: 20 });
      await submitProduct(env.runtime.intake, {
        sku: "MUG-OD",
        title: "Stoneware Mug",
        category: "home",
        referenceImages: [{ base64: photo.toString("base64") }],
      });
      // No reference photo: nothing can be made locally, so no slot of it is ever published.
      await submitProduct(env.runtime.intake, {
        sku: "MUG-BARE",
        title: "Mug without photos",
        category: "home",
      });
      await waitFor(async () => (await countOpenJobs(env.runtime.db)) === 0, "jobs to finish");
    });
    after(async () => {
      await app.close();
      await worker.stop();
      await env.cleanup();
    });

    it("serves the current asset at the bare alias with the CDN caching of DESIGN §3", async () => {
      const response = await app.inject("/i/MUG-OD/hero");
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers["content-type"], "image/jpeg");
      assert.equal(
        response.headers["cache-control"],
        "public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400",
      );
      assert.match(String(response.headers.etag), /^"[0-9a-f]{64}"$/);
      assert.ok(!Number.isNaN(Date.parse(String(response.headers["last-modified"]))));
      assert.equal(response.headers["shotlist-fallback"], undefined);
      const head = await app.inject({ method: "HEAD", url: "/i/MUG-OD/hero" });
      assert.equal(head.statusCode, 200);
      assert.equal(head.headers.etag, response.headers.etag);
      assert.equal(head.body, "");
    });

    it("makes a preset rendition at the preset's size in the asked format", async () => {
      const thumb = await app.inject({
        url: "/i/MUG-OD/hero/thumb",
        headers: { accept: "image/webp,image/*;q=0.8" },
      });
      assert.equal(thumb.statusCode, 200, thumb.body);
      assert.equal(thumb.headers["content-type"], "image/webp");
      const meta = await sharp(thumb.rawPayload).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ["webp", 200, 200]);

      const pdp = await app.inject({ url: "/i/MUG-OD/hero/pdp", headers: { accept: "*/*" } });
      assert.equal(pdp.headers["content-type"], "image/jpeg");
      const pdpMeta = await sharp(pdp.rawPayload).metadata();
      assert.equal(pdpMeta.format, "jpeg");
      assert.ok(Math.max(pdpMeta.width ?? 0, pdpMeta.height ?? 0) <= 800);
    });

    it("negotiates AVIF from Accept under format=auto and says it varies on Accept", async () => {
      const response = await app.inject({
        url: "/i/MUG-OD/hero/thumb",
        headers: { accept: "image/avif,image/webp,*/*" },
      });
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers["content-type"], "image/avif");
      assert.equal(response.headers.vary, "Accept");
      const meta = await sharp(response.rawPayload).metadata();
      assert.equal(meta.format, "heif");
      assert.equal(meta.compression, "av1");
    });

    it("answers 304 to a matching If-None-Match and 200 to another tag", async () => {
      const url = "/i/MUG-OD/hero/thumb";
      const first = await app.inject({ url, headers: { accept: "image/webp" } });
      const etag = String(first.headers.etag);
      assert.match(etag, /^"[0-9a-f]{64}"$/);
      const again = await app.inject({
        url,
        headers: { accept: "image/webp", "if-none-match": etag },
      });
      assert.equal(again.statusCode, 304);
      assert.equal(again.body, "");
      // Another format is another representation: the AVIF tag does not match the WebP one.
      const other = await app.inject({
        url,
        headers: { accept: "image/avif", "if-none-match": etag },
      });
      assert.equal(other.statusCode, 200);
    });

    it("renders one missing rendition once for 50 concurrent requests", async () => {
      const url = signRenditionUrl(SIGNING_KEY, {
        sku: "MUG-OD",
        slot: "lifestyle",
        options: { w: 321, format: "webp", q: 70 },
      });
      const rendersBefore = await renders();
      const madeBefore = await counted("rendition_made");
      const filesBefore = renditionFiles().length;
      const responses = await Promise.all(
        Array.from({ length: 50 }, () => app.inject({ url, headers: { accept: "image/webp" } })),
      );
      for (const response of responses) assert.equal(response.statusCode, 200, response.body);
      assert.equal(new Set(responses.map((response) => response.body)).size, 1);
      assert.equal((await sharp(responses[0]?.rawPayload).metadata()).width, 321);
      assert.equal((await renders()) - rendersBefore, 1);
      assert.equal((await counted("rendition_made")) - madeBefore, 1);
      assert.equal(renditionFiles().length - filesBefore, 1);
      // And the next request finds it in the blob store.
      const rendersAfter = await renders();
      assert.equal((await app.inject(url)).statusCode, 200);
      assert.equal(await renders(), rendersAfter);
    });

    it("refuses custom options without a valid signature (403 problem+json)", async () => {
      const signed = signRenditionUrl(SIGNING_KEY, {
        sku: "MUG-OD",
        slot: "hero",
        options: { w: 300 },
      });
      const signature = new URL(signed, "http://x").searchParams.get("s");
      const cases = [
        "/i/MUG-OD/hero?w=300",
        `/i/MUG-OD/hero?w=301&s=${signature}`,
        `/i/MUG-OD/angle-1?w=300&s=${signature}`,
        `/i/MUG-OD/hero/thumb?w=300&s=${signature}`,
        signRenditionUrl("another-key-0123456789abcdef", {
          sku: "MUG-OD",
          slot: "hero",
          options: { w: 300 },
        }),
      ];
      for (const url of cases) {
        const response = await app.inject(url);
        assert.equal(response.statusCode, 403, url);
        assert.match(String(response.headers["content-type"]), /^application\/problem\+json/);
        assert.equal((response.json() as { code: string }).code, "signature_invalid");
      }
      assert.equal((await app.inject(signed)).statusCode, 200);
    });

    it("answers every bad value with a 400 problem+json and writes nothing", async () => {
      const filesBefore = renditionFiles();
      const rendersBefore = await renders();
      const bad = [
        "/i/MUG-OD/hero?w=0",
        "/i/MUG-OD/hero?w=100000",
        "/i/MUG-OD/hero?dpr=10",
        "/i/MUG-OD/hero?q=101",
        "/i/MUG-OD/hero?format=gif",
        "/i/MUG-OD/hero?fit=stretch",
        "/i/MUG-OD/hero?w=10&w=20",
        "/i/MUG-OD/hero?colour=red",
        "/i/MUG-OD/hero/huge",
        "/i/MUG-OD/hero/__proto__",
        "/i/..%2F..%2Fetc/hero",
        "/i/MUG%01OD/hero",
        "/i/MUG-OD/..%2Fhero",
        "/i/MUG-OD/hero%00",
        `/i/MUG-OD/hero?w=0&s=${"A".repeat(43)}`,
      ];
      for (const url of bad) {
        const response = await app.inject(url);
        assert.equal(response.statusCode, 400, `${url}: ${response.body}`);
        assert.match(String(response.headers["content-type"]), /^application\/problem\+json/);
        const problem = response.json() as { status: number; code: string };
        assert.equal(problem.status, 400);
        assert.ok(
          ["invalid_rendition_option", "invalid_sku", "unknown_slot"].includes(problem.code),
          `${url}: ${problem.code}`,
        );
      }
      assert.deepEqual(renditionFiles(), filesBefore);
      assert.equal(await renders(), rendersBefore);
      assert.equal((await app.inject("/i/NO-SUCH-SKU/hero")).statusCode, 404);
      assert.equal((await app.inject("/i/MUG-OD/no-such-slot")).statusCode, 404);
    });

    it("answers a slot without an asset with the hero, briefly cached and marked", async () => {
      const response = await app.inject({
        url: "/i/MUG-OD/angle-1/thumb",
        headers: { accept: "image/webp" },
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers["shotlist-fallback"], "hero");
      assert.equal(response.headers["cache-control"], "public, max-age=10");
      const meta = await sharp(response.rawPayload).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ["webp", 200, 200]);
      // The same bytes as the hero's thumb: the fallback is a rendition of the hero asset.
      const hero = await app.inject({
        url: "/i/MUG-OD/hero/thumb",
        headers: { accept: "image/webp" },
      });
      assert.equal(response.body, hero.body);
      assert.ok((await counted("fallback")) >= 1);
    });

    it("answers a product with nothing published with a neutral placeholder", async () => {
      const response = await app.inject({
        url: "/i/MUG-BARE/hero/thumb",
        headers: { accept: "image/png" },
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers["shotlist-fallback"], "placeholder");
      assert.equal(response.headers["cache-control"], "public, max-age=10");
      const { data, info } = await sharp(response.rawPayload)
        .raw()
        .toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [200, 200]);
      assert.ok(
        data.every((value) => value === 238),
        "placeholder is one neutral grey",
      );
      const bare = await app.inject("/i/MUG-BARE/angle-2");
      assert.equal(bare.headers["shotlist-fallback"], "placeholder");
      assert.equal(bare.headers["content-type"], "image/jpeg");
    });

    it("waits for a slot being rendered and answers the real image within the deadline", async () => {
      const generatedBefore = await counted("generated");
      await submitProduct(env.runtime.intake, {
        sku: "MUG-LATE",
        title: "Enamel Mug",
        category: "home",
        referenceImages: [{ base64: enamel(1).toString("base64") }],
      });
      const response = await app.inject({
        url: "/i/MUG-LATE/hero/thumb",
        headers: { accept: "image/webp" },
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers["shotlist-fallback"], undefined);
      assert.equal(
        response.headers["cache-control"],
        "public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400",
      );
      assert.equal((await counted("generated")) - generatedBefore, 1);
      await waitFor(async () => (await countOpenJobs(env.runtime.db)) === 0, "jobs to finish");
    });

    it("past the deadline answers the slot's older asset, then the new one once it lands", async () => {
      // A route with a short deadline and no worker running: the new recipe's job stays queued.
      const shortDeadline = Fastify();
      shortDeadline.setErrorHandler(errorHandler(env.runtime.log));
      renditionRoutes(shortDeadline, env.runtime, { deadlineMs: 300 });
      await shortDeadline.ready();
      try {
        await worker.stop();
        const before = await app.inject({ url: "/i/MUG-OD/hero", headers: { accept: "*/*" } });
        const missesBefore = (await env.runtime.metrics.onDemandDeadlineMisses.get()).values[0]
          ?.value;
        // A new photo means a new hero recipe: the slot keeps its old asset until it is made.
        await submitProduct(env.runtime.intake, {
          sku: "MUG-OD",
          title: "Stoneware Mug",
          category: "home",
          referenceImages: [{ base64: enamel(0).toString("base64") }],
        });
        const started = performance.now();
        const fallback = await shortDeadline.inject("/i/MUG-OD/hero");
        const elapsedMs = performance.now() - started;
        assert.equal(fallback.statusCode, 200, fallback.body);
        assert.equal(fallback.headers["shotlist-fallback"], "older");
        assert.equal(fallback.headers["cache-control"], "public, max-age=10");
        assert.equal(fallback.headers.etag, before.headers.etag);
        assert.ok(elapsedMs >= 300 && elapsedMs < 2200, `answered in ${elapsedMs} ms`);
        assert.equal(
          (await env.runtime.metrics.onDemandDeadlineMisses.get()).values[0]?.value,
          (missesBefore ?? 0) + 1,
        );
        const [job] = await env.runtime.db.query<{ state: string }>(
          `select j.state from jobs j join product_slots ps on j.key = 'render:' || ps.recipe_hash
           where ps.product_sku = 'MUG-OD' and ps.slot = 'hero'`,
        );
        assert.equal(job?.state, "queued");

        // 50 concurrent requests for the same missing slot: every one gets the fallback, and
        // they add no job beside the one queued generation.
        const jobCount = async () =>
          (
            await env.runtime.db.query<{ count: number }>(
              "select count(*)::integer as count from jobs",
            )
          )[0]?.count;
        const jobsBefore = await jobCount();
        const many = await Promise.all(
          Array.from({ length: 50 }, () => shortDeadline.inject("/i/MUG-OD/hero")),
        );
        assert.ok(
          many.every(
            (response) =>
              response.statusCode === 200 && response.headers["shotlist-fallback"] === "older",
          ),
        );
        assert.equal(await jobCount(), jobsBefore);

        worker = env.runtime.startWorker({ pollMs: 20 });
        const landed = await waitFor(async () => {
          const response = await shortDeadline.inject("/i/MUG-OD/hero");
          return response.headers["shotlist-fallback"] === undefined ? response : undefined;
        }, "the new hero to be served");
        assert.notEqual(landed.headers.etag, before.headers.etag);
        assert.equal(
          landed.headers["cache-control"],
          "public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400",
        );
      } finally {
        await shortDeadline.close();
      }
    });
  });
}
