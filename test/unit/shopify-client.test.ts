import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AdminApiClient } from "@shopify/admin-api-client";
import { loadSettings } from "../../src/config/env.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { createShopifyGraphql } from "../../src/integrations/shopify/client.js";

type Answer = Awaited<ReturnType<AdminApiClient["request"]>>;

/** A stand-in for the official client's `request`, answering from a script. */
function scripted(answers: Answer[]): { client: AdminApiClient; calls: number } {
  const state = { calls: 0 };
  const client = {
    request: async () => {
      const answer = answers[state.calls++];
      if (!answer) throw new Error("no more scripted answers");
      return answer;
    },
  } as unknown as AdminApiClient;
  return {
    client,
    get calls() {
      return state.calls;
    },
  };
}

const cost = (currentlyAvailable: number, requestedQueryCost = 10) => ({
  cost: {
    requestedQueryCost,
    actualQueryCost: requestedQueryCost,
    throttleStatus: { maximumAvailable: 100, currentlyAvailable, restoreRate: 50 },
  },
});

const tooMany = (retryAfter: string): Answer =>
  ({
    errors: {
      networkStatusCode: 429,
      message: "Too Many Requests",
      response: new Response("{}", { status: 429, headers: { "retry-after": retryAfter } }),
    },
  }) as Answer;

describe("Shopify GraphQL caller", () => {
  it("waits for bucket points when fewer are available than the operation costs", async () => {
    const slept: number[] = [];
    const stub = scripted([
      { data: { ok: 1 }, extensions: cost(4) } as Answer,
      { data: { ok: 2 }, extensions: cost(90) } as Answer,
    ]);
    const graphql = createShopifyGraphql(stub.client, {
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    assert.deepEqual(await graphql.request("query A { a }"), { ok: 1 });
    assert.deepEqual(await graphql.request("query A { a }"), { ok: 2 });
    // 4 of 10 points left at 50/s: about (10 - 4) / 50 s = 120 ms before the second call.
    assert.equal(slept.length, 1);
    assert.ok((slept[0] ?? 0) > 80 && (slept[0] ?? 0) <= 120, `slept ${slept[0]} ms`);
  });

  it("waits out a short Retry-After in-process and retries", async () => {
    const slept: number[] = [];
    const stub = scripted([tooMany("2"), { data: { ok: true }, extensions: cost(90) } as Answer]);
    const graphql = createShopifyGraphql(stub.client, {
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    assert.deepEqual(await graphql.request("{ a }"), { ok: true });
    assert.deepEqual(slept, [2000]);
    assert.equal(stub.calls, 2);
  });

  it("hands a long Retry-After to the queue as a retryable error with a delay hint", async () => {
    const stub = scripted([tooMany("60")]);
    const graphql = createShopifyGraphql(stub.client, { sleep: async () => {} });
    await assert.rejects(graphql.request("{ a }"), (error: unknown) => {
      assert.ok(error instanceof ShotlistError);
      assert.equal(error.retryable, true);
      assert.equal(error.extra.retryAfterMs, 60_000);
      return true;
    });
  });

  it("treats a 401 as permanent", async () => {
    const stub = scripted([
      {
        errors: { networkStatusCode: 401, message: "Unauthorized" },
      } as Answer,
    ]);
    const graphql = createShopifyGraphql(stub.client, { sleep: async () => {} });
    await assert.rejects(graphql.request("{ a }"), (error: unknown) => {
      assert.ok(error instanceof ShotlistError);
      assert.equal(error.retryable, false);
      return true;
    });
  });

  it("is configured only when both the shop and the token are set", () => {
    assert.equal(
      loadSettings({ SHOTLIST_SHOPIFY_SHOP: "a.myshopify.com" }).shopifyWriteback,
      undefined,
    );
    assert.deepEqual(
      loadSettings({
        SHOTLIST_SHOPIFY_SHOP: "a.myshopify.com",
        SHOTLIST_SHOPIFY_ACCESS_TOKEN: "shpat_x",
        SHOTLIST_SHOPIFY_API_URL: "http://127.0.0.1:9/",
      }).shopifyWriteback,
      { shop: "a.myshopify.com", accessToken: "shpat_x", apiUrl: "http://127.0.0.1:9" },
    );
  });
});
