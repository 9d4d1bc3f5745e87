import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import sharp from "sharp";
import { assetKey } from "../../src/blobs/store.js";
import { listReviewCommand } from "../../src/cli/review.js";
import { sha256Hex } from "../../src/domain/canonical.js";
import { buildApp } from "../../src/http/app.js";
import { submitProduct } from "../../src/intake/submit.js";
import { SHOPIFY_WRITEBACK_KIND } from "../../src/integrations/shopify/writeback.js";
import type { Worker } from "../../src/queue/worker.js";
import { createApiKey, revokeApiKey } from "../../src/store/api-keys.js";
import type { RenderJobPayload } from "../../src/store/products.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { runCli } from "../helpers/cli.js";
import { pngBomb } from "../helpers/images.js";

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);

/**
 * A shot list whose hero chain cannot pass its own checks: both links place the subject at
 * half or 60% of the frame, the fill check wants 0.80–0.95. Every hero goes to review with
 * two rejected candidates — the real path, through real renders and real checks.
 */
const SHOT_LIST = `version: 1
defaults:
  output: { width: 400, height: 400, format: jpeg, quality: 86 }
slots:
  hero:
    alt: "{{title}}"
    source: { reference: 0 }
    chain:
      - provider: local
        model: sharp
        steps:
          - { op: cutout }
          - { op: crop }
          - { op: place, fill: 0.5, background: "#ffffff" }
      - provider: local
        model: studio
        steps:
          - { op: cutout }
          - { op: crop }
          - { op: place, fill: 0.6, background: "#ffffff" }
    checks:
      whiteBorder: { minValue: 250 }
      fill: { min: 0.80, max: 0.95 }
      notBlank: { minStdDev: 4 }
      notInput: true
categories:
  home:
    slots: [hero]
  bags:
    slots: [hero]
`;

const SKUS = [
  "REV-APPROVE",
  "REV-REQUEUE",
  "REV-UPLOAD",
  "REV-REJECT",
  "REV-RACE",
  "REV-BAD",
] as const;
const MAX_IMAGE_BYTES = 1_000_000;

interface ReviewItem {
  id: number;
  sku: string;
  category: string;
  slot: string;
  status: string;
  reason: string | null;
  since: string;
  recipeHash: string;
  expected: { output: { width: number; height: number; format: string } };
  attempts: { jobId: number; link: number | null; outcome: string; error: string | null }[];
  candidates: {
    id: number;
    url: string;
    link: number;
    model: string;
    failedChecks: { name: string }[];
  }[];
  decisions: {
    decision: string;
    reason: string | null;
    assetId: number | null;
    jobId: number | null;
    provider: string | null;
    model: string | null;
    decidedBy: { keyId: number; name: string } | null;
  }[];
}
interface DecisionAnswer {
  item: ReviewItem;
  asset: { id: number; sha256: string; url: string } | null;
  jobId: number | null;
}

/** A product photo a retoucher might deliver: a subject filling 0.85 of a white 400 px frame. */
async function humanImage(
  options: { width?: number; height?: number; blank?: boolean } = {},
): Promise<Buffer> {
  const width = options.width ?? 400;
  const height = options.height ?? 400;
  const canvas = sharp({ create: { width, height, channels: 3, background: "#ffffff" } });
  if (options.blank) return canvas.jpeg({ quality: 90 }).toBuffer();
  const subject = await sharp({
    create: {
      width: Math.round(width * 0.85),
      height: Math.round(height * 0.75),
      channels: 3,
      background: "#8a5a3c",
    },
  })
    .png()
    .toBuffer();
  return canvas
    .composite([
      { input: subject, left: Math.round(width * 0.075), top: Math.round(height * 0.125) },
    ])
    .jpeg({ quality: 90 })
    .toBuffer();
}

for (const backend of BACKENDS) {
  describe(`review queue on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let auth: Record<string, string>;
    let configDir: string;
    let goodImage: Buffer;
    const items = new Map<string, ReviewItem>();

    /** Renders only: outbound webhook deliveries stay queued, so their rows can be read. */
    const startRenderWorker = (): Worker =>
      env.runtime.startWorker({ pollMs: 20, kinds: ["render", "intake"] });

    const api = (request: InjectOptions) =>
      app.inject({ ...request, headers: { ...auth, ...request.headers } });
    const json = <T>(response: LightMyRequestResponse): T => response.json() as T;
    const problemOf = (response: LightMyRequestResponse) => {
      assert.match(String(response.headers["content-type"]), /^application\/problem\+json/);
      return response.json() as { status: number; code: string; detail: string } & Record<
        string,
        unknown
      >;
    };

    /** Everything a refused request must leave as it was. */
    async function snapshot() {
      const count = async (sql: string) =>
        (await env.runtime.db.query<{ n: number }>(`select count(*)::integer as n from ${sql}`))[0]
          ?.n;
      return {
        items: await env.runtime.db.query(
          "select id, status, closed_at from review_items order by id",
        ),
        decisions: await count("review_decisions"),
        assets: await env.runtime.db.query("select id, state, made_by from assets order by id"),
        jobs: await count("jobs"),
        slots: await env.runtime.db.query(
          "select product_sku, slot, state, asset_id from product_slots order by product_sku, slot",
        ),
        deliveries: await count("webhook_deliveries"),
      };
    }

    const slotOf = async (sku: string) =>
      (
        await env.runtime.db.query<{ state: string; asset_id: number | null; recipe_hash: string }>(
          "select state, asset_id, recipe_hash from product_slots where product_sku = $1 and slot = 'hero'",
          [sku],
        )
      )[0];

    before(async () => {
      configDir = mkdtempSync(join(tmpdir(), "shotlist-review-"));
      const configPath = join(configDir, "shots.yaml");
      writeFileSync(configPath, SHOT_LIST);
      env = await createTestRuntime(backend, {
        SHOTLIST_CONFIG: configPath,
        SHOTLIST_MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
        SHOTLIST_ALLOW_PRIVATE_NETWORKS: "1",
        // Write-back configured, never reached: no worker here claims its jobs.
        SHOTLIST_SHOPIFY_SHOP: "review-test.myshopify.com",
        SHOTLIST_SHOPIFY_ACCESS_TOKEN: "shpat_review_test",
        SHOTLIST_SHOPIFY_API_URL: "http://127.0.0.1:9",
      });
      app = await buildApp(env.runtime);
      auth = await apiHeaders(env);
      goodImage = await humanImage();
      // A subscriber for the publish events: never delivered here (no webhook lane runs), so
      // the outbox rows show what a human publish sent.
      const endpoint = await api({
        method: "POST",
        url: "/v1/webhook-endpoints",
        payload: {
          url: "http://127.0.0.1:9/hooks",
          events: ["asset.published", "product.complete"],
        },
      });
      assert.equal(endpoint.statusCode, 201, endpoint.body);
      for (const sku of SKUS) {
        await submitProduct(env.runtime.intake, {
          sku,
          title: `Mug ${sku}`,
          category: sku === "REV-REJECT" ? "bags" : "home",
          // A product that came from Shopify: a publish that completes it writes back.
          attributes: sku === "REV-APPROVE" ? { shopifyProductId: "8123456789" } : {},
          referenceImages: [{ base64: photo.toString("base64") }],
        });
      }
      const worker = startRenderWorker();
      try {
        await waitFor(async () => {
          const rows = await env.runtime.db.query<{ n: number }>(
            "select count(*)::integer as n from product_slots where state = 'needs_review'",
          );
          return rows[0]?.n === SKUS.length;
        }, "every hero to go to review");
      } finally {
        await worker.stop();
      }
    });
    after(async () => {
      await app.close();
      await env.cleanup();
      rmSync(configDir, { recursive: true, force: true });
    });

    it("lists every slot in review with its reason, attempts, rejected candidates and what it expects", async () => {
      const response = await api({ method: "GET", url: "/v1/review" });
      assert.equal(response.statusCode, 200, response.body);
      const page = json<{ items: ReviewItem[]; nextCursor: string | null }>(response);
      assert.deepEqual(page.items.map((item) => item.sku).sort(), [...SKUS].sort());
      assert.equal(page.nextCursor, null);
      for (const item of page.items) {
        items.set(item.sku, item);
        assert.equal(item.slot, "hero");
        assert.equal(item.status, "open");
        assert.equal(item.category, item.sku === "REV-REJECT" ? "bags" : "home");
        assert.match(String(item.reason), /link 0 local:sharp: checks failed \(fill/);
        assert.match(String(item.reason), /link 1 local:studio: checks failed \(fill/);
        assert.deepEqual(item.expected.output, { width: 400, height: 400, format: "jpeg" });
        assert.deepEqual(
          item.attempts.map((attempt) => [attempt.link, attempt.outcome]),
          [
            [0, "check_failed"],
            [1, "check_failed"],
          ],
        );
        assert.match(String(item.attempts[0]?.error), /^fill: /);
        // Newest first: the second link's output, then the first's; each with its failed check.
        assert.deepEqual(
          item.candidates.map((candidate) => [candidate.link, candidate.model]),
          [
            [1, "studio"],
            [0, "sharp"],
          ],
        );
        for (const candidate of item.candidates) {
          assert.deepEqual(
            candidate.failedChecks.map((check) => check.name),
            ["fill"],
          );
        }
        assert.deepEqual(item.decisions, []);
      }
      // A reviewer can look at a candidate: its bytes are in the blob store.
      const candidate = items.get("REV-APPROVE")?.candidates[0];
      assert.ok(candidate);
      const bytes = await app.inject(new URL(candidate.url).pathname);
      assert.equal(bytes.statusCode, 200);
      assert.equal(bytes.headers["content-type"], "image/jpeg");
    });

    it("filters by sku, category and slot, and pages with a cursor", async () => {
      const skusOf = async (query: string) =>
        json<{ items: ReviewItem[] }>(await api({ method: "GET", url: `/v1/review${query}` }))
          .items.map((item) => item.sku)
          .sort();
      assert.deepEqual(await skusOf("?sku=REV-BAD"), ["REV-BAD"]);
      assert.deepEqual(await skusOf("?category=bags"), ["REV-REJECT"]);
      assert.deepEqual((await skusOf("?category=home")).length, SKUS.length - 1);
      assert.deepEqual((await skusOf("?slot=hero")).length, SKUS.length);
      assert.deepEqual(await skusOf("?slot=lifestyle"), []);
      assert.deepEqual(await skusOf("?sku=REV-BAD&category=bags"), []);
      const seen: number[] = [];
      let cursor: string | null = "";
      for (let pages = 0; cursor !== null; pages++) {
        assert.ok(pages <= SKUS.length / 2, "pages of two hold every item");
        const page: { items: ReviewItem[]; nextCursor: string | null } = json(
          await api({
            method: "GET",
            url: `/v1/review?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
          }),
        );
        seen.push(...page.items.map((item) => item.id));
        cursor = page.nextCursor;
      }
      assert.deepEqual(
        seen,
        [...items.values()].map((item) => item.id).sort((a, b) => a - b),
      );
      for (const [query, message] of [
        ["?sku=..%2Fetc", /sku/],
        ["?slot=Hero!", /slot must be a slot name/],
        ["?status=approved", /status must be one of open, rejected/],
        ["?cursor=-1", /cursor/],
        ["?limit=0", /limit/],
      ] as const) {
        const refused = await api({ method: "GET", url: `/v1/review${query}` });
        assert.equal(refused.statusCode, 400, query);
        const problem = problemOf(refused);
        assert.equal(problem.code, "invalid_request");
        assert.match(problem.detail, message);
      }
    });

    it("lists the queue in the terminal with `shotlist review list`, with the API's filters", async () => {
      const lines: string[] = [];
      await listReviewCommand(env.runtime.db, { limit: "100" }, (line) => lines.push(line));
      const rows = lines.join("\n").split("\n");
      assert.equal(rows.length, SKUS.length);
      for (const row of rows)
        assert.match(row, /hero +open +\S+ +2 candidates +link 0 local:sharp/);
      lines.length = 0;
      await listReviewCommand(env.runtime.db, { category: "bags" }, (line) => lines.push(line));
      assert.match(lines.join(""), /REV-REJECT/);
      assert.doesNotMatch(lines.join(""), /REV-BAD/);
      await assert.rejects(
        listReviewCommand(env.runtime.db, { status: "approved" }, () => {}),
        /status must be one of open, rejected/,
      );
      if (env.databaseUrl) {
        // The command as people run it, in its own process on the same PostgreSQL.
        const cli = runCli(["review", "list", "--sku", "REV-BAD"], {
          SHOTLIST_DATABASE_URL: env.databaseUrl,
          SHOTLIST_CONFIG: join(configDir, "shots.yaml"),
          SHOTLIST_DATA_DIR: env.dataDir,
        });
        assert.equal(await cli.exited, 0, cli.output());
        assert.match(cli.output(), /^ +\d+ +REV-BAD +hero +open /m);
        assert.doesNotMatch(cli.output(), /REV-APPROVE/);
      }
    });

    it("approves the newest candidate: the slot is published, coverage counts it, and the asset says which key approved it", async () => {
      const item = items.get("REV-APPROVE");
      assert.ok(item);
      const coverageBefore = json<{ publishedSlots: number; completeProducts: number }>(
        await api({ method: "GET", url: "/v1/coverage" }),
      );
      const response = await api({
        method: "POST",
        url: `/v1/review/${item.id}/approve`,
        payload: { reason: "fill is fine for this mug" },
      });
      assert.equal(response.statusCode, 200, response.body);
      const answer = json<DecisionAnswer>(response);
      assert.equal(answer.item.status, "approved");
      assert.equal(answer.asset?.id, item.candidates[0]?.id);
      assert.equal(answer.jobId, null);
      assert.equal(answer.item.decisions.length, 1);
      assert.equal(answer.item.decisions[0]?.decision, "approved");
      assert.equal(answer.item.decisions[0]?.reason, "fill is fine for this mug");

      const slot = await slotOf("REV-APPROVE");
      assert.equal(slot?.state, "published");
      assert.equal(slot?.asset_id, answer.asset?.id);
      const coverage = json<{ publishedSlots: number; completeProducts: number }>(
        await api({ method: "GET", url: "/v1/coverage" }),
      );
      assert.equal(coverage.publishedSlots, coverageBefore.publishedSlots + 1);
      assert.equal(coverage.completeProducts, coverageBefore.completeProducts + 1);

      const asset = json<{
        state: string;
        madeBy: string;
        checks: { name: string; passed: boolean }[];
        review: { decision: string; itemId: number; decidedBy: { keyId: number; name: string } };
      }>(await api({ method: "GET", url: `/v1/assets/${answer.asset?.id}` }));
      assert.equal(asset.state, "published");
      assert.equal(asset.madeBy, "provider");
      assert.equal(asset.review.decision, "approved");
      assert.equal(asset.review.itemId, item.id);
      assert.equal(asset.review.decidedBy.name, "test admin,read,write");
      // Its failed checks stay on record: approved despite them, not re-judged.
      assert.equal(asset.checks.find((check) => check.name === "fill")?.passed, false);

      // The same publish events as a render's, from the decision's transaction.
      const events = await env.runtime.db.query<{ event_type: string; payload: { data: unknown } }>(
        "select event_type, payload from webhook_deliveries where payload->'data'->>'sku' = 'REV-APPROVE' order by seq",
      );
      assert.deepEqual(
        events.map((event) => event.event_type),
        ["asset.published", "product.complete"],
      );
      const published = events[0]?.payload.data as { asset: { id: number } } | undefined;
      assert.equal(published?.asset.id, answer.asset?.id);

      // …and the Shopify write-back of the now complete product, queued in the same commit.
      const writebacks = await env.runtime.db.query<{ payload: { sku: string } }>(
        "select payload from jobs where kind = $1",
        [SHOPIFY_WRITEBACK_KIND],
      );
      assert.deepEqual(
        writebacks.map((job) => job.payload.sku),
        ["REV-APPROVE"],
      );

      const listed = json<{ items: ReviewItem[] }>(await api({ method: "GET", url: "/v1/review" }));
      assert.ok(!listed.items.some((listedItem) => listedItem.id === item.id));
      const detail = json<ReviewItem>(await api({ method: "GET", url: `/v1/review/${item.id}` }));
      assert.equal(detail.status, "approved");

      const before = await snapshot();
      for (const url of [`/v1/review/${item.id}/approve`, `/v1/review/${item.id}/reject`]) {
        const again = await api({ method: "POST", url, payload: { reason: "second thoughts" } });
        assert.equal(again.statusCode, 409, url);
        assert.equal(problemOf(again).code, "review_item_resolved");
      }
      const upload = await api({
        method: "POST",
        url: `/v1/review/${item.id}/image`,
        headers: { "content-type": "image/jpeg" },
        payload: goodImage,
      });
      assert.equal(upload.statusCode, 409);
      assert.deepEqual(await snapshot(), before);
    });

    it("rejects with a requeue: one render job from that link, the slot leaves review, and a new item opens when it fails again", async () => {
      const item = items.get("REV-REQUEUE");
      assert.ok(item);
      const jobsBefore = (await snapshot()).jobs ?? 0;
      const response = await api({
        method: "POST",
        url: `/v1/review/${item.id}/reject`,
        payload: {
          reason: "too small; try the studio model again",
          requeue: { provider: "local", model: "studio" },
        },
      });
      assert.equal(response.statusCode, 200, response.body);
      const answer = json<DecisionAnswer>(response);
      assert.equal(answer.item.status, "requeued");
      assert.ok(answer.jobId);
      assert.deepEqual(
        answer.item.decisions.map((decision) => [
          decision.decision,
          decision.provider,
          decision.model,
          decision.jobId,
        ]),
        [["requeued", "local", "studio", answer.jobId]],
      );
      assert.equal((await snapshot()).jobs, jobsBefore + 1);
      const [job] = await env.runtime.db.query<{
        kind: string;
        state: string;
        payload: RenderJobPayload;
      }>("select kind, state, payload from jobs where id = $1", [answer.jobId]);
      const plan = await env.runtime.db.query<{ payload: RenderJobPayload }>(
        "select payload from jobs where key = $1",
        [`render:${item.recipeHash}`],
      );
      const chain = plan[0]?.payload.links ?? [];
      assert.equal(chain.length, 2);
      assert.equal(job?.kind, "render");
      assert.equal(job?.state, "queued");
      // The slot's chain (its first link names the slot's recipe), tried from the studio link.
      assert.deepEqual(job?.payload.links, chain);
      assert.equal(job?.payload.startLink, 1);
      assert.equal((await slotOf("REV-REQUEUE"))?.state, "pending");
      const listed = json<{ items: ReviewItem[] }>(
        await api({ method: "GET", url: "/v1/review?sku=REV-REQUEUE" }),
      );
      assert.deepEqual(listed.items, []);

      // The studio link fails its checks again: the slot is back in review with a new item
      // that shows the requeued job's attempt.
      const worker = startRenderWorker();
      let reopened: ReviewItem | undefined;
      try {
        reopened = await waitFor(async () => {
          const page = json<{ items: ReviewItem[] }>(
            await api({ method: "GET", url: "/v1/review?sku=REV-REQUEUE" }),
          );
          return page.items[0];
        }, "the requeued slot to come back to review");
      } finally {
        await worker.stop();
      }
      assert.notEqual(reopened.id, item.id);
      assert.equal(reopened.status, "open");
      assert.match(String(reopened.reason), /^link 1 local:studio: checks failed/);
      assert.ok(
        reopened.attempts.some(
          (attempt) => attempt.jobId === answer.jobId && attempt.outcome === "check_failed",
        ),
      );
      assert.equal((await slotOf("REV-REQUEUE"))?.state, "needs_review");
      items.set("REV-REQUEUE", reopened);
    });

    it("publishes an uploaded human-made image that passes the slot's checks, with provenance human", async () => {
      const item = items.get("REV-UPLOAD");
      assert.ok(item);
      const response = await api({
        method: "POST",
        url: `/v1/review/${item.id}/image`,
        headers: { "content-type": "image/jpeg" },
        payload: goodImage,
      });
      assert.equal(response.statusCode, 201, response.body);
      const answer = json<DecisionAnswer>(response);
      assert.equal(answer.item.status, "replaced");
      assert.equal(answer.asset?.sha256, sha256Hex(goodImage));
      assert.equal(response.headers.location, `/v1/assets/${answer.asset?.id}`);
      const asset = json<{
        state: string;
        madeBy: string;
        width: number;
        checks: { name: string; passed: boolean }[];
        review: { decision: string; decidedBy: { keyId: number } };
      }>(await api({ method: "GET", url: `/v1/assets/${answer.asset?.id}` }));
      assert.equal(asset.state, "published");
      assert.equal(asset.madeBy, "human");
      assert.equal(asset.width, 400);
      assert.equal(asset.review.decision, "uploaded");
      assert.deepEqual(
        asset.checks.map((check) => [check.name, check.passed]),
        [
          ["decodes", true],
          ["size", true],
          ["whiteBorder", true],
          ["fill", true],
          ["notBlank", true],
          ["notInput", true],
        ],
      );
      const slot = await slotOf("REV-UPLOAD");
      assert.equal(slot?.state, "published");
      assert.equal(slot?.asset_id, answer.asset?.id);
      const bytes = await app.inject(new URL(String(answer.asset?.url)).pathname);
      assert.equal(bytes.statusCode, 200);
      assert.ok(bytes.rawPayload.equals(goodImage));
      const product = json<{
        coverage: { complete: number; required: number };
        slots: { asset: { id: number; madeBy: string } | null }[];
      }>(await api({ method: "GET", url: "/v1/products/REV-UPLOAD" }));
      assert.deepEqual(product.coverage, { complete: 1, required: 1, ratio: 1 });
      assert.deepEqual(product.slots[0]?.asset?.madeBy, "human");
    });

    it("refuses an upload that fails the slot's checks with the failed checks, publishing and keeping nothing", async () => {
      const item = items.get("REV-BAD");
      assert.ok(item);
      const blank = await humanImage({ blank: true });
      const wide = await humanImage({ width: 400, height: 300 });
      const before = await snapshot();
      for (const [image, failed] of [
        [blank, ["fill", "notBlank"]],
        [wide, ["size"]],
      ] as const) {
        const response = await api({
          method: "POST",
          url: `/v1/review/${item.id}/image`,
          headers: { "content-type": "image/jpeg" },
          payload: image,
        });
        assert.equal(response.statusCode, 422, response.body);
        const problem = problemOf(response);
        assert.equal(problem.code, "check_failed");
        assert.deepEqual(
          (problem.failedChecks as { name: string }[]).map((check) => check.name),
          failed,
        );
        assert.equal(
          await env.runtime.blobs.has(assetKey(sha256Hex(image), "jpg")),
          false,
          "a refused image is not kept",
        );
      }
      assert.deepEqual(await snapshot(), before);
      assert.equal((await slotOf("REV-BAD"))?.state, "needs_review");
    });

    it("rejects without a requeue: the item stays listed as rejected, takes no second rejection or approval, and can still take an upload", async () => {
      const item = items.get("REV-REJECT");
      assert.ok(item);
      const response = await api({
        method: "POST",
        url: `/v1/review/${item.id}/reject`,
        payload: { reason: "the cut-out lost the handle" },
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(json<DecisionAnswer>(response).item.status, "rejected");
      assert.equal((await slotOf("REV-REJECT"))?.state, "needs_review");
      const rejected = json<{ items: ReviewItem[] }>(
        await api({ method: "GET", url: "/v1/review?status=rejected" }),
      );
      assert.deepEqual(
        rejected.items.map((listed) => listed.sku),
        ["REV-REJECT"],
      );
      const open = json<{ items: ReviewItem[] }>(
        await api({ method: "GET", url: "/v1/review?status=open" }),
      );
      assert.ok(!open.items.some((listed) => listed.sku === "REV-REJECT"));
      const all = json<{ items: ReviewItem[] }>(await api({ method: "GET", url: "/v1/review" }));
      assert.ok(all.items.some((listed) => listed.sku === "REV-REJECT"));

      const before = await snapshot();
      for (const [url, payload] of [
        [`/v1/review/${item.id}/reject`, { reason: "still bad" }],
        [`/v1/review/${item.id}/approve`, {}],
      ] as const) {
        const again = await api({ method: "POST", url, payload });
        assert.equal(again.statusCode, 409, url);
        const problem = problemOf(again);
        assert.equal(problem.code, "review_item_resolved");
        assert.equal(problem.status, 409);
        assert.equal(problem.itemStatus, "rejected");
      }
      assert.deepEqual(await snapshot(), before);

      const upload = await api({
        method: "POST",
        url: `/v1/review/${item.id}/image`,
        headers: { "content-type": "image/jpeg" },
        payload: goodImage,
      });
      assert.equal(upload.statusCode, 201, upload.body);
      const answer = json<DecisionAnswer>(upload);
      assert.equal(answer.item.status, "replaced");
      assert.deepEqual(
        answer.item.decisions.map((decision) => decision.decision),
        ["rejected", "uploaded"],
      );
      assert.equal((await slotOf("REV-REJECT"))?.state, "published");
    });

    it("lets one of several reviewers deciding at once win; the others get 409 and write nothing", async () => {
      const item = items.get("REV-RACE");
      assert.ok(item);
      const before = await snapshot();
      const answers = await Promise.all([
        api({ method: "POST", url: `/v1/review/${item.id}/approve`, payload: {} }),
        api({ method: "POST", url: `/v1/review/${item.id}/reject`, payload: { reason: "no" } }),
        api({ method: "POST", url: `/v1/review/${item.id}/approve`, payload: {} }),
      ]);
      const statuses = answers.map((answer) => answer.statusCode);
      assert.equal(statuses.filter((status) => status === 200).length, 1, statuses.join());
      assert.equal(statuses.filter((status) => status === 409).length, 2, statuses.join());
      for (const answer of answers.filter((response) => response.statusCode === 409)) {
        assert.equal(problemOf(answer).code, "review_item_resolved");
      }
      assert.equal((await snapshot()).decisions, (before.decisions ?? 0) + 1);
      const detail = json<ReviewItem>(await api({ method: "GET", url: `/v1/review/${item.id}` }));
      assert.equal(detail.decisions.length, 1);
    });

    it("answers bad input with a clear 4xx and writes nothing", async () => {
      const item = items.get("REV-BAD");
      assert.ok(item);
      const otherCandidate = items.get("REV-APPROVE")?.candidates[1];
      assert.ok(otherCandidate, "a candidate of another item");
      const readOnly = await apiHeaders(env, ["read"]);
      const revoked = await createApiKey(env.runtime.db, { name: "gone", scopes: ["admin"] });
      await revokeApiKey(env.runtime.db, revoked.id);
      const image = (body: Buffer | string, type: string): InjectOptions => ({
        method: "POST",
        url: `/v1/review/${item.id}/image`,
        headers: { "content-type": type },
        payload: body,
      });
      const reject = (payload: unknown): InjectOptions => ({
        method: "POST",
        url: `/v1/review/${item.id}/reject`,
        payload: payload as Record<string, unknown>,
      });
      const approve = (payload: unknown): InjectOptions => ({
        method: "POST",
        url: `/v1/review/${item.id}/approve`,
        payload: payload as Record<string, unknown>,
      });
      const cases: [string, InjectOptions, number, string][] = [
        ["unknown id: list item", { method: "GET", url: "/v1/review/999999" }, 404, "not_found"],
        [
          "unknown id: approve",
          { method: "POST", url: "/v1/review/999999/approve", payload: {} },
          404,
          "not_found",
        ],
        [
          "unknown id: reject",
          { method: "POST", url: "/v1/review/999999/reject", payload: { reason: "x" } },
          404,
          "not_found",
        ],
        [
          "unknown id: image",
          {
            method: "POST",
            url: "/v1/review/999999/image",
            headers: { "content-type": "image/jpeg" },
            payload: goodImage,
          },
          404,
          "not_found",
        ],
        [
          "id that is not a number",
          { method: "POST", url: "/v1/review/abc/approve", payload: {} },
          400,
          "invalid_request",
        ],
        ["reject without a reason", reject({}), 400, "invalid_request"],
        ["reject with an empty reason", reject({ reason: "  " }), 400, "invalid_request"],
        [
          "reject with a 501-character reason",
          reject({ reason: "x".repeat(501) }),
          400,
          "invalid_request",
        ],
        ["reject with an unknown field", reject({ reason: "x", also: 1 }), 400, "invalid_request"],
        [
          "requeue with an unknown field",
          reject({ reason: "x", requeue: { provider: "local", region: "eu" } }),
          400,
          "invalid_request",
        ],
        [
          "approve with an unknown field",
          approve({ assetId: 1, force: true }),
          400,
          "invalid_request",
        ],
        ["approve with a bad assetId", approve({ assetId: "first" }), 400, "invalid_request"],
        [
          "approve with invalid JSON",
          {
            method: "POST",
            url: `/v1/review/${item.id}/approve`,
            headers: { "content-type": "application/json" },
            payload: "{",
          },
          400,
          "invalid_json",
        ],
        [
          "approve an asset that is not this item's candidate",
          approve({ assetId: otherCandidate.id }),
          422,
          "review_candidate_unknown",
        ],
        [
          "requeue on an unregistered provider",
          reject({ reason: "x", requeue: { provider: "openai" } }),
          422,
          "requeue_not_allowed",
        ],
        [
          "requeue on a model the chain does not have",
          reject({ reason: "x", requeue: { provider: "local", model: "gpt-image-1" } }),
          422,
          "requeue_not_allowed",
        ],
        ["image as JSON", image('{"url": "x"}', "application/json"), 415, "unsupported_media_type"],
        ["image as text", image("not an image", "text/plain"), 415, "unsupported_media_type"],
        [
          "image of another type than said",
          image(goodImage, "image/png"),
          415,
          "unsupported_media_type",
        ],
        [
          "image bytes that do not decode",
          image("GIF89a garbage", "image/png"),
          400,
          "image_undecodable",
        ],
        ["an empty image", image(Buffer.alloc(0), "image/jpeg"), 400, "image_undecodable"],
        ["a decompression bomb", image(pngBomb(), "image/png"), 413, "image_too_large"],
        [
          "an image over the byte limit",
          image(Buffer.alloc(MAX_IMAGE_BYTES + 1, 0xff), "image/jpeg"),
          413,
          "payload_too_large",
        ],
        ["a read-only key", { ...approve({}), headers: readOnly }, 403, "forbidden"],
        [
          "a read-only key uploading",
          {
            ...image(goodImage, "image/jpeg"),
            headers: { ...readOnly, "content-type": "image/jpeg" },
          },
          403,
          "forbidden",
        ],
        [
          "a revoked key",
          { ...reject({ reason: "x" }), headers: { authorization: `Bearer ${revoked.key}` } },
          401,
          "unauthorized",
        ],
      ];
      const before = await snapshot();
      for (const [name, request, status, code] of cases) {
        const response = await api(request);
        assert.equal(response.statusCode, status, `${name}: ${response.body}`);
        const problem = problemOf(response);
        assert.equal(problem.code, code, `${name}: ${response.body}`);
        assert.ok(problem.detail.length > 0, name);
      }
      for (const request of [
        approve({}),
        reject({ reason: "x" }),
        image(goodImage, "image/jpeg"),
      ]) {
        const anonymous = await app.inject(request);
        assert.equal(anonymous.statusCode, 401, request.url as string);
        assert.equal(problemOf(anonymous).code, "unauthorized");
      }
      assert.deepEqual(await snapshot(), before);
      const still = json<ReviewItem>(await api({ method: "GET", url: `/v1/review/${item.id}` }));
      assert.equal(still.status, "open");
      assert.deepEqual(still.decisions, []);
    });
  });
}
