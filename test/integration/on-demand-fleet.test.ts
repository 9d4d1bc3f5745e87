/**
 * On-demand images across a fleet (issue 6): two server processes on one database and one blob
 * store make a missing rendition once, wait on one generation job for a missing slot, and keep
 * their in-process caches honest.
 *
 * On PostgreSQL the two "processes" are two runtimes (two pools, two metric registries) over
 * the same database and data folder, as `shotlist serve` ×2 would be, sharing claim rows in the
 * database. PGlite is one process's database (a second process is refused), so there the two
 * are two apps over one runtime: each has its own caches, and they share the runtime's
 * in-process single flight, which is the whole fleet's; no claim row is written.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import sharp from "sharp";
import { heroOnlyShotList } from "../../examples/shot-lists.js";
import { loadSettings } from "../../src/config/env.js";
import {
  FORMAT_EXT,
  type RenditionRequest,
  renditionHash,
  resolveRendition,
  signRenditionUrl,
} from "../../src/domain/rendition.js";
import { buildApp } from "../../src/http/app.js";
import { renditionKey } from "../../src/http/routes/renditions.js";
import { submitProduct } from "../../src/intake/submit.js";
import { createLogger } from "../../src/observability/logger.js";
import type { Worker } from "../../src/queue/worker.js";
import { createRuntime, type Runtime } from "../../src/runtime.js";
import { claimFlight, flightHeld, releaseFlight } from "../../src/store/flight-claims.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const photo = (name: string) =>
  readFileSync(
    fileURLToPath(new URL(`../../examples/catalogue/images/${name}.jpg`, import.meta.url)),
  );
const SIGNING_KEY = "fleet-signing-key-0123456789abcdef";
const DEADLINE_MS = 300;
const ALIAS_CACHE_CONTROL =
  "public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400";

function filesUnder(path: string): string[] {
  try {
    return readdirSync(path, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
  } catch {
    return [];
  }
}

/** A counter's value for the given labels, summed over distinct runtimes. */
async function counterSum(
  runtimes: readonly Runtime[],
  pick: (runtime: Runtime) => {
    get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }>;
  },
  labels: Record<string, string> = {},
): Promise<number> {
  let sum = 0;
  for (const runtime of new Set(runtimes)) {
    for (const value of (await pick(runtime).get()).values) {
      if (Object.entries(labels).every(([name, want]) => value.labels[name] === want)) {
        sum += value.value;
      }
    }
  }
  return sum;
}

for (const backend of BACKENDS) {
  describe(`on-demand images across two processes on ${backend}`, () => {
    let env: TestRuntime;
    /** The second process's runtime; on PGlite the same runtime as the first. */
    let runtimeB: Runtime;
    let appA: FastifyInstance;
    let appB: FastifyInstance;
    let worker: Worker | undefined;
    let shotListDir: string;
    const runtimes = () => [env.runtime, runtimeB];
    const renders = async () => {
      let sum = 0;
      for (const runtime of new Set(runtimes())) {
        sum += (await runtime.metrics.renditionDuration.get()).values
          .filter((value) => value.metricName === "shotlist_rendition_duration_seconds_count")
          .reduce((total, value) => total + value.value, 0);
      }
      return sum;
    };
    const renditionFiles = () => filesUnder(join(env.settings.storage, "renditions"));

    before(async () => {
      const fleetEnv = {
        SHOTLIST_SIGNING_KEY: SIGNING_KEY,
        SHOTLIST_ONDEMAND_DEADLINE_MS: String(DEADLINE_MS),
      };
      shotListDir = mkdtempSync(join(tmpdir(), "shotlist-fleet-"));
      const shotListPath = join(shotListDir, "shotlist.yaml");
      writeFileSync(shotListPath, heroOnlyShotList(400));
      env = await createTestRuntime(backend, { ...fleetEnv, SHOTLIST_CONFIG: shotListPath });
      // The second process: its own runtime on the same database and data folder.
      runtimeB =
        backend === "postgres"
          ? await createRuntime(
              loadSettings({
                SHOTLIST_DATA_DIR: env.dataDir,
                SHOTLIST_DATABASE_URL: String(env.databaseUrl),
                SHOTLIST_CONFIG: shotListPath,
                SHOTLIST_RETRY_BASE_MS: "20",
                SHOTLIST_LEASE_MS: "2000",
                PORT: "0",
                ...fleetEnv,
              }),
              createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
            )
          : env.runtime;
      appA = await buildApp(env.runtime);
      appB = await buildApp(runtimeB);

      worker = env.runtime.startWorker({ pollMs: 20 });
      await submitProduct(env.runtime.intake, {
        sku: "MUG-FLEET",
        title: "Stoneware Mug",
        category: "home",
        referenceImages: [{ base64: photo("MUG-STONEWARE-0").toString("base64") }],
      });
      await waitFor(async () => (await countOpenJobs(env.runtime.db)) === 0, "the hero render");
      await worker.stop();
      worker = undefined;
    });
    after(async () => {
      await worker?.stop();
      await appA?.close();
      await appB?.close();
      if (runtimeB && runtimeB !== env.runtime) await runtimeB.close();
      await env?.cleanup();
      rmSync(shotListDir, { recursive: true, force: true });
    });

    /** The hero's rendition blob key for these options (what the claim row is keyed by). */
    async function heroRenditionKey(options: RenditionRequest, accept: string): Promise<string> {
      const alias = await appA.inject("/i/MUG-FLEET/hero");
      const sourceSha = String(alias.headers.etag).replaceAll('"', "");
      const spec = resolveRendition(options, accept);
      return renditionKey(renditionHash(sourceSha, spec), FORMAT_EXT[spec.format]);
    }

    it("makes a missing rendition once for 50 concurrent requests split across two processes", async () => {
      const url = signRenditionUrl(SIGNING_KEY, {
        sku: "MUG-FLEET",
        slot: "hero",
        options: { w: 317, format: "webp", q: 71 },
      });
      const rendersBefore = await renders();
      const filesBefore = renditionFiles().length;
      const madeBefore = await counterSum(
        runtimes(),
        (runtime) => runtime.metrics.onDemandRequests,
        { outcome: "rendition_made" },
      );
      const waitsBefore = await counterSum(
        runtimes(),
        (runtime) => runtime.metrics.singleFlightWaits,
        { work: "rendition", result: "found" },
      );
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, index) =>
          (index % 2 === 0 ? appA : appB).inject({ url, headers: { accept: "image/webp" } }),
        ),
      );
      for (const response of responses) assert.equal(response.statusCode, 200, response.body);
      assert.equal(new Set(responses.map((response) => response.body)).size, 1);
      assert.equal((await sharp(responses[0]?.rawPayload).metadata()).width, 317);
      assert.equal((await renders()) - rendersBefore, 1, "one render in the whole fleet");
      assert.equal(
        (await counterSum(runtimes(), (runtime) => runtime.metrics.onDemandRequests, {
          outcome: "rendition_made",
        })) - madeBefore,
        1,
      );
      assert.equal(renditionFiles().length - filesBefore, 1);
      // On PostgreSQL the process that did not make it waited on the other's claim and found the
      // bytes; on PGlite both apps share the runtime's in-process flight, so nobody polled.
      assert.equal(
        (await counterSum(runtimes(), (runtime) => runtime.metrics.singleFlightWaits, {
          work: "rendition",
          result: "found",
        })) - waitsBefore,
        backend === "postgres" ? 1 : 0,
        "the second process waited once on the first one's claim (PostgreSQL only)",
      );
      // Every claim is released once its work is done.
      const [claims] = await env.runtime.db.query<{ count: number }>(
        "select count(*)::integer as count from flight_claims",
      );
      assert.equal(claims?.count, 0);
    });

    it(
      backend === "postgres"
        ? "takes over a rendition whose claim holder died, once its claim expires"
        : "makes a missing rendition without a claim row: the embedded database is one process",
      async () => {
        const options: RenditionRequest = { w: 233, format: "png" };
        const key = await heroRenditionKey(options, "image/png");
        // On PostgreSQL, a process that claimed the key and died: its claim is live for a moment
        // more, then taken over. On PGlite nothing reads or writes claim rows, so a live claim
        // of another owner is neither waited for nor touched.
        const owner = backend === "postgres" ? "a-process-that-died" : "an-owner-nobody-asks";
        await env.runtime.db.query(
          `insert into flight_claims (key, owner, expires_at)
           values ($1, $2, now() + $3 * interval '1 millisecond')`,
          [key, owner, backend === "postgres" ? 400 : 60_000],
        );
        const rendersBefore = await renders();
        const url = signRenditionUrl(SIGNING_KEY, { sku: "MUG-FLEET", slot: "hero", options });
        const response = await appB.inject({ url, headers: { accept: "image/png" } });
        assert.equal(response.statusCode, 200, response.body);
        assert.equal((await sharp(response.rawPayload).metadata()).width, 233);
        assert.equal((await renders()) - rendersBefore, 1);
        if (backend === "postgres") {
          assert.ok(
            (await counterSum(runtimes(), (runtime) => runtime.metrics.singleFlightWaits, {
              work: "rendition",
              result: "took_over",
            })) >= 1,
          );
          assert.equal(await flightHeld(env.runtime.db, key), false, "the taker released it");
        } else {
          const claims = await env.runtime.db.query<{ owner: string }>(
            "select owner from flight_claims where key = $1",
            [key],
          );
          assert.deepEqual(claims, [{ owner }], "the row was not touched");
          await releaseFlight(env.runtime.db, key, owner);
        }
      },
    );

    it("claims a key for one owner at a time, and only the owner releases it", async () => {
      const db = env.runtime.db;
      assert.equal(await claimFlight(db, "test:claim", "one", 10_000), true);
      assert.equal(await claimFlight(db, "test:claim", "two", 10_000), false);
      assert.equal(await flightHeld(db, "test:claim"), true);
      await releaseFlight(db, "test:claim", "two");
      assert.equal(await flightHeld(db, "test:claim"), true, "another owner cannot release it");
      await releaseFlight(db, "test:claim", "one");
      assert.equal(await flightHeld(db, "test:claim"), false);
      assert.equal(await claimFlight(db, "test:claim", "two", 0), true);
      // An expired claim is anybody's.
      assert.equal(await flightHeld(db, "test:claim"), false);
      assert.equal(await claimFlight(db, "test:claim", "three", 10_000), true);
      await releaseFlight(db, "test:claim", "three");
    });

    it("makes one generation job for 50 requests for a missing slot across two processes, then serves it", async () => {
      const jobCount = async () =>
        (
          await env.runtime.db.query<{ count: number }>(
            "select count(*)::integer as count from jobs where kind = 'render'",
          )
        )[0]?.count ?? 0;
      await submitProduct(env.runtime.intake, {
        sku: "MUG-FLEET-NEW",
        title: "Enamel Mug",
        category: "home",
        referenceImages: [{ base64: photo("MUG-ENAMEL-0").toString("base64") }],
      });
      const jobsBefore = await jobCount();
      const missesBefore = await counterSum(
        runtimes(),
        (runtime) => runtime.metrics.onDemandDeadlineMisses,
      );
      // No worker runs: the slot's job stays queued and every request falls back at the deadline.
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, index) =>
          (index % 2 === 0 ? appA : appB).inject("/i/MUG-FLEET-NEW/hero"),
        ),
      );
      for (const response of responses) {
        assert.equal(response.statusCode, 200, response.body);
        assert.equal(response.headers["shotlist-fallback"], "placeholder");
        assert.equal(response.headers["cache-control"], "public, max-age=10");
      }
      assert.equal(await jobCount(), jobsBefore, "no request adds a job");
      const [job] = await env.runtime.db.query<{ state: string; count: number }>(
        `select min(j.state) as state, count(*)::integer as count from jobs j
         join product_slots ps on j.key = 'render:' || ps.recipe_hash
         where ps.product_sku = 'MUG-FLEET-NEW' and ps.slot = 'hero'`,
      );
      assert.deepEqual(job, { state: "queued", count: 1 });
      assert.equal(
        (await counterSum(runtimes(), (runtime) => runtime.metrics.onDemandDeadlineMisses)) -
          missesBefore,
        50,
      );

      // The other process's worker makes it; both processes then answer the real image.
      worker = runtimeB.startWorker({ pollMs: 20 });
      const landed = await Promise.all(
        [appA, appB].map((app) =>
          waitFor(async () => {
            const response = await app.inject("/i/MUG-FLEET-NEW/hero");
            return response.headers["shotlist-fallback"] === undefined ? response : undefined;
          }, "the real hero"),
        ),
      );
      for (const response of landed) {
        assert.equal(response.statusCode, 200);
        assert.equal(response.headers["content-type"], "image/jpeg");
        assert.equal(response.headers["cache-control"], ALIAS_CACHE_CONTROL);
      }
      assert.equal(landed[0]?.headers.etag, landed[1]?.headers.etag);
      assert.equal(await jobCount(), jobsBefore);
      await worker.stop();
      worker = undefined;
    });

    it("answers a hot rendition from memory with the same bytes, ETag, Vary and 304", async () => {
      const url = "/i/MUG-FLEET/hero/thumb";
      const headers = { accept: "image/webp" };
      const first = await appA.inject({ url, headers });
      assert.equal(first.statusCode, 200, first.body);
      const lookups = (cache: string, result: string) =>
        counterSum([env.runtime], (runtime) => runtime.metrics.onDemandCacheLookups, {
          cache,
          result,
        });
      const byteHits = await lookups("bytes", "hit");
      const slotHits = await lookups("slot", "hit");
      const second = await appA.inject({ url, headers });
      assert.equal(second.statusCode, 200);
      assert.ok(second.rawPayload.equals(first.rawPayload));
      for (const name of ["etag", "vary", "cache-control", "last-modified", "content-type"]) {
        assert.equal(second.headers[name], first.headers[name], name);
      }
      assert.equal(second.headers.vary, "Accept");
      assert.equal(second.headers["cache-control"], ALIAS_CACHE_CONTROL);
      assert.ok((await lookups("bytes", "hit")) > byteHits, "bytes came from memory");
      assert.ok((await lookups("slot", "hit")) > slotHits, "the slot came from memory");
      const notModified = await appA.inject({
        url,
        headers: { ...headers, "if-none-match": String(first.headers.etag) },
      });
      assert.equal(notModified.statusCode, 304);
      assert.equal(notModified.body, "");
      // Gone from the blob store, still answered from memory (content-addressed: never stale).
      const key = await heroRenditionKey({ w: 200, h: 200, fit: "cover" }, "image/webp");
      rmSync(join(env.settings.storage, key));
      const fromMemory = await appA.inject({ url, headers });
      assert.equal(fromMemory.statusCode, 200);
      assert.ok(fromMemory.rawPayload.equals(first.rawPayload));
      const gauge = (await env.runtime.metrics.onDemandCacheBytes.get()).values[0]?.value ?? 0;
      assert.ok(gauge >= first.rawPayload.length, `cache holds ${gauge} bytes`);
    });

    it("sees this process's re-plan of a product at once, and the other process's within its TTL", async () => {
      const cachedAlias = await appA.inject("/i/MUG-FLEET/hero");
      assert.equal(cachedAlias.headers["shotlist-fallback"], undefined);
      await appB.inject("/i/MUG-FLEET/hero");
      // A new photo is a new hero recipe: the slot keeps its old asset until the new one is made.
      await submitProduct(env.runtime.intake, {
        sku: "MUG-FLEET",
        title: "Stoneware Mug",
        category: "home",
        referenceImages: [{ base64: photo("MUG-ENAMEL-1").toString("base64") }],
      });
      const right = await appA.inject("/i/MUG-FLEET/hero");
      assert.equal(right.headers["shotlist-fallback"], "older", "the changing process at once");
      assert.equal(right.headers["cache-control"], "public, max-age=10");
      assert.equal(right.headers.etag, cachedAlias.headers.etag);
      const other = await waitFor(
        async () => {
          const response = await appB.inject("/i/MUG-FLEET/hero");
          return response.headers["shotlist-fallback"] === "older" ? response : undefined;
        },
        "the other process to see the re-plan",
        10_000,
      );
      assert.equal(other.headers.etag, cachedAlias.headers.etag);
    });
  });
}
