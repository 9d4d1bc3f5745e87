import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, InjectOptions } from "fastify";
import { buildApp } from "../../src/http/app.js";
import type { Worker } from "../../src/queue/worker.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);

for (const backend of BACKENDS) {
  describe(`HTTP API on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let worker: Worker;
    let auth: Record<string, string>;
    before(async () => {
      env = await createTestRuntime(backend);
      app = await buildApp(env.runtime);
      worker = env.runtime.startWorker({ pollMs: 20 });
      auth = await apiHeaders(env);
    });
    /** app.inject with this suite's API key. */
    const api = (request: string | InjectOptions) =>
      app.inject(
        typeof request === "string"
          ? { url: request, headers: auth }
          : { ...request, headers: { ...auth, ...request.headers } },
      );
    after(async () => {
      await app.close();
      await worker.stop();
      await env.cleanup();
    });

    const problemOf = (response: { headers: Record<string, unknown>; json(): unknown }) => {
      assert.match(String(response.headers["content-type"]), /^application\/problem\+json/);
      return response.json() as {
        type: string;
        title: string;
        status: number;
        detail: string;
        code: string;
      };
    };

    it("answers health and readiness", async () => {
      assert.deepEqual((await app.inject("/healthz")).json(), { status: "ok" });
      const ready = (await app.inject("/readyz")).json() as {
        status: string;
        schemaVersion: number;
      };
      assert.equal(ready.status, "ready");
      // The newest numbered migration on disk (branches add their own).
      const newest = Math.max(
        ...readdirSync(new URL("../../src/store/migrations/", import.meta.url))
          .filter((name) => /^\d{4}_/.test(name))
          .map((name) => Number(name.slice(0, 4))),
      );
      assert.equal(ready.schemaVersion, newest);
    });

    it("accepts a product, images it, and shows its slots, coverage and assets", async () => {
      const mug = {
        sku: "MUG-HTTP",
        title: "Stoneware Mug",
        category: "home",
        attributes: { color: "sand" },
        referenceImages: [{ base64: photo.toString("base64") }],
      };
      const created = await api({
        method: "POST",
        url: "/v1/products",
        payload: mug,
      });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal((created.json() as { jobsCreated: number }).jobsCreated, 5);
      const replay = await api({
        method: "POST",
        url: "/v1/products",
        payload: mug,
      });
      assert.equal(replay.statusCode, 200);
      assert.equal((replay.json() as { jobsCreated: number }).jobsCreated, 0);
      await waitFor(
        async () => (await countOpenJobs(env.runtime.db)) === 0,
        "jobs to finish",
        60_000,
      );

      const product = (await api("/v1/products/MUG-HTTP")).json() as {
        coverage: { complete: number; required: number };
        slots: {
          slot: string;
          state: string;
          reason: string | null;
          asset: { id: number; url: string } | null;
        }[];
      };
      assert.deepEqual(
        product.slots.map((slot) => [slot.slot, slot.state]),
        [
          ["hero", "published"],
          ["angle-1", "needs_review"],
          ["angle-2", "needs_review"],
          ["angle-3", "needs_review"],
          ["lifestyle", "published"],
        ],
      );
      assert.deepEqual(product.coverage, { complete: 2, required: 5, ratio: 0.4 });
      const hero = product.slots[0]?.asset;
      assert.ok(hero);

      const provenance = (await api(`/v1/assets/${hero.id}`)).json() as {
        recipe: { slot: string; provider: string; modelVersion: string; references: string[] };
        checks: { name: string; passed: boolean }[];
      };
      assert.equal(provenance.recipe.slot, "hero");
      assert.equal(provenance.recipe.provider, "local");
      assert.match(provenance.recipe.modelVersion, /sharp .* vips/);
      assert.ok(provenance.checks.every((check) => check.passed));

      const path = new URL(hero.url).pathname;
      const bytes = await app.inject(path);
      assert.equal(bytes.statusCode, 200);
      assert.equal(bytes.headers["content-type"], "image/jpeg");
      assert.equal(bytes.headers["cache-control"], "public, max-age=31536000, immutable");
      const etag = String(bytes.headers.etag);
      assert.match(etag, /^"[0-9a-f]{64}"$/);
      const revalidated = await app.inject({ url: path, headers: { "if-none-match": etag } });
      assert.equal(revalidated.statusCode, 304);
      assert.equal(revalidated.body, "");
      const otherTag = await app.inject({ url: path, headers: { "if-none-match": '"abc"' } });
      assert.equal(otherTag.statusCode, 200);
    });

    it("lists products by coverage with a cursor, and reports catalogue coverage", async () => {
      const incomplete = (await api("/v1/products?coverage=incomplete")).json() as {
        products: { sku: string }[];
      };
      assert.deepEqual(
        incomplete.products.map((item) => item.sku),
        ["MUG-HTTP"],
      );
      const complete = (await api("/v1/products?coverage=complete")).json() as {
        products: unknown[];
      };
      assert.deepEqual(complete.products, []);
      const page = (await api("/v1/products?limit=1")).json() as {
        nextCursor: string | null;
      };
      assert.ok(page.nextCursor);
      const next = (await api(`/v1/products?limit=1&cursor=${page.nextCursor}`)).json() as {
        products: unknown[];
      };
      assert.deepEqual(next.products, []);
      const coverage = (await api("/v1/coverage")).json() as {
        products: number;
        requiredSlots: number;
        publishedSlots: number;
        bySlot: { slot: string }[];
      };
      assert.equal(coverage.products, 1);
      assert.equal(coverage.requiredSlots, 5);
      assert.equal(coverage.publishedSlots, 2);
      const jobs = (await api("/v1/jobs?state=needs_review")).json() as {
        jobs: { id: number; lastError: string }[];
      };
      assert.equal(jobs.jobs.length, 3);
      const job = (await api(`/v1/jobs/${jobs.jobs[0]?.id}`)).json() as {
        attemptLog: { outcome: string }[];
      };
      assert.equal(job.attemptLog[0]?.outcome, "cannot_make");
    });

    it("serves the dashboard with coverage and the review queue", async () => {
      const page = await app.inject("/");
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /Catalogue coverage/);
      assert.match(page.body, /MUG-HTTP/);
    });

    it("answers bad input with problem+json and a stable code", async () => {
      const cases: [string, string | InjectOptions, number, string][] = [
        ["unknown product", "/v1/products/NOPE", 404, "not_found"],
        ["SKU with path tricks", "/v1/products/..%2F..%2Fetc", 400, "invalid_sku"],
        ["SKU with a control character", "/v1/products/a%07b", 400, "invalid_sku"],
        ["bad coverage filter", "/v1/products?coverage=half", 400, "invalid_request"],
        ["bad cursor", "/v1/products?cursor=%2F%2F", 400, "invalid_request"],
        ["bad job state", "/v1/jobs?state=lost", 400, "invalid_request"],
        ["bad job id", "/v1/jobs/abc", 400, "invalid_request"],
        ["unknown route", "/v2/everything", 404, "not_found"],
        ["asset name that is not a hash", "/a/..%2F..%2Fetc%2Fpasswd", 404, "not_found"],
        ["missing asset", `/a/${"0".repeat(64)}.jpg`, 404, "not_found"],
        [
          "invalid JSON",
          {
            method: "POST",
            url: "/v1/products",
            payload: "{nope",
            headers: { "content-type": "application/json" },
          },
          400,
          "invalid_json",
        ],
        [
          "body that is not JSON",
          {
            method: "POST",
            url: "/v1/products",
            payload: "sku=x",
            headers: { "content-type": "text/plain" },
          },
          415,
          "invalid_request",
        ],
        [
          "product without a title",
          { method: "POST", url: "/v1/products", payload: { sku: "X", category: "home" } },
          422,
          "invalid_request",
        ],
        [
          "batch over the limit",
          {
            method: "POST",
            url: "/v1/products",
            payload: { products: Array.from({ length: 1001 }, () => ({})) },
          },
          422,
          "invalid_request",
        ],
      ];
      for (const [name, request, status, code] of cases) {
        const response = await api(request);
        assert.equal(response.statusCode, status, `${name}: ${response.body}`);
        const problem = problemOf(response);
        assert.equal(problem.code, code, name);
        assert.equal(problem.status, status, name);
        assert.ok(problem.title && problem.detail && problem.type.endsWith(code), name);
      }
      const oversized = await api({
        method: "POST",
        url: "/v1/products",
        payload: JSON.stringify({ sku: "BIG", title: "x".repeat(65 * 1024 * 1024) }),
        headers: { "content-type": "application/json" },
      });
      assert.equal(oversized.statusCode, 413);
      assert.equal(problemOf(oversized).code, "payload_too_large");
    });

    it("reports each product of a batch, accepting the good ones", async () => {
      const response = await api({
        method: "POST",
        url: "/v1/products",
        payload: {
          products: [
            {
              sku: "BATCH-1",
              title: "Mug",
              category: "home",
              referenceImages: [{ base64: photo.toString("base64") }],
            },
            { sku: "../BATCH-2", title: "Mug", category: "home" },
          ],
        },
      });
      assert.equal(response.statusCode, 207);
      const results = (response.json() as { results: { status: string; code?: string }[] }).results;
      assert.deepEqual(
        results.map((result) => [result.status, result.code]),
        [
          ["accepted", undefined],
          ["rejected", "invalid_sku"],
        ],
      );
    });

    it("exposes Prometheus metrics with queue depth and coverage", async () => {
      const metrics = await app.inject("/metrics");
      assert.equal(metrics.statusCode, 200);
      assert.match(metrics.body, /shotlist_queue_jobs\{state="succeeded"\} \d+/);
      assert.match(metrics.body, /shotlist_catalogue_coverage_ratio \d/);
      assert.match(metrics.body, /shotlist_job_duration_seconds_bucket/);
    });
  });
}
