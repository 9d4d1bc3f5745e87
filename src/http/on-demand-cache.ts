import type { SlotSources } from "../store/on-demand.js";

/**
 * A least-recently-used cache of immutable bytes by blob key, bounded by their total size.
 * Keys are content addresses (an asset's or a rendition's hash), so an entry is never stale:
 * eviction is the only way out.
 */
export interface ByteCache {
  get(key: string): Buffer | undefined;
  /** Keeps `bytes` unless they alone exceed the budget; evicts the least recently used. */
  set(key: string, bytes: Buffer): void;
  /** Bytes held now (never more than the budget). */
  readonly sizeBytes: number;
  readonly budgetBytes: number;
}

export function createByteCache(budgetBytes: number): ByteCache {
  // A Map iterates in insertion order: re-inserting on every hit keeps the oldest entry first.
  const entries = new Map<string, Buffer>();
  let sizeBytes = 0;
  return {
    get(key) {
      const bytes = entries.get(key);
      if (bytes === undefined) return undefined;
      entries.delete(key);
      entries.set(key, bytes);
      return bytes;
    },
    set(key, bytes) {
      if (bytes.length > budgetBytes) return;
      const previous = entries.get(key);
      if (previous !== undefined) {
        entries.delete(key);
        sizeBytes -= previous.length;
      }
      entries.set(key, bytes);
      sizeBytes += bytes.length;
      for (const [oldest, oldBytes] of entries) {
        if (sizeBytes <= budgetBytes) break;
        entries.delete(oldest);
        sizeBytes -= oldBytes.length;
      }
    },
    get sizeBytes() {
      return sizeBytes;
    },
    budgetBytes,
  };
}

/**
 * A short-lived memory of published slots' sources (what `findSlotSources` found), so a hot
 * /i/ URL does not ask the database on every request. Only published answers are kept: a slot
 * still being made is polled as before. An entry lives `ttlMs`; this process forgets a
 * product's entries as soon as it changes one of its slots, and other processes' changes are
 * seen within `ttlMs` (well inside the alias's `max-age`, which lets any CDN serve it longer).
 */
export interface SlotCache {
  get(sku: string, slot: string): SlotSources | undefined;
  /**
   * Keeps `sources` if no change was announced since `version` was read (a lookup that raced
   * a change must not store the state from before it).
   */
  set(sku: string, slot: string, sources: SlotSources, version: number): void;
  /** The change counter to read before a database lookup whose answer may be kept. */
  readonly version: number;
  /** Forgets these products' entries, or every entry without `skus`. */
  forget(skus?: readonly string[]): void;
}

export function createSlotCache(options: { ttlMs: number; maxProducts: number }): SlotCache {
  const products = new Map<string, Map<string, { sources: SlotSources; expiresAt: number }>>();
  let version = 0;
  return {
    get(sku, slot) {
      const entry = products.get(sku)?.get(slot);
      if (!entry) return undefined;
      if (entry.expiresAt <= performance.now()) {
        products.get(sku)?.delete(slot);
        return undefined;
      }
      return entry.sources;
    },
    set(sku, slot, sources, readAt) {
      if (options.ttlMs <= 0 || readAt !== version) return;
      let slots = products.get(sku);
      if (!slots) {
        slots = new Map();
        products.set(sku, slots);
        // Bounded by product count: the oldest product inserted goes first.
        for (const oldest of products.keys()) {
          if (products.size <= options.maxProducts) break;
          products.delete(oldest);
        }
      }
      slots.set(slot, { sources, expiresAt: performance.now() + options.ttlMs });
    },
    get version() {
      return version;
    },
    forget(skus) {
      version++;
      if (!skus) {
        products.clear();
        return;
      }
      for (const sku of skus) products.delete(sku);
    },
  };
}
