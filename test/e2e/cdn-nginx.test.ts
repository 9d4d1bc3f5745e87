/**
 * A CDN in front, for real (issue 6 part 5): the Debian nginx started on the shipped
 * deploy/nginx/shotlist.conf in front of a live Shotlist server. Proves that nginx caches what
 * Shotlist says it may, serves the alias stale while it revalidates in the background, serves
 * it when Shotlist is down, keeps a fallback no longer than its 10 s, and keeps AVIF and WebP
 * answers of one URL apart.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { heroOnlyShotList } from "../../examples/shot-lists.js";
import { buildApp } from "../../src/http/app.js";
import { submitProduct } from "../../src/intake/submit.js";
import type { Worker } from "../../src/queue/worker.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { slotState } from "../../src/store/on-demand.js";
import { createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { freePort } from "../helpers/net.js";

const TEMPLATE = fileURLToPath(new URL("../../deploy/nginx/shotlist.conf", import.meta.url));
const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
/** Short, so expiry can be watched within the test; the shipped default is 60 s. */
const ALIAS_MAX_AGE_S = 2;
const FALLBACK_MAX_AGE_S = 10;
/** One small slot per product keeps the renders (and so the test) short on a 2-core machine. */
const SHOT_LIST = heroOnlyShotList(800);

/** The nginx binary: Debian's, or whatever `nginx` is on PATH; a clear failure otherwise. */
function nginxBinary(): string {
  if (existsSync("/usr/sbin/nginx")) return "/usr/sbin/nginx";
  const which = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" });
  const found = which.stdout.trim();
  if (which.status === 0 && found) return found;
  throw new Error(
    "nginx is not installed: this end-to-end test needs it (Debian: apt-get install nginx-light or nginx)",
  );
}

/** Renders the template the way its header says envsubst would, for the three names only. */
function renderConfig(
  values: Record<"SHOTLIST_UPSTREAM" | "NGINX_LISTEN" | "NGINX_CACHE_DIR", string>,
) {
  let text = readFileSync(TEMPLATE, "utf8");
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`\${${name}}`, value);
  assert.doesNotMatch(text, /\$\{[A-Z_]+\}/, "every template variable is filled in");
  // As root, nginx would run its workers as `nobody`, who cannot write the private temp folder.
  return process.getuid?.() === 0 ? `user root;\n${text}` : text;
}

interface Fetched {
  status: number;
  cache: string | null;
  fallback: string | null;
  type: string | null;
  cacheControl: string | null;
  body: Buffer;
}

describe("nginx from deploy/ as a caching CDN in front of Shotlist", () => {
  let env: TestRuntime;
  let app: FastifyInstance;
  let worker: Worker | undefined;
  let nginx: ChildProcess | undefined;
  let nginxLog = "";
  let dir: string;
  let base: string;

  /** Every /i/ request Shotlist answered (any outcome, 304s included). */
  const originRequests = async () =>
    (await env.runtime.metrics.onDemandRequests.get()).values.reduce(
      (sum, value) => sum + value.value,
      0,
    );

  async function get(path: string, accept = "*/*"): Promise<Fetched> {
    const response = await fetch(`${base}${path}`, { headers: { accept } });
    return {
      status: response.status,
      cache: response.headers.get("x-cache-status"),
      fallback: response.headers.get("shotlist-fallback"),
      type: response.headers.get("content-type"),
      cacheControl: response.headers.get("cache-control"),
      body: Buffer.from(await response.arrayBuffer()),
    };
  }

  before(async () => {
    const binary = nginxBinary();
    dir = mkdtempSync(join(tmpdir(), "shotlist-nginx-"));
    writeFileSync(join(dir, "shotlist.yaml"), SHOT_LIST);
    env = await createTestRuntime("postgres", {
      SHOTLIST_CONFIG: join(dir, "shotlist.yaml"),
      SHOTLIST_ALIAS_MAX_AGE_S: String(ALIAS_MAX_AGE_S),
      // A slot not yet made is answered with its fallback at once.
      SHOTLIST_ONDEMAND_DEADLINE_MS: "0",
    });
    worker = env.runtime.startWorker({ pollMs: 20 });
    await submitProduct(env.runtime.intake, {
      sku: "MUG-CDN",
      title: "Stoneware Mug",
      category: "home",
      referenceImages: [{ base64: photo.toString("base64") }],
    });
    await waitFor(async () => (await countOpenJobs(env.runtime.db)) === 0, "jobs to finish");
    await worker.stop();
    worker = undefined;

    app = await buildApp(env.runtime);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    if (address === null || typeof address === "string") throw new Error("no address");

    const cacheDir = join(dir, "cache");
    mkdirSync(cacheDir);
    const port = await freePort();
    writeFileSync(
      join(dir, "nginx.conf"),
      renderConfig({
        SHOTLIST_UPSTREAM: `127.0.0.1:${address.port}`,
        NGINX_LISTEN: `127.0.0.1:${port}`,
        NGINX_CACHE_DIR: cacheDir,
      }),
    );
    nginx = spawn(
      binary,
      [
        "-p",
        dir,
        "-c",
        join(dir, "nginx.conf"),
        "-g",
        `daemon off; pid ${join(dir, "nginx.pid")}; error_log ${join(dir, "error.log")};`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    nginx.stdout?.on("data", (chunk: Buffer) => {
      nginxLog += chunk.toString();
    });
    nginx.stderr?.on("data", (chunk: Buffer) => {
      nginxLog += chunk.toString();
    });
    base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (nginx?.exitCode !== null) throw new Error(`nginx exited: ${nginxLog}`);
        return fetch(`${base}/`).then(
          () => true,
          () => false,
        );
      },
      "nginx to listen",
      10_000,
    );
  });

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      nginx.kill("SIGTERM");
      await once(nginx, "exit");
    }
    await worker?.stop();
    await app?.close();
    await env?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("misses once, then answers from its cache without asking Shotlist", async () => {
    const first = await get("/i/MUG-CDN/hero");
    assert.equal(first.status, 200, first.body.toString());
    assert.equal(first.cache, "MISS");
    assert.equal(first.type, "image/jpeg");
    assert.equal(
      first.cacheControl,
      `public, max-age=${ALIAS_MAX_AGE_S}, stale-while-revalidate=86400, stale-if-error=86400`,
    );
    const asked = await originRequests();
    const second = await get("/i/MUG-CDN/hero");
    assert.equal(second.cache, "HIT");
    assert.ok(second.body.equals(first.body));
    assert.equal(await originRequests(), asked, "a HIT never reaches Shotlist");
  });

  it("caches /a/ assets by hash, and never a 404", async () => {
    const alias = await fetch(`${base}/i/MUG-CDN/hero`);
    const sha = String(alias.headers.get("etag")).replaceAll('"', "");
    const first = await get(`/a/${sha}.jpg`);
    assert.equal(first.status, 200);
    assert.match(String(first.cacheControl), /immutable/);
    assert.ok(["MISS", "HIT"].includes(String(first.cache)));
    assert.equal((await get(`/a/${sha}.jpg`)).cache, "HIT");
    const missing = `/a/${"0".repeat(64)}.jpg`;
    const notThere = await get(missing);
    assert.equal(notThere.status, 404);
    assert.equal(notThere.cacheControl, null, "Shotlist does not call a 404 immutable");
    const again = await get(missing);
    assert.equal(again.status, 404);
    assert.notEqual(again.cache, "HIT", "a missing asset may appear later: its 404 is not kept");
  });

  it("passes the rest through uncached", async () => {
    const response = await fetch(`${base}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "ok" });
    assert.equal(response.headers.get("x-cache-status"), null);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /shotlist_ondemand_requests_total/);
  });

  it("keeps AVIF and WebP answers of one URL apart, whatever the raw Accept string", async () => {
    const url = "/i/MUG-CDN/hero/thumb";
    const avif = await get(url, "image/avif,image/webp,image/apng,*/*;q=0.8");
    assert.equal(avif.status, 200);
    assert.equal(avif.cache, "MISS");
    assert.equal(avif.type, "image/avif");
    const webp = await get(url, "image/webp,*/*");
    assert.equal(webp.cache, "MISS", "a WebP client is not given the cached AVIF");
    assert.equal(webp.type, "image/webp");
    const jpeg = await get(url, "*/*");
    assert.equal(jpeg.cache, "MISS");
    assert.equal(jpeg.type, "image/jpeg");
    assert.equal(new Set([avif.body, webp.body, jpeg.body].map((b) => b.toString("hex"))).size, 3);

    const avifAgain = await get(url, "image/avif,*/*");
    assert.equal(avifAgain.cache, "HIT");
    assert.equal(avifAgain.type, "image/avif");
    assert.ok(avifAgain.body.equals(avif.body));
    const webpAgain = await get(url, "image/webp");
    assert.equal(webpAgain.cache, "HIT");
    assert.equal(webpAgain.type, "image/webp");
    assert.ok(webpAgain.body.equals(webp.body));
  });

  it("keeps a fallback no longer than its 10 s, then serves the real image", async () => {
    await submitProduct(env.runtime.intake, {
      sku: "MUG-LATER",
      title: "Stoneware Mug, later",
      category: "home",
      referenceImages: [{ base64: photo.toString("base64") }],
    });
    const fallback = await get("/i/MUG-LATER/hero");
    const storedAt = Date.now();
    assert.equal(fallback.status, 200);
    assert.equal(fallback.cache, "MISS");
    assert.equal(fallback.fallback, "placeholder");
    assert.equal(fallback.cacheControl, `public, max-age=${FALLBACK_MAX_AGE_S}`);
    // It is cached (the short lifetime is a lifetime, not "no-store")…
    const again = await get("/i/MUG-LATER/hero");
    assert.equal(again.cache, "HIT");
    assert.equal(again.fallback, "placeholder");

    worker = env.runtime.startWorker({ pollMs: 20 });
    await waitFor(
      async () => (await slotState(env.runtime.db, "MUG-LATER", "hero")) === "published",
      "the real hero to land",
    );
    // …until its 10 s are up; nginx's clock has 1 s steps, so allow a second more, and then
    // the very first answer is the real image (fetched in the foreground, not the stale
    // fallback with a background update).
    let real: Fetched | undefined;
    while (!real) {
      const response = await get("/i/MUG-LATER/hero");
      const elapsedS = (Date.now() - storedAt) / 1000;
      if (response.fallback === null) {
        real = response;
        assert.ok(elapsedS >= FALLBACK_MAX_AGE_S - 1, `fallback replaced after ${elapsedS} s`);
        break;
      }
      assert.equal(response.cache, "HIT", `fallback at ${elapsedS} s`);
      assert.ok(elapsedS < FALLBACK_MAX_AGE_S + 1.5, `fallback still served at ${elapsedS} s`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal(real.status, 200);
    assert.equal(real.cache, "EXPIRED");
    assert.equal(real.type, "image/jpeg");
    assert.ok(!real.body.equals(fallback.body));
    assert.equal(
      real.cacheControl,
      `public, max-age=${ALIAS_MAX_AGE_S}, stale-while-revalidate=86400, stale-if-error=86400`,
    );
    await worker.stop();
    worker = undefined;
  });

  it("serves the expired alias stale at once and revalidates it in the background", async () => {
    const url = "/i/MUG-CDN/hero";
    const asked = await originRequests();
    const cached = await get(url); // expired long ago (the tests above took > 2 s)
    assert.equal(cached.cache, "STALE");
    assert.equal(cached.status, 200);
    // The background update reaches Shotlist (a conditional request answered 304 or 200)…
    await waitFor(
      async () => (await originRequests()) > asked,
      "nginx's background revalidation",
      5_000,
    );
    // …and refreshes the entry: the next answer is a plain HIT.
    // (nginx stores the answer just after Shotlist counted it: UPDATING until then.)
    const refreshed = await waitFor(
      async () => {
        const response = await get(url);
        assert.ok(["HIT", "UPDATING"].includes(String(response.cache)), String(response.cache));
        return response.cache === "HIT" ? response : undefined;
      },
      "the refreshed entry",
      2_000,
    );
    assert.ok(refreshed.body.equals(cached.body));
    const refreshedAt = Date.now();
    // Once max-age has passed again, the next answer is STALE again, not a wait on Shotlist.
    let next: Fetched;
    do {
      await new Promise((resolve) => setTimeout(resolve, 200));
      next = await get(url);
    } while (next.cache === "HIT" && Date.now() - refreshedAt < 10_000);
    const elapsedS = (Date.now() - refreshedAt) / 1000;
    assert.ok(["STALE", "UPDATING"].includes(String(next.cache)), String(next.cache));
    assert.ok(elapsedS <= ALIAS_MAX_AGE_S + 1.5, `stayed fresh for ${elapsedS} s`);
    assert.ok(next.body.equals(cached.body));
  });

  it("serves cached images stale while Shotlist is down", async () => {
    const thumb = await get("/i/MUG-CDN/hero/thumb", "image/webp");
    await app.close();
    // A URL never cached has nothing to fall back on: Shotlist really is gone.
    const uncached = await get("/i/MUG-CDN/hero/zoom", "image/webp");
    assert.equal(uncached.status, 502);
    await new Promise((resolve) => setTimeout(resolve, (ALIAS_MAX_AGE_S + 1) * 1000));
    for (const [url, accept] of [
      ["/i/MUG-CDN/hero", "*/*"],
      ["/i/MUG-CDN/hero/thumb", "image/webp"],
    ] as const) {
      const stale = await get(url, accept);
      assert.equal(stale.status, 200, url);
      assert.equal(stale.cache, "STALE", url);
      if (url.endsWith("thumb")) assert.ok(stale.body.equals(thumb.body));
    }
  });
});
