import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
// Ajv is what @seriousme/openapi-schema-validator (and Fastify) validate with; a JSON Schema
// 2020-12 check independent of zod, so the document is tested as JSON, not as zod again.
import { Ajv2020 } from "ajv/dist/2020.js";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import sharp from "sharp";
import { buildApp } from "../../src/http/app.js";
import { createWebhookDeliveryHandler } from "../../src/integrations/webhooks/delivery.js";
import type { Scope } from "../../src/store/api-keys.js";
import { type ClaimedJob, countOpenJobs } from "../../src/store/jobs.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

type Json = Record<string, unknown>;
interface Operation extends Json {
  operationId: string;
  security: Record<string, string[]>[];
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
}

const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);
const packageVersion = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

const METHODS = ["get", "post", "put", "patch", "delete"];

/**
 * "METHOD /path" of every route Fastify registered, read from printRoutes' tree (each line's
 * depth says which parent it extends). HEAD is left out: Fastify adds it to every GET.
 */
function registeredRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const match = /^([│ ]*)[├└]── (.*?) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) {
      assert.equal(line.trim(), "", `printRoutes line not understood: ${line}`);
      continue;
    }
    const [, indent = "", segment = "", methods = ""] = match;
    const depth = indent.length / 4;
    stack.length = depth;
    stack.push(segment);
    const path = stack.join("").replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    for (const method of methods.split(", "))
      if (method !== "HEAD") routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

function operationsOf(document: Json): { method: string; path: string; operation: Operation }[] {
  return Object.entries(document.paths as Record<string, Record<string, Operation>>).flatMap(
    ([path, item]) =>
      METHODS.filter((method) => item[method]).map((method) => ({
        method,
        path,
        operation: item[method] as Operation,
      })),
  );
}

/** The document's schema with its component references resolved, for Ajv to compile alone. */
function inlineRefs(value: unknown, document: Json): unknown {
  if (Array.isArray(value)) return value.map((item) => inlineRefs(item, document));
  if (value === null || typeof value !== "object") return value;
  const ref = (value as { $ref?: unknown }).$ref;
  if (typeof ref === "string") {
    const name = ref.replace("#/components/schemas/", "");
    const schemas = (document.components as { schemas: Json }).schemas;
    assert.ok(schemas[name], `unresolved reference ${ref}`);
    return inlineRefs(schemas[name], document);
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, inlineRefs(item, document)]),
  );
}

for (const backend of BACKENDS) {
  describe(`OpenAPI document and docs page on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let document: Json;
    let auth: Record<string, string>;
    // Formats (uri, date-time) are left to the API's own tests; the shapes are what is held here.
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });

    before(async () => {
      env = await createTestRuntime(backend);
      app = await buildApp(env.runtime);
      auth = await apiHeaders(env);
      document = (await app.inject("/openapi.json")).json() as Json;
    });
    after(async () => {
      await app.close();
      await env.cleanup();
    });

    const api = (request: InjectOptions) =>
      app.inject({ ...request, headers: { ...auth, ...request.headers } });

    /** Holds an answer against what the document says this operation answers with that status. */
    function assertDocumented(method: string, path: string, response: LightMyRequestResponse) {
      const operation = (document.paths as Record<string, Record<string, Operation>>)[path]?.[
        method
      ];
      assert.ok(operation, `${method} ${path} is not in the document`);
      const answer = operation.responses[String(response.statusCode)];
      assert.ok(answer, `${method} ${path} does not document ${response.statusCode}`);
      const mediaType = String(response.headers["content-type"] ?? "").split(";")[0] ?? "";
      if (response.body.length === 0) return;
      const media = answer.content?.[mediaType];
      assert.ok(media, `${method} ${path} ${response.statusCode} does not document ${mediaType}`);
      if (!/[/+]json$/.test(mediaType)) return;
      const validate = ajv.compile(inlineRefs(media.schema, document) as Json);
      assert.ok(
        validate(response.json()),
        `${method} ${path} ${response.statusCode}: ${ajv.errorsText(validate.errors)}\n${response.body.slice(0, 500)}`,
      );
    }

    it("serves a valid OpenAPI 3.1 document without an API key, cacheable for five minutes", async () => {
      const response = await app.inject("/openapi.json");
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers["content-type"]), /^application\/json/);
      assert.equal(response.headers["cache-control"], "public, max-age=300");
      const validator = new Validator();
      const result = await validator.validate(response.json() as Json);
      assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
      assert.equal(validator.version, "3.1");
      const info = document.info as { version: string };
      assert.equal(info.version, packageVersion);
      assert.deepEqual(document.servers, [{ url: env.settings.publicUrl }]);
      const schemes = (document.components as { securitySchemes: Record<string, Json> })
        .securitySchemes;
      assert.equal(schemes.apiKey?.type, "http");
      assert.equal(schemes.apiKey?.scheme, "bearer");
    });

    it("documents every route Fastify registered, and no route it did not", () => {
      const registered = registeredRoutes(app);
      // The parser read the tree: routes at several depths and with several parameters.
      for (const route of ["GET /healthz", "POST /v1/products", "GET /i/{sku}/{slot}/{preset}"]) {
        assert.ok(registered.includes(route), `${route} not parsed from printRoutes`);
      }
      assert.ok(registered.filter((route) => route.includes(" /v1/")).length >= 10);
      const documented = operationsOf(document)
        .map(({ method, path }) => `${method.toUpperCase()} ${path}`)
        .sort();
      assert.deepEqual(documented, registered);
    });

    it("names on every /v1 operation the scope the server enforces", async () => {
      const others: Record<Scope, Scope[]> = {
        read: ["write"],
        write: ["read"],
        admin: ["read", "write"],
      };
      const v1 = operationsOf(document).filter(({ path }) => path.startsWith("/v1/"));
      for (const { method, path, operation } of v1) {
        const scope = operation.security[0]?.apiKey?.[0] as Scope | undefined;
        assert.ok(scope, `${method} ${path} names no scope`);
        assert.equal(operation["x-shotlist-scope"], scope);
        assert.ok(operation.responses["401"] && operation.responses["403"], `${method} ${path}`);
        const url = path.replace("{sku}", "NOPE").replace("{id}", "999999");
        const anonymous = await app.inject({ method: method.toUpperCase() as "GET", url });
        assert.equal(anonymous.statusCode, 401, `${method} ${path} without a key`);
        assertDocumented(method, path, anonymous);
        const lacking = await app.inject({
          method: method.toUpperCase() as "GET",
          url,
          headers: await apiHeaders(env, others[scope]),
        });
        assert.equal(lacking.statusCode, 403, `${method} ${path} without ${scope}`);
        assert.equal((lacking.json() as { requiredScope: string }).requiredScope, scope);
        assertDocumented(method, path, lacking);
      }
      const open = operationsOf(document).filter(({ path }) => !path.startsWith("/v1/"));
      for (const { method, path, operation } of open) {
        assert.deepEqual(operation.security, [], `${method} ${path} is open`);
      }
    });

    it("documents the product body so that it accepts what the API accepts and refuses what it refuses", async () => {
      const post = (document.paths as Record<string, Record<string, Operation>>)["/v1/products"]
        ?.post;
      const bodySchema = post?.requestBody?.content["application/json"]?.schema;
      assert.ok(bodySchema);
      const validate = ajv.compile(inlineRefs(bodySchema, document) as Json);
      const good = {
        sku: "MUG-OPENAPI",
        title: "Stoneware Mug",
        category: "home",
        attributes: { color: "sand", capacityMl: 350 },
        referenceImages: [{ base64: photo.toString("base64") }],
      };
      assert.ok(validate(good), ajv.errorsText(validate.errors));
      const accepted = await api({ method: "POST", url: "/v1/products", payload: good });
      assert.equal(accepted.statusCode, 201, accepted.body);
      assertDocumented("post", "/v1/products", accepted);

      // The intake refuses a bad product SKU with validateSku's 400 and everything else
      // (variant SKUs included) with 422; the document gives both.
      const refused: [string, unknown, number][] = [
        ["no title", { sku: "OA-1", category: "home" }, 422],
        ["an unknown field", { ...good, sku: "OA-2", price: 12 }, 422],
        ["a SKU with path tricks", { ...good, sku: "../etc" }, 400],
        ["a variant SKU with a space", { ...good, variants: [{ sku: "A B" }] }, 422],
        [
          "a reference that is two things",
          { ...good, referenceImages: [{ url: "x", base64: "y" }] },
          422,
        ],
        ["an empty batch", { products: [] }, 422],
      ];
      for (const [name, body, status] of refused) {
        assert.equal(validate(body), false, `the document accepts ${name}`);
        const response = await api({ method: "POST", url: "/v1/products", payload: body as Json });
        assert.equal(response.statusCode, status, `${name}: ${response.body}`);
        assertDocumented("post", "/v1/products", response);
      }
    });

    it("answers with the shapes and headers the document gives", async () => {
      const product = {
        sku: "MUG-SHAPES",
        title: "Mug",
        category: "home",
        referenceImages: [{ base64: photo.toString("base64") }],
      };
      const first = await api({
        method: "POST",
        url: "/v1/products",
        payload: product,
        headers: { "idempotency-key": "shapes-1" },
      });
      assert.equal(first.statusCode, 201, first.body);
      const replay = await api({
        method: "POST",
        url: "/v1/products",
        payload: product,
        headers: { "idempotency-key": "shapes-1" },
      });
      assert.equal(replay.headers["idempotent-replayed"], "true");
      const post = (document.paths as Record<string, Record<string, Operation>>)["/v1/products"]
        ?.post as Operation & { parameters: Json[] };
      assert.ok(post.parameters.some((p) => p.name === "Idempotency-Key" && p.in === "header"));
      assert.ok(
        (post.responses["201"] as { headers?: Json }).headers?.["Idempotent-Replayed"],
        "Idempotent-Replayed is documented",
      );
      const reused = await api({
        method: "POST",
        url: "/v1/products",
        payload: { ...product, title: "Other" },
        headers: { "idempotency-key": "shapes-1" },
      });
      assert.equal(reused.statusCode, 422);
      assertDocumented("post", "/v1/products", reused);

      const batch = await api({
        method: "POST",
        url: "/v1/products",
        payload: { products: [product, { sku: "../x" }] },
      });
      assert.equal(batch.statusCode, 207);
      assertDocumented("post", "/v1/products", batch);

      const jobs = await api({ method: "GET", url: "/v1/jobs?limit=2" });
      const jobId = (jobs.json() as { jobs: { id: number }[] }).jobs[0]?.id;
      assert.ok(jobId);
      const key = await api({
        method: "POST",
        url: "/v1/keys",
        payload: { name: "docs", scopes: ["read"] },
      });
      const keyId = (key.json() as { id: number }).id;
      const reads: [string, string, string][] = [
        ["get", "/v1/products", "/v1/products?limit=1"],
        ["get", "/v1/products/{sku}", "/v1/products/MUG-SHAPES"],
        ["get", "/v1/products/{sku}", "/v1/products/NOPE"],
        ["get", "/v1/products/{sku}", "/v1/products/a%07b"],
        ["get", "/v1/products", "/v1/products?limit=0"],
        ["get", "/v1/jobs", "/v1/jobs?limit=2"],
        ["get", "/v1/jobs", "/v1/jobs?state=lost"],
        ["get", "/v1/jobs/{id}", `/v1/jobs/${jobId}`],
        ["get", "/v1/jobs/{id}", "/v1/jobs/abc"],
        ["get", "/v1/coverage", "/v1/coverage"],
        ["get", "/v1/costs", "/v1/costs?since=2026-01-01"],
        ["get", "/v1/costs", "/v1/costs?since=last-week"],
        ["get", "/v1/assets/{id}", "/v1/assets/999999"],
        ["get", "/v1/keys", "/v1/keys"],
        ["get", "/healthz", "/healthz"],
        ["get", "/readyz", "/readyz"],
        ["get", "/a/{name}", `/a/${"0".repeat(64)}.jpg`],
        ["get", "/i/{sku}/{slot}", "/i/MUG-SHAPES/nope"],
        ["get", "/i/{sku}/{slot}/{preset}", "/i/MUG-SHAPES/hero/huge"],
      ];
      for (const [method, path, url] of reads) {
        assertDocumented(method, path, await api({ method: "GET", url }));
      }
      assertDocumented("post", "/v1/keys", key);
      const revoked = await api({ method: "DELETE", url: `/v1/keys/${keyId}` });
      assert.equal(revoked.statusCode, 204);
      assertDocumented("delete", "/v1/keys/{id}", revoked);
      const unsigned = await app.inject({
        method: "POST",
        url: "/webhooks/intake",
        payload: product,
      });
      assertDocumented("post", "/webhooks/intake", unsigned);
    });

    it("answers about finished work with the documented shapes: jobs, assets, bytes, on-demand images", async () => {
      const worker = env.runtime.startWorker({ pollMs: 20 });
      try {
        await waitFor(async () => (await countOpenJobs(env.runtime.db)) === 0, "jobs to finish");
      } finally {
        await worker.stop();
      }
      const detail = await api({ method: "GET", url: "/v1/products/MUG-SHAPES" });
      assertDocumented("get", "/v1/products/{sku}", detail);
      const hero = (
        detail.json() as { slots: { slot: string; asset: { id: number; url: string } | null }[] }
      ).slots.find((slot) => slot.slot === "hero")?.asset;
      assert.ok(hero, "the hero was published");
      assertDocumented(
        "get",
        "/v1/assets/{id}",
        await api({ method: "GET", url: `/v1/assets/${hero.id}` }),
      );
      const regenerate = await api({
        method: "POST",
        url: "/v1/products/MUG-SHAPES/regenerate",
        payload: { dryRun: true },
      });
      assert.equal(regenerate.statusCode, 200, regenerate.body);
      assertDocumented("post", "/v1/products/{sku}/regenerate", regenerate);
      const badRegenerate = await api({
        method: "POST",
        url: "/v1/products/MUG-SHAPES/regenerate",
        payload: { slot: "no-such-slot" },
      });
      assert.equal(badRegenerate.statusCode, 422);
      assertDocumented("post", "/v1/products/{sku}/regenerate", badRegenerate);
      const succeeded = await api({ method: "GET", url: "/v1/jobs?state=succeeded&limit=1" });
      assertDocumented("get", "/v1/jobs", succeeded);
      const jobId = (succeeded.json() as { jobs: { id: number }[] }).jobs[0]?.id;
      assert.ok(jobId);
      const job = await api({ method: "GET", url: `/v1/jobs/${jobId}` });
      assert.ok((job.json() as { attemptLog: unknown[] }).attemptLog.length > 0);
      assertDocumented("get", "/v1/jobs/{id}", job);
      assertDocumented("get", "/v1/coverage", await api({ method: "GET", url: "/v1/coverage" }));

      const bytesPath = new URL(hero.url).pathname;
      const bytes = await app.inject(bytesPath);
      assert.equal(bytes.statusCode, 200);
      assertDocumented("get", "/a/{name}", bytes);
      const notModified = await app.inject({
        url: bytesPath,
        headers: { "if-none-match": String(bytes.headers.etag) },
      });
      assert.equal(notModified.statusCode, 304);
      assertDocumented("get", "/a/{name}", notModified);
      for (const [path, url] of [
        ["/i/{sku}/{slot}", "/i/MUG-SHAPES/hero"],
        ["/i/{sku}/{slot}/{preset}", "/i/MUG-SHAPES/hero/thumb"],
      ] as const) {
        const image = await app.inject({ url, headers: { accept: "image/webp" } });
        assert.equal(image.statusCode, 200, url);
        assertDocumented("get", path, image);
        const documented = (document.paths as Record<string, Record<string, Operation>>)[path]?.get
          ?.responses["200"] as { headers: Record<string, unknown> };
        for (const name of ["ETag", "Cache-Control"]) {
          assert.ok(image.headers[name.toLowerCase()], `${url} sends ${name}`);
          assert.ok(documented.headers[name], `${path} documents ${name}`);
        }
      }
    });

    it("answers about the review queue with the documented shapes: items, decisions, uploads", async () => {
      // MUG-SHAPES has one reference photo: its three angles are in review (cannot be made).
      const list = await api({ method: "GET", url: "/v1/review?sku=MUG-SHAPES" });
      assertDocumented("get", "/v1/review", list);
      const items = (list.json() as { items: { id: number; slot: string }[] }).items;
      assert.equal(items.length, 3, list.body);
      const [first, second] = items;
      assert.ok(first && second);
      assertDocumented(
        "get",
        "/v1/review",
        await api({ method: "GET", url: "/v1/review?limit=0" }),
      );
      assertDocumented(
        "get",
        "/v1/review/{id}",
        await api({ method: "GET", url: `/v1/review/${first.id}` }),
      );
      assertDocumented(
        "get",
        "/v1/review/{id}",
        await api({ method: "GET", url: "/v1/review/999999" }),
      );
      const noCandidate = await api({ method: "POST", url: `/v1/review/${first.id}/approve` });
      assert.equal(noCandidate.statusCode, 422, noCandidate.body);
      assertDocumented("post", "/v1/review/{id}/approve", noCandidate);
      const noReason = await api({
        method: "POST",
        url: `/v1/review/${first.id}/reject`,
        payload: {},
      });
      assert.equal(noReason.statusCode, 400);
      assertDocumented("post", "/v1/review/{id}/reject", noReason);
      const rejected = await api({
        method: "POST",
        url: `/v1/review/${second.id}/reject`,
        payload: { reason: "no second photo yet" },
      });
      assert.equal(rejected.statusCode, 200, rejected.body);
      assertDocumented("post", "/v1/review/{id}/reject", rejected);

      const upload = (payload: Buffer | string, type: string) =>
        api({
          method: "POST",
          url: `/v1/review/${first.id}/image`,
          headers: { "content-type": type },
          payload,
        });
      const text = await upload("a photo", "text/plain");
      assert.equal(text.statusCode, 415);
      assertDocumented("post", "/v1/review/{id}/image", text);
      const canvas = () =>
        sharp({ create: { width: 1600, height: 1600, channels: 3, background: "#ffffff" } });
      const blank = await upload(await canvas().jpeg().toBuffer(), "image/jpeg");
      assert.equal(blank.statusCode, 422, blank.body);
      assertDocumented("post", "/v1/review/{id}/image", blank);
      const subject = await sharp({
        create: { width: 1360, height: 1100, channels: 3, background: "#6b4f3a" },
      })
        .png()
        .toBuffer();
      const good = await canvas()
        .composite([{ input: subject, left: 120, top: 250 }])
        .jpeg({ quality: 90 })
        .toBuffer();
      const published = await upload(good, "image/jpeg");
      assert.equal(published.statusCode, 201, published.body);
      assertDocumented("post", "/v1/review/{id}/image", published);
      const assetId = (published.json() as { asset: { id: number } }).asset.id;
      const asset = await api({ method: "GET", url: `/v1/assets/${assetId}` });
      assert.equal((asset.json() as { madeBy: string }).madeBy, "human");
      assertDocumented("get", "/v1/assets/{id}", asset);
    });

    it("answers about outbound webhooks with the documented shapes: endpoints, deliveries, redelivery", async () => {
      const post = (document.paths as Record<string, Record<string, Operation>>)[
        "/v1/webhook-endpoints"
      ]?.post;
      const bodySchema = post?.requestBody?.content["application/json"]?.schema;
      assert.ok(bodySchema);
      const validateBody = ajv.compile(inlineRefs(bodySchema, document) as Json);
      assert.ok(validateBody({ url: "https://pim.example.com/hook", events: ["job.failed"] }));
      // A receiver on loopback, which this server refuses (no SHOTLIST_ALLOW_PRIVATE_NETWORKS):
      // created through a server that allows it, and never connected to.
      const hook = { url: "http://127.0.0.1:9/hook", events: ["job.failed"] };
      const permissive = await buildApp({
        ...env.runtime,
        settings: { ...env.runtime.settings, allowPrivateNetworks: true },
      });
      let created: LightMyRequestResponse;
      try {
        created = await permissive.inject({
          method: "POST",
          url: "/v1/webhook-endpoints",
          headers: auth,
          payload: hook,
        });
      } finally {
        await permissive.close();
      }
      assert.equal(created.statusCode, 201, created.body);
      assertDocumented("post", "/v1/webhook-endpoints", created);
      const endpointId = (created.json() as { id: number }).id;
      const refused: [string, Json, string][] = [
        ["a private address", hook, "webhook_url_forbidden"],
        ["ftp", { ...hook, url: "ftp://example.com/hook" }, "invalid_webhook_url"],
        ["an unknown event", { ...hook, events: ["asset.deleted"] }, "unknown_event"],
        ["no events", { ...hook, events: [] }, "invalid_request"],
        ["an unknown field", { ...hook, secret: "mine" }, "invalid_request"],
      ];
      for (const [name, body, code] of refused) {
        const response = await api({ method: "POST", url: "/v1/webhook-endpoints", payload: body });
        assert.equal(response.statusCode, 400, `${name}: ${response.body}`);
        assert.equal((response.json() as { code: string }).code, code, name);
        assertDocumented("post", "/v1/webhook-endpoints", response);
        // The URL's rules (http(s), a public host) are the address guard's, not the schema's.
        if (code === "unknown_event" || code === "invalid_request") {
          assert.equal(validateBody(body), false, `the document accepts ${name}`);
        }
      }
      assertDocumented(
        "get",
        "/v1/webhook-endpoints",
        await api({ method: "GET", url: "/v1/webhook-endpoints" }),
      );

      // Two job.failed events, and one attempt of the first, refused at the connected address.
      for (const id of [1, 2]) {
        await env.runtime.db.transaction((tx) =>
          env.runtime.webhooks.jobFailed(
            tx,
            { id, kind: "render", key: `render:openapi-${id}`, attempts: 5 } as ClaimedJob,
            "needs_review",
            `documented failure ${id}`,
          ),
        );
      }
      const listed = await api({
        method: "GET",
        url: `/v1/webhooks/deliveries?endpoint=${endpointId}`,
      });
      assert.equal(listed.statusCode, 200, listed.body);
      const [newest, oldest] = (listed.json() as { deliveries: { id: string }[] }).deliveries;
      assert.ok(newest && oldest);
      const handler = createWebhookDeliveryHandler({
        db: env.runtime.db,
        allowPrivateNetworks: false,
      });
      await assert.rejects(
        handler.run({ id: 0, payload: { deliveryId: oldest.id }, attempts: 1 } as ClaimedJob, {
          workerId: "test",
          signal: new AbortController().signal,
          log: env.runtime.log,
        }),
      );
      const page = await api({ method: "GET", url: "/v1/webhooks/deliveries?limit=1" });
      assert.equal(typeof (page.json() as { nextCursor: unknown }).nextCursor, "string");
      assertDocumented("get", "/v1/webhooks/deliveries", page);
      const all = await api({
        method: "GET",
        url: `/v1/webhooks/deliveries?endpoint=${endpointId}`,
      });
      const attempted = (
        all.json() as { deliveries: { id: string; attemptLog: unknown[] }[] }
      ).deliveries.find((delivery) => delivery.id === oldest.id);
      assert.equal(attempted?.attemptLog.length, 1);
      assertDocumented("get", "/v1/webhooks/deliveries", all);
      const reads: [string, number][] = [
        [`/v1/webhooks/deliveries/${oldest.id}`, 200],
        ["/v1/webhooks/deliveries/msg_nope", 404],
      ];
      for (const [url, status] of reads) {
        const response = await api({ method: "GET", url });
        assert.equal(response.statusCode, status, url);
        assertDocumented("get", "/v1/webhooks/deliveries/{id}", response);
      }
      for (const [query, code] of [
        ["?event=asset.deleted", "unknown_event"],
        ["?status=lost", "invalid_request"],
        ["?limit=0", "invalid_request"],
        ["?cursor=abc", "invalid_request"],
      ] as const) {
        const bad = await api({ method: "GET", url: `/v1/webhooks/deliveries${query}` });
        assert.equal(bad.statusCode, 400, query);
        assert.equal((bad.json() as { code: string }).code, code, query);
        assertDocumented("get", "/v1/webhooks/deliveries", bad);
      }

      const redeliver = (id: string) =>
        api({ method: "POST", url: `/v1/webhooks/deliveries/${id}/redeliver` });
      const again = await redeliver(oldest.id);
      assert.equal(again.statusCode, 202, again.body);
      assertDocumented("post", "/v1/webhooks/deliveries/{id}/redeliver", again);
      const unknown = await redeliver("msg_nope");
      assert.equal(unknown.statusCode, 404);
      assertDocumented("post", "/v1/webhooks/deliveries/{id}/redeliver", unknown);
      for (const [url, status] of [
        [`/v1/webhook-endpoints/${endpointId}`, 204],
        [`/v1/webhook-endpoints/${endpointId}`, 404],
        ["/v1/webhook-endpoints/abc", 400],
      ] as const) {
        const response = await api({ method: "DELETE", url });
        assert.equal(response.statusCode, status, url);
        assertDocumented("delete", "/v1/webhook-endpoints/{id}", response);
      }
      const closed = await redeliver(newest.id);
      assert.equal(closed.statusCode, 409, closed.body);
      assertDocumented("post", "/v1/webhooks/deliveries/{id}/redeliver", closed);
    });

    it("documents each outbound event in webhooks, with the Standard Webhooks headers", async () => {
      const webhooks = document.webhooks as Record<
        string,
        { post: Operation & { parameters: Json[] } }
      >;
      assert.deepEqual(Object.keys(webhooks).sort(), [
        "asset.needs_review",
        "asset.published",
        "job.failed",
        "product.complete",
      ]);
      for (const [event, { post }] of Object.entries(webhooks)) {
        assert.deepEqual(
          post.parameters.map((parameter) => parameter.name),
          ["webhook-id", "webhook-timestamp", "webhook-signature"],
          event,
        );
        const schema = post.requestBody?.content["application/json"]?.schema;
        const validate = ajv.compile(inlineRefs(schema, document) as Json);
        const timestamp = new Date().toISOString();
        assert.equal(validate({ type: event, timestamp, data: {} }), false, `${event} data`);
      }
      const validate = ajv.compile(
        inlineRefs(
          webhooks["job.failed"]?.post.requestBody?.content["application/json"]?.schema,
          document,
        ) as Json,
      );
      // What was really sent: the stored payload of the previous test's job.failed events.
      const log = await api({ method: "GET", url: "/v1/webhooks/deliveries?event=job.failed" });
      const sent = (log.json() as { deliveries: { payload: Json }[] }).deliveries[0]?.payload;
      assert.ok(sent, "a job.failed delivery is in the log");
      assert.ok(validate(sent), ajv.errorsText(validate.errors));
      assert.equal(validate({ ...sent, type: "asset.published" }), false);
    });

    it("renders every operation on the /docs page, escaped, with no scripts or outside resources", async () => {
      const page = await app.inject("/docs");
      assert.equal(page.statusCode, 200);
      assert.match(String(page.headers["content-type"]), /^text\/html/);
      assert.equal(page.headers["cache-control"], "public, max-age=300");
      for (const { method, path, operation } of operationsOf(document)) {
        const escapedPath = path.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
        assert.ok(
          page.body.includes(`${method.toUpperCase()}</span> <code>${escapedPath}</code>`),
          `${method} ${path} missing from /docs`,
        );
        assert.ok(page.body.includes(`id="${operation.operationId}"`));
      }
      assert.ok(page.body.includes("&#60;sha256&#62;"), "descriptions are escaped");
      assert.ok(!page.body.includes("<sha256>"));
      assert.doesNotMatch(page.body, /<script|<link|src="http|@import/i);
    });

    it("answers HEAD on the document and a 404 problem for a method it does not serve", async () => {
      const head = await app.inject({ method: "HEAD", url: "/openapi.json" });
      assert.equal(head.statusCode, 200);
      assert.equal(head.body, "");
      assert.equal(head.headers["cache-control"], "public, max-age=300");
      const post = await app.inject({ method: "POST", url: "/openapi.json", payload: {} });
      assert.equal(post.statusCode, 404);
      assert.match(String(post.headers["content-type"]), /^application\/problem\+json/);
      assert.equal((post.json() as { code: string }).code, "not_found");
    });
  });
}
