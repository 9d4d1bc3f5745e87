import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import type { Recipe } from "../../src/domain/recipe.js";
import { createHttpProvider, failureKindOf } from "../../src/providers/http/index.js";
import {
  type AsyncPaidProvider,
  ProviderCallError,
  type ProviderRequest,
  type SyncPaidProvider,
} from "../../src/providers/provider.js";
import { type FakePaidProvider, startFakePaidProvider } from "../fakes/paid-provider.js";

const recipe: Recipe = {
  schema: 1,
  category: "home",
  slot: "hero",
  provider: "studio-api",
  model: "studio-1",
  modelVersion: "studio-api/studio-1",
  source: { kind: "reference", index: 0 },
  steps: [],
  prompt: "a ceramic vase on white",
  seed: 12345,
  references: [],
  inputs: { swatches: [] },
  output: { width: 400, height: 400, format: "jpeg", quality: 85 },
};
const request: ProviderRequest = { recipe, recipeHash: "f".repeat(64), references: new Map() };
const context = (callId: string) => ({ callId, signal: new AbortController().signal });

async function failureOf(promise: Promise<unknown>): Promise<ProviderCallError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProviderCallError, `not a ProviderCallError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("http provider error mapping", () => {
  it("maps each documented status and error code to its failure kind", () => {
    assert.equal(failureKindOf(400, "invalid_request"), "invalid_request");
    assert.equal(failureKindOf(401, undefined), "unauthorized");
    assert.equal(failureKindOf(403, undefined), "unauthorized");
    assert.equal(failureKindOf(402, undefined), "insufficient_credits");
    assert.equal(failureKindOf(400, "insufficient_credits"), "insufficient_credits");
    assert.equal(failureKindOf(422, undefined), "content_policy");
    assert.equal(failureKindOf(400, "content_policy"), "content_policy");
    assert.equal(failureKindOf(429, undefined), "rate_limited");
    assert.equal(failureKindOf(500, undefined), "unavailable");
    assert.equal(failureKindOf(503, undefined), "unavailable");
    assert.equal(failureKindOf(504, undefined), "timeout");
    assert.equal(failureKindOf(404, undefined), "invalid_request");
  });
  // Retry-After is read by the shared retryAfterMs (test/unit/paid-call.test.ts).
});

describe("http provider against the fake paid provider", () => {
  let fake: FakePaidProvider;
  let sync: SyncPaidProvider;
  let async_: AsyncPaidProvider;
  before(async () => {
    fake = await startFakePaidProvider({ asyncDurationMs: 20 });
    const options = {
      name: "studio-api",
      baseUrl: fake.url,
      apiKey: fake.apiKey,
      perCallMicros: 40_000,
    };
    sync = createHttpProvider({ ...options, mode: "sync" }) as SyncPaidProvider;
    async_ = createHttpProvider({ ...options, mode: "async" }) as AsyncPaidProvider;
  });
  after(() => fake.close());

  it("returns a decoded image from a sync call and is billed once for it", async () => {
    const before = fake.billable;
    const result = await sync.run(request, context("call-sync-1"));
    assert.equal(result.format, "jpeg");
    assert.equal(result.width, 400);
    assert.equal(result.height, 400);
    assert.equal(result.costMicros, 40_000);
    assert.equal(fake.billable, before + 1);
    assert.ok(fake.billedKeys().includes("call-sync-1"));
    const stats = await sharp(result.bytes).stats();
    assert.ok(stats.channels[0] && stats.channels[0].stdev > 10, "the image has a subject");
  });

  it("replays a billed answer to a retry with the same Idempotency-Key without billing again", async () => {
    const first = await sync.run(request, context("call-replay"));
    const billed = fake.billable;
    const second = await sync.run(request, context("call-replay"));
    assert.equal(fake.billable, billed);
    assert.deepEqual(second.bytes, first.bytes);
  });

  it("maps a 429 to rate_limited with the Retry-After delay, unbilled", async () => {
    fake.setFaults({ script: ["429"], retryAfterSeconds: 2 });
    const billed = fake.billable;
    const error = await failureOf(sync.run(request, context("call-429")));
    assert.equal(error.kind, "rate_limited");
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterMs, 2000);
    assert.equal(fake.billable, billed);
  });

  it("maps a 500 to unavailable (retryable)", async () => {
    fake.setFaults({ script: ["500"] });
    const error = await failureOf(sync.run(request, context("call-500")));
    assert.equal(error.kind, "unavailable");
    assert.equal(error.httpStatus, 500);
    assert.equal(error.retryable, true);
  });

  it("maps truncated image bytes to bad_output, and they were billed", async () => {
    fake.setFaults({ script: ["corrupt"] });
    const error = await failureOf(sync.run(request, context("call-corrupt")));
    assert.equal(error.kind, "bad_output");
    assert.equal(error.retryable, false);
    assert.ok(fake.billedKeys().includes("call-corrupt"));
  });

  it("maps a wrong API key to unauthorized", async () => {
    const wrong = createHttpProvider({
      name: "studio-api",
      baseUrl: fake.url,
      apiKey: "nope",
      mode: "sync",
      perCallMicros: 1,
    }) as SyncPaidProvider;
    const error = await failureOf(wrong.run(request, context("call-401")));
    assert.equal(error.kind, "unauthorized");
    assert.equal(error.retryable, false);
  });

  it("submits an async job, then polls it to the image", async () => {
    fake.setFaults({});
    const billed = fake.billable;
    const { externalId } = await async_.submit(request, context("call-async-1"));
    assert.ok(fake.jobs.has(externalId));
    assert.equal(fake.billable, billed + 1);
    let polled = await async_.poll(externalId, context("x"));
    for (let tries = 0; polled.status === "pending" && tries < 200; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      polled = await async_.poll(externalId, context("x"));
    }
    assert.equal(polled.status, "succeeded");
    if (polled.status === "succeeded") assert.equal(polled.result.width, 400);
    assert.equal(fake.billable, billed + 1, "polling is not billed");
  });

  it("posts the finished job to the webhook an async submit names", async () => {
    const received: unknown[] = [];
    const receiver = createServer((incoming, response) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const hooked = createHttpProvider({
        name: "studio-api",
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        mode: "async",
        perCallMicros: 1,
        webhookUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
      }) as AsyncPaidProvider;
      const { externalId } = await hooked.submit(request, context("call-webhook"));
      for (let tries = 0; received.length === 0 && tries < 200; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(received, [{ id: externalId, status: "succeeded" }]);
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it("maps a refused connection to unavailable", async () => {
    const gone = createHttpProvider({
      name: "studio-api",
      baseUrl: "http://127.0.0.1:9",
      apiKey: "k",
      mode: "sync",
      perCallMicros: 1,
    }) as SyncPaidProvider;
    const error = await failureOf(gone.run(request, context("call-refused")));
    assert.equal(error.kind, "unavailable");
  });
});

describe("http provider against a misbehaving server", () => {
  let server: Server;
  let base: string;
  const answers: {
    status: number;
    type: string;
    body: string;
    headers?: Record<string, string>;
  }[] = [];
  before(async () => {
    server = createServer((_request, response) => {
      const answer = answers.shift() ?? { status: 500, type: "text/plain", body: "" };
      response.writeHead(answer.status, { "content-type": answer.type, ...answer.headers });
      response.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const provider = () =>
    createHttpProvider({
      name: "inhouse",
      baseUrl: base,
      apiKey: "k",
      mode: "sync",
      perCallMicros: 1,
    }) as SyncPaidProvider;

  it("maps an HTML page answered with 200 to bad_output", async () => {
    answers.push({ status: 200, type: "text/html", body: "<html>login</html>" });
    assert.equal((await failureOf(provider().run(request, context("a")))).kind, "bad_output");
  });

  it("maps an image Content-Type over non-image bytes to bad_output", async () => {
    answers.push({ status: 200, type: "image/png", body: "not a png at all" });
    assert.equal((await failureOf(provider().run(request, context("b")))).kind, "bad_output");
  });

  it("maps 402 to insufficient_credits and 422 to content_policy, both permanent", async () => {
    answers.push({
      status: 402,
      type: "application/json",
      body: JSON.stringify({ error: { code: "payment_required", message: "top up" } }),
    });
    const credits = await failureOf(provider().run(request, context("c")));
    assert.equal(credits.kind, "insufficient_credits");
    assert.equal(credits.retryable, false);
    answers.push({
      status: 422,
      type: "application/json",
      body: JSON.stringify({ error: { code: "content_policy", message: "refused" } }),
    });
    const policy = await failureOf(provider().run(request, context("d")));
    assert.equal(policy.kind, "content_policy");
    assert.match(policy.message, /refused/);
  });

  it("maps a 503 behind a proxy's HTML page to unavailable with its Retry-After", async () => {
    answers.push({
      status: 503,
      type: "text/html",
      body: "<h1>busy</h1>",
      headers: { "retry-after": "7" },
    });
    const error = await failureOf(provider().run(request, context("e")));
    assert.equal(error.kind, "unavailable");
    assert.equal(error.retryAfterMs, 7000);
  });
});
