import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import sharp from "sharp";
import type { OutputFormat } from "../../src/domain/recipe.js";
import {
  type CallContext,
  type Operation,
  type PaidCallContext,
  type PaidProvider,
  ProviderCallError,
  type ProviderFailureKind,
  type ProviderRequest,
  type ProviderResult,
} from "../../src/providers/provider.js";
import type { FakeFault, ProviderFake } from "../fakes/provider-fake.js";

/*
 * Use, one file per adapter (see test/contract/removebg.test.ts):
 *
 *   describeProviderContract("replicate", "async", async () => {
 *     const fake = await startFakeReplicate();             // a ProviderFake (test/fakes/provider-fake.ts)
 *     return {
 *       provider: createReplicateProvider({ baseUrl: fake.url, apiKey: fake.apiKey, prices, timeoutMs: CONTRACT_TIMEOUT_MS }),
 *       fake, request, expectedName: "replicate", expectedOperations: ["generate"],
 *       expectedCostMicros, sendsIdempotencyKey: false, providesRequestId: true,
 *       failedPredictionKind: "invalid_request",
 *     };
 *   });
 *
 * Every fault in FAULT_KINDS is scripted with `fake.failNext(fault, 1, { retryAfterSeconds: 7 })`
 * and must map to its kind; a fault the provider's documentation has no answer for is listed in
 * `undocumentedFaults` instead of being invented. Async fakes also script `prediction_failed`, and
 * a new prediction must be pending at its first poll.
 */

/**
 * What one adapter brings to the shared contract suite (STYLE §2). `setup` runs before every
 * test, so each test gets a fresh fake and a fresh adapter pointed at it.
 *
 * The adapter must be built with `timeoutMs: CONTRACT_TIMEOUT_MS`: long enough that a good call
 * never times out on a loaded machine, short enough that the `hang` case ends soon.
 */
export interface ProviderContractSetup {
  provider: PaidProvider;
  fake: ProviderFake;
  /** A request the provider serves; the happy answer must match `expectedSize`. */
  request: ProviderRequest;
  /** The name the factory was given. */
  expectedName: string;
  expectedOperations: readonly Operation[];
  /** What `estimateCostMicros(request)` answers, from the price table the factory was given. */
  expectedCostMicros: number;
  /** Width and height of the happy answer; default `request.recipe.output`. */
  expectedSize?: { width: number; height: number };
  /** The provider has an idempotency header and the adapter sends `callId` in it. */
  sendsIdempotencyKey: boolean;
  /** The provider answers an id for each call, kept as `providerRequestId`. */
  providesRequestId: boolean;
  /** Async adapters: the kind a prediction that ends failed (`prediction_failed`) maps to. */
  failedPredictionKind?: ProviderFailureKind;
  /** Extra clean-up after `fake.close()`. */
  teardown?: () => Promise<void>;
}

/** The adapter's `timeoutMs` in contract tests (ms). */
export const CONTRACT_TIMEOUT_MS = 3_000;

/** Every fault and the kind the adapter must map it to, whatever the provider's own words. */
export const FAULT_KINDS: readonly { fault: FakeFault; kind: ProviderFailureKind }[] = [
  { fault: "unauthorized", kind: "unauthorized" },
  { fault: "insufficient_credits", kind: "insufficient_credits" },
  { fault: "content_policy", kind: "content_policy" },
  { fault: "rate_limited", kind: "rate_limited" },
  { fault: "server_error", kind: "unavailable" },
  { fault: "unavailable", kind: "unavailable" },
  { fault: "hang", kind: "timeout" },
  { fault: "html_page", kind: "bad_output" },
  { fault: "non_image", kind: "bad_output" },
  { fault: "truncated", kind: "bad_output" },
  { fault: "wrong_size", kind: "bad_output" },
];

const RETRYABLE: ReadonlySet<ProviderFailureKind> = new Set([
  "rate_limited",
  "unavailable",
  "timeout",
]);

const POLL_DEADLINE_MS = 15_000;
const POLL_INTERVAL_MS = 20;

let callCounter = 0;
function paidContext(signal = new AbortController().signal): PaidCallContext {
  callCounter++;
  return { signal, callId: `ledger-${process.pid}-${callCounter}` };
}

/** Polls an async call to its end (a deadline, no blind sleeps); a failed one is thrown. */
async function pollToEnd(
  provider: PaidProvider & { mode: "async" },
  externalId: string,
  context: CallContext,
): Promise<ProviderResult> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  while (Date.now() < deadline) {
    const polled = await provider.poll(externalId, context);
    if (polled.status === "succeeded") return polled.result;
    if (polled.status === "failed") throw polled.error;
    await delay(POLL_INTERVAL_MS);
  }
  throw new Error(`${provider.name}: ${externalId} still pending after ${POLL_DEADLINE_MS} ms`);
}

/** One paid call, the way the ledger makes it: `run` for sync, submit then poll for async. */
export async function callProvider(
  provider: PaidProvider,
  request: ProviderRequest,
  context: PaidCallContext,
): Promise<ProviderResult> {
  if (provider.mode === "sync") return provider.run(request, context);
  const { externalId } = await provider.submit(request, context);
  return pollToEnd(provider, externalId, context);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded; a failure was expected");
}

function decodedFormat(format: string | undefined): OutputFormat | undefined {
  if (format === "heif") return "avif";
  if (format === "jpeg" || format === "png" || format === "webp" || format === "avif") {
    return format;
  }
  return undefined;
}

async function assertResultIsTheImage(
  result: ProviderResult,
  expected: { width: number; height: number; costMicros: number; requestId: boolean },
): Promise<void> {
  assert.ok(Buffer.isBuffer(result.bytes) && result.bytes.length > 0, "result has bytes");
  const metadata = await sharp(result.bytes).metadata();
  // failOn "truncated": the whole stream decodes, not only the header.
  await sharp(result.bytes, { failOn: "truncated" }).raw().toBuffer();
  assert.equal(decodedFormat(metadata.format), result.format, "format is what the bytes are");
  assert.equal(metadata.width, result.width, "width is the decoded width");
  assert.equal(metadata.height, result.height, "height is the decoded height");
  assert.equal(result.width, expected.width);
  assert.equal(result.height, expected.height);
  assert.equal(result.costMicros, expected.costMicros, "cost comes from the price table");
  if (expected.requestId) {
    assert.ok(
      typeof result.providerRequestId === "string" && result.providerRequestId.length > 0,
      "the provider's request id is kept for provenance",
    );
  }
}

async function waitForCalls(fake: ProviderFake, count: number): Promise<void> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  while (fake.calls.length < count) {
    if (Date.now() > deadline) assert.fail(`the fake saw ${fake.calls.length} of ${count} calls`);
    await delay(5);
  }
}

/**
 * The contract every paid adapter passes against its fake: what it declares, what a good
 * answer gives, how it honours abort, and how each failure of the provider maps to a kind.
 */
export function describeProviderContract(
  name: string,
  mode: "sync" | "async",
  setup: () => Promise<ProviderContractSetup>,
  options: {
    /**
     * Faults the provider's documented API has no answer for (remove.bg has no content-policy
     * refusal), so neither its fake nor this suite invents one. Say why in the adapter's docs.
     */
    undocumentedFaults?: readonly FakeFault[];
  } = {},
): void {
  const undocumented = new Set(options.undocumentedFaults ?? []);
  describe(`${name} provider contract`, () => {
    let current: ProviderContractSetup;

    beforeEach(async () => {
      current = await setup();
    });

    afterEach(async () => {
      await current.fake.close();
      await current.teardown?.();
    });

    it("declares its name, operations, limits and paid billing", () => {
      const { provider } = current;
      assert.equal(provider.name, current.expectedName);
      assert.deepEqual([...provider.operations].sort(), [...current.expectedOperations].sort());
      assert.equal(provider.billing, "paid");
      assert.equal(provider.mode, mode);
      assert.ok(Number.isInteger(provider.limits.maxSide) && provider.limits.maxSide > 0);
      assert.ok(provider.limits.formats.length > 0);
      assert.ok(provider.limits.requestsPerMinute > 0);
      const version = provider.modelVersion(current.request.recipe.model);
      assert.ok(version.length > 0, "a model version for recipes");
    });

    it("estimates the cost of a request from its price table, without calling the provider", () => {
      assert.equal(
        current.provider.estimateCostMicros(current.request),
        current.expectedCostMicros,
      );
      assert.equal(current.fake.calls.length, 0);
    });

    it("returns a decodable image whose format and size are the bytes', with its cost and the provider's request id", async () => {
      const result = await callProvider(current.provider, current.request, paidContext());
      const size = current.expectedSize ?? current.request.recipe.output;
      await assertResultIsTheImage(result, {
        ...size,
        costMicros: current.expectedCostMicros,
        requestId: current.providesRequestId,
      });
    });

    it("sends the ledger's call id as the idempotency key where the provider has one", async () => {
      const context = paidContext();
      await callProvider(current.provider, current.request, context);
      const first = current.fake.calls[0];
      assert.ok(first, "the fake saw the call");
      if (current.sendsIdempotencyKey) assert.equal(first.idempotencyKey, context.callId);
      else assert.equal(first.idempotencyKey, undefined);
    });

    it("makes no request when the signal is already aborted", async () => {
      const controller = new AbortController();
      controller.abort(new Error("the job was cancelled"));
      const error = await rejection(
        callProvider(current.provider, current.request, paidContext(controller.signal)),
      );
      assert.equal(error, controller.signal.reason, "rejects with the signal's reason");
      assert.equal(current.fake.calls.length, 0);
    });

    it("gives up a call in flight when the signal aborts, with the signal's reason", async () => {
      current.fake.failNext("hang");
      const controller = new AbortController();
      const pending = rejection(
        callProvider(current.provider, current.request, paidContext(controller.signal)),
      );
      await waitForCalls(current.fake, 1);
      controller.abort(new Error("the worker is shutting down"));
      assert.equal(await pending, controller.signal.reason);
    });

    it("makes one request per call and never retries on its own", async () => {
      current.fake.failNext("server_error", 3);
      const error = await rejection(callProvider(current.provider, current.request, paidContext()));
      assert.ok(error instanceof ProviderCallError);
      assert.equal(error.kind, "unavailable");
      assert.equal(current.fake.calls.length, 1);
    });

    for (const { fault, kind } of FAULT_KINDS.filter(({ fault }) => !undocumented.has(fault))) {
      const retryable = RETRYABLE.has(kind);
      it(`maps ${fault} to ${kind} (${retryable ? "retryable" : "permanent"})`, async () => {
        assert.ok(current.fake.faults.has(fault), `the fake scripts ${fault}`);
        current.fake.failNext(fault, 1, { retryAfterSeconds: 7 });
        const error = await rejection(
          callProvider(current.provider, current.request, paidContext()),
        );
        assert.ok(error instanceof ProviderCallError, `a ProviderCallError, got ${String(error)}`);
        assert.equal(error.kind, kind, error.message);
        assert.equal(error.retryable, retryable);
        assert.equal(error.provider, current.expectedName);
        assert.equal(error.code, "provider_error");
        if (fault === "rate_limited") assert.equal(error.retryAfterMs, 7_000);
        if (fault === "unauthorized")
          assert.ok(error.httpStatus === 401 || error.httpStatus === 403);
        if (fault === "server_error") assert.equal(error.httpStatus, 500);
        if (fault === "unavailable") assert.equal(error.httpStatus, 503);
      });
    }

    it("works again on the next call after a failure", async () => {
      current.fake.failNext("truncated");
      await rejection(callProvider(current.provider, current.request, paidContext()));
      const result = await callProvider(current.provider, current.request, paidContext());
      const size = current.expectedSize ?? current.request.recipe.output;
      await assertResultIsTheImage(result, {
        ...size,
        costMicros: current.expectedCostMicros,
        requestId: current.providesRequestId,
      });
    });

    // Registered for async adapters only, so a sync suite has no skipped tests.
    if (mode !== "async") return;
    describe("async calls", () => {
      it("submit answers the provider's id at once; polling is pending, then succeeded", async () => {
        const { provider } = current;
        assert.equal(provider.mode, "async");
        if (provider.mode !== "async") return;
        const { externalId } = await provider.submit(current.request, paidContext());
        assert.ok(externalId.length > 0);
        const first = await provider.poll(externalId, paidContext());
        assert.equal(first.status, "pending", "a new prediction is not done at its first poll");
        const result = await pollToEnd(provider, externalId, paidContext());
        const size = current.expectedSize ?? current.request.recipe.output;
        await assertResultIsTheImage(result, {
          ...size,
          costMicros: current.expectedCostMicros,
          requestId: current.providesRequestId,
        });
      });

      it("maps a prediction that ends failed to a kind, as a failed poll", async () => {
        const { provider } = current;
        assert.equal(provider.mode, "async");
        if (provider.mode !== "async") return;
        const kind = current.failedPredictionKind;
        assert.ok(kind, "an async setup names failedPredictionKind");
        current.fake.failNext("prediction_failed");
        const { externalId } = await provider.submit(current.request, paidContext());
        const deadline = Date.now() + POLL_DEADLINE_MS;
        let polled = await provider.poll(externalId, paidContext());
        while (polled.status === "pending" && Date.now() < deadline) {
          await delay(POLL_INTERVAL_MS);
          polled = await provider.poll(externalId, paidContext());
        }
        assert.equal(polled.status, "failed");
        if (polled.status === "failed") {
          assert.ok(polled.error instanceof ProviderCallError);
          assert.equal(polled.error.kind, kind);
          assert.equal(polled.error.retryable, RETRYABLE.has(kind));
        }
      });
    });
  });
}
