import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadSettings } from "../../src/config/env.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { createByteCache, createSlotCache } from "../../src/http/on-demand-cache.js";
import type { SlotSources } from "../../src/store/on-demand.js";

const bytes = (size: number, fill: number) => Buffer.alloc(size, fill);
const published = (sha256: string): SlotSources => ({
  slotState: "published",
  recipeHash: "r",
  slotAsset: { sha256, ext: "jpg", created_at: new Date(0) },
  heroAsset: undefined,
  jobState: "succeeded",
});

describe("on-demand byte cache", () => {
  it("never holds more than its budget and evicts the least recently used first", () => {
    const cache = createByteCache(100);
    cache.set("a", bytes(40, 1));
    cache.set("b", bytes(40, 2));
    assert.equal(cache.get("a")?.[0], 1); // a is now the most recently used
    cache.set("c", bytes(40, 3));
    assert.equal(cache.sizeBytes, 80);
    assert.equal(cache.get("b"), undefined, "b was the least recently used");
    assert.equal(cache.get("a")?.[0], 1);
    assert.equal(cache.get("c")?.[0], 3);
  });

  it("keeps nothing larger than the whole budget, and nothing at all with a budget of 0", () => {
    const cache = createByteCache(100);
    cache.set("small", bytes(10, 1));
    cache.set("huge", bytes(101, 2));
    assert.equal(cache.get("huge"), undefined);
    assert.equal(cache.get("small")?.length, 10, "a refused entry evicts nothing");
    const off = createByteCache(0);
    off.set("a", bytes(1, 1));
    assert.equal(off.get("a"), undefined);
    assert.equal(off.sizeBytes, 0);
  });

  it("counts a replaced entry once", () => {
    const cache = createByteCache(100);
    cache.set("a", bytes(60, 1));
    cache.set("a", bytes(60, 1));
    assert.equal(cache.sizeBytes, 60);
  });
});

describe("on-demand slot cache", () => {
  it("forgets a product at once when told, and keeps the others", () => {
    const cache = createSlotCache({ ttlMs: 60_000, maxProducts: 10 });
    cache.set("A", "hero", published("1"), cache.version);
    cache.set("B", "hero", published("2"), cache.version);
    cache.forget(["A"]);
    assert.equal(cache.get("A", "hero"), undefined);
    assert.equal(cache.get("B", "hero")?.slotAsset?.sha256, "2");
    cache.forget();
    assert.equal(cache.get("B", "hero"), undefined);
  });

  it("does not keep an answer read before a change it raced", () => {
    const cache = createSlotCache({ ttlMs: 60_000, maxProducts: 10 });
    const readAt = cache.version;
    cache.forget(["A"]); // the product changed while the lookup was in the database
    cache.set("A", "hero", published("old"), readAt);
    assert.equal(cache.get("A", "hero"), undefined);
  });

  it("keeps nothing with a TTL of 0, and at most maxProducts products", () => {
    const off = createSlotCache({ ttlMs: 0, maxProducts: 10 });
    off.set("A", "hero", published("1"), off.version);
    assert.equal(off.get("A", "hero"), undefined);
    const small = createSlotCache({ ttlMs: 60_000, maxProducts: 2 });
    for (const sku of ["A", "B", "C"]) small.set(sku, "hero", published(sku), small.version);
    assert.equal(small.get("A", "hero"), undefined, "the oldest product went first");
    assert.equal(small.get("C", "hero")?.slotAsset?.sha256, "C");
  });
});

describe("on-demand cache settings", () => {
  it("defaults to 64 MiB and a 2 s slot TTL, capped by the alias max-age", () => {
    const settings = loadSettings({});
    assert.equal(settings.onDemandCacheBytes, 64 * 1024 * 1024);
    assert.equal(settings.onDemandSlotTtlMs, 2_000);
    const capped = loadSettings({
      SHOTLIST_ONDEMAND_SLOT_TTL_MS: "30000",
      SHOTLIST_ALIAS_MAX_AGE_S: "5",
    });
    assert.equal(capped.onDemandSlotTtlMs, 5_000);
  });

  it("refuses a negative or non-numeric budget or TTL with invalid_env", () => {
    for (const env of [
      { SHOTLIST_ONDEMAND_CACHE_BYTES: "-1" },
      { SHOTLIST_ONDEMAND_CACHE_BYTES: "lots" },
      { SHOTLIST_ONDEMAND_SLOT_TTL_MS: "-5" },
      { SHOTLIST_ONDEMAND_SLOT_TTL_MS: "600000" },
    ]) {
      assert.throws(
        () => loadSettings(env),
        (error: unknown) =>
          error instanceof ShotlistError &&
          error.code === "invalid_env" &&
          error.message.includes(Object.keys(env)[0] ?? "?"),
        JSON.stringify(env),
      );
    }
  });
});
