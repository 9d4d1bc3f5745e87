import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import type { Recipe } from "../../src/domain/recipe.js";
import {
  type PaidProvider,
  ProviderCallError,
  type ProviderRequest,
  type ProviderResult,
} from "../../src/providers/provider.js";

/**
 * The contract every paid adapter passes (STYLE §2), each against its own protocol-true fake.
 * The harness a test file gives: the adapter pointed at its fake, a way to make the fake's next
 * generation request fail a given way, and the Idempotency-Keys the fake billed.
 */
export interface PaidProviderHarness {
  provider: PaidProvider;
  /** The next generation request answers with this failure. */
  failNext(fault: "rate_limited" | "unavailable" | "unauthorized" | "hang"): void;
  /** Idempotency-Keys (ledger call ids) the fake billed, in order. */
  billedKeys(): string[];
  /** The Retry-After, in ms, the fake sends with `rate_limited`. */
  retryAfterMs: number;
  close(): Promise<void>;
}

export const CONTRACT_RECIPE: Recipe = {
  schema: 1,
  category: "home",
  slot: "hero",
  provider: "contract",
  model: "default",
  modelVersion: "contract",
  source: { kind: "reference", index: 0 },
  steps: [],
  prompt: "a stoneware mug on a white background",
  seed: 424242,
  references: [],
  inputs: { swatches: [] },
  output: { width: 512, height: 512, format: "png", quality: 90 },
};

let sequence = 0;
const newCallId = () => `contract-${process.pid}-${Date.now()}-${sequence++}`;

/** One whole call: `run` for sync, submit + poll for async (what the paid-call path does). */
async function callToEnd(
  provider: PaidProvider,
  request: ProviderRequest,
  callId: string,
  signal: AbortSignal = new AbortController().signal,
): Promise<ProviderResult> {
  if (provider.mode === "sync") return provider.run(request, { callId, signal });
  const { externalId } = await provider.submit(request, { callId, signal });
  for (let polls = 0; polls < 600; polls++) {
    const polled = await provider.poll(externalId, { signal });
    if (polled.status === "succeeded") return polled.result;
    if (polled.status === "failed") throw polled.error;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("the job did not finish in 600 polls");
}

async function failure(promise: Promise<unknown>): Promise<ProviderCallError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProviderCallError, `not a ProviderCallError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

export function paidProviderContract(
  label: string,
  setup: () => Promise<PaidProviderHarness>,
  request: Omit<ProviderRequest, "recipe"> & { recipe?: Recipe } = {
    recipeHash: "c".repeat(64),
    references: new Map(),
  },
): void {
  describe(`paid provider contract: ${label}`, () => {
    let harness: PaidProviderHarness;
    const fullRequest = (): ProviderRequest => ({
      recipe: request.recipe ?? CONTRACT_RECIPE,
      recipeHash: request.recipeHash,
      references: request.references,
    });
    before(async () => {
      harness = await setup();
    });
    after(() => harness.close());

    it("declares itself paid, with a mode, limits and a price", () => {
      const { provider } = harness;
      assert.equal(provider.billing, "paid");
      assert.ok(provider.mode === "sync" || provider.mode === "async");
      assert.ok(provider.limits.maxSide > 0 && provider.limits.formats.length > 0);
      assert.ok(provider.estimateCostMicros(fullRequest()) >= 0);
      assert.ok(provider.modelVersion("default").length > 0);
    });

    it("returns a decodable image whose reported size and format are the bytes' own", async () => {
      const result = await callToEnd(harness.provider, fullRequest(), newCallId());
      const metadata = await sharp(result.bytes).metadata();
      assert.equal(metadata.width, result.width);
      assert.equal(metadata.height, result.height);
      assert.ok(harness.provider.limits.formats.includes(result.format));
      assert.ok(result.costMicros >= 0);
    });

    it("sends the ledger's call id as the Idempotency-Key, billed once", async () => {
      const callId = newCallId();
      await callToEnd(harness.provider, fullRequest(), callId);
      assert.equal(harness.billedKeys().filter((key) => key === callId).length, 1);
    });

    it("maps a rate limit to rate_limited, retryable, with the Retry-After", async () => {
      harness.failNext("rate_limited");
      const error = await failure(callToEnd(harness.provider, fullRequest(), newCallId()));
      assert.equal(error.kind, "rate_limited");
      assert.equal(error.retryable, true);
      assert.equal(error.retryAfterMs, harness.retryAfterMs);
    });

    it("maps a server failure to unavailable, retryable", async () => {
      harness.failNext("unavailable");
      const error = await failure(callToEnd(harness.provider, fullRequest(), newCallId()));
      assert.equal(error.kind, "unavailable");
      assert.equal(error.retryable, true);
    });

    it("maps refused credentials to unauthorized, permanent", async () => {
      harness.failNext("unauthorized");
      const error = await failure(callToEnd(harness.provider, fullRequest(), newCallId()));
      assert.equal(error.kind, "unauthorized");
      assert.equal(error.retryable, false);
    });

    it("gives up at once when its signal is aborted during a hung call", async () => {
      harness.failNext("hang");
      const controller = new AbortController();
      const call = callToEnd(harness.provider, fullRequest(), newCallId(), controller.signal);
      setTimeout(() => controller.abort(new Error("stop")), 100);
      await assert.rejects(call);
      assert.ok(controller.signal.aborted);
    });
  });
}
