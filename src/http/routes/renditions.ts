import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { assetKey } from "../../blobs/store.js";
import { ShotlistError } from "../../domain/errors.js";
import {
  FORMAT_EXT,
  FORMAT_MIME,
  parseRenditionQuery,
  RENDITION_PRESETS,
  type RenditionRequest,
  type RenditionSpec,
  renditionHash,
  renditionSigningInput,
  resolveRendition,
  verifyRenditionSignature,
} from "../../domain/rendition.js";
import { validateSku } from "../../domain/sku.js";
import { renderPlaceholder, renderRendition } from "../../pipeline/rendition.js";
import type { Runtime } from "../../runtime.js";
import {
  findSlotSources,
  type SlotSources,
  type SourceAsset,
  slotState,
} from "../../store/on-demand.js";
import { createByteCache, createSlotCache } from "../on-demand-cache.js";
import { createFleetFlight, type FleetFlight } from "../single-flight.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** DESIGN §3: the "current asset" alias may be served stale by a CDN while it revalidates. */
export const CURRENT_ALIAS_CACHE_CONTROL =
  "public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400";
/** The alias's Cache-Control for a `max-age` other than 60 s (`SHOTLIST_ALIAS_MAX_AGE_S`). */
export function aliasCacheControl(maxAgeS: number): string {
  return CURRENT_ALIAS_CACHE_CONTROL.replace("max-age=60", `max-age=${maxAgeS}`);
}
/** A fallback is replaced as soon as the real image lands, so caches keep it only briefly. */
export const FALLBACK_CACHE_CONTROL = "public, max-age=10";

const SLOT_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
const OPEN_JOB_STATES = new Set(["queued", "running", "retrying"]);
/** How often a request waiting for a slot's generation looks at the slot's state. */
const SLOT_POLL_MS = 100;
/** Products whose published slots one process remembers (each a few hundred bytes). */
const SLOT_CACHE_PRODUCTS = 50_000;
const MIME_OF_EXT: Readonly<Record<string, string>> = {
  jpg: "image/jpeg",
  webp: "image/webp",
  avif: "image/avif",
  png: "image/png",
};

/** `renditions/ab/<hash>.<ext>`: derived bytes, content-addressed by source hash + spec. */
export function renditionKey(hash: string, ext: string): string {
  return `renditions/${hash.slice(0, 2)}/${hash}.${ext}`;
}

type Fallback = "older" | "hero" | "placeholder";

const renditionFlights = new WeakMap<Runtime, FleetFlight>();

/**
 * Single flight for renditions, one per runtime (every app on it shares it): requests of this
 * process share one promise per rendition, and on PostgreSQL processes share a claim row, so a
 * missing rendition is made once per fleet. PGlite is one process's database (a second
 * process cannot open it), so there the in-process flight is the whole fleet's and a miss
 * writes no claim row (two statements and ~1.5 ms of the main thread fewer per rendition).
 */
function renditionFlight(runtime: Runtime): FleetFlight {
  let flight = renditionFlights.get(runtime);
  if (!flight) {
    flight = createFleetFlight({
      db: runtime.db.kind === "postgres" ? runtime.db : undefined,
      onWait: (result) => runtime.metrics.singleFlightWaits.inc({ work: "rendition", result }),
    });
    renditionFlights.set(runtime, flight);
  }
  return flight;
}

interface Answer {
  etag: string;
  mime: string;
  lastModified: Date | undefined;
  /** The bytes are made (or found) only when the answer is not a 304. */
  load(): Promise<Buffer>;
}

interface Params {
  sku: string;
  slot: string;
  preset?: string;
}

/**
 * On-demand images (DESIGN §2.3): `/i/{sku}/{slot}[/{preset}]` answers the slot's current asset,
 * or a rendition of it, or the best fallback while the slot is still being made.
 */
export function renditionRoutes(
  app: FastifyInstance,
  runtime: Runtime,
  routeOptions: {
    /** How long to wait for a slot's queued or running render; default the runtime's setting. */
    deadlineMs?: number;
  } = {},
) {
  const deadlineMs = routeOptions.deadlineMs ?? runtime.settings.onDemandDeadlineMs;
  const currentCacheControl = aliasCacheControl(runtime.settings.aliasMaxAgeS);
  const metrics = runtime.metrics;
  // Hot answers stay in memory (issue 6): bytes by content key never go stale, and a published
  // slot's sources are reused for a short TTL (forgotten at once when this process changes
  // the product).
  const byteCache = createByteCache(runtime.settings.onDemandCacheBytes);
  const slotCache = createSlotCache({
    ttlMs: runtime.settings.onDemandSlotTtlMs,
    maxProducts: SLOT_CACHE_PRODUCTS,
  });
  const unsubscribe = runtime.slotChanges.subscribe((skus) => slotCache.forget(skus));
  app.addHook("onClose", async () => unsubscribe());
  const flight = renditionFlight(runtime);

  /** Bytes of an immutable blob: from memory, else from the blob store (then kept). */
  async function cachedBlob(key: string): Promise<Buffer | undefined> {
    const held = byteCache.get(key);
    metrics.onDemandCacheLookups.inc({ cache: "bytes", result: held ? "hit" : "miss" });
    if (held) return held;
    const stored = await runtime.blobs.get(key);
    if (stored) keep(key, stored);
    return stored;
  }

  function keep(key: string, bytes: Buffer): void {
    byteCache.set(key, bytes);
    metrics.onDemandCacheBytes.set(byteCache.sizeBytes);
  }

  /** Finds the rendition in memory or the blob store, or makes it once; `onMade` runs for the maker only. */
  async function renditionBytes(
    hash: string,
    spec: RenditionSpec,
    make: () => Promise<Buffer>,
    onMade: () => void,
  ): Promise<Buffer> {
    const key = renditionKey(hash, FORMAT_EXT[spec.format]);
    // The hot path: no promise of the flight for bytes already in memory.
    const held = byteCache.get(key);
    if (held) {
      metrics.onDemandCacheLookups.inc({ cache: "bytes", result: "hit" });
      return held;
    }
    return flight.run(
      key,
      () => cachedBlob(key),
      async () => {
        const started = performance.now();
        const bytes = await make();
        await runtime.blobs.put(key, bytes);
        keep(key, bytes);
        metrics.renditionDuration.observe(
          { format: spec.format },
          (performance.now() - started) / 1000,
        );
        onMade();
        return bytes;
      },
    );
  }

  async function sourceBytes(source: SourceAsset): Promise<Buffer> {
    const bytes = await cachedBlob(assetKey(source.sha256, source.ext));
    if (!bytes) {
      throw new ShotlistError("internal", `asset ${source.sha256} is missing from the blob store`, {
        status: 500,
      });
    }
    return bytes;
  }

  /** The slot's sources: a published slot's from memory within the TTL, else from the database. */
  async function slotSources(sku: string, slot: string): Promise<SlotSources | undefined> {
    const held = slotCache.get(sku, slot);
    metrics.onDemandCacheLookups.inc({ cache: "slot", result: held ? "hit" : "miss" });
    if (held) return held;
    const version = slotCache.version;
    const sources = await findSlotSources(runtime.db, sku, slot);
    if (sources?.slotState === "published" && sources.slotAsset) {
      slotCache.set(sku, slot, sources, version);
    }
    return sources;
  }

  function answerFor(
    source: SourceAsset | undefined,
    options: RenditionRequest,
    accept: string | undefined,
    onMade: () => void,
  ): Answer {
    const bare = Object.keys(options).length === 0;
    if (source && bare) {
      // The alias itself: the asset's own bytes, tagged by their hash like /a/.
      return {
        etag: `"${source.sha256}"`,
        mime: MIME_OF_EXT[source.ext] ?? "application/octet-stream",
        lastModified: source.created_at,
        load: () => sourceBytes(source),
      };
    }
    const spec = resolveRendition(options, accept);
    const hash = renditionHash(source?.sha256 ?? "placeholder", spec);
    return {
      etag: `"${hash}"`,
      mime: FORMAT_MIME[spec.format],
      lastModified: source?.created_at,
      load: () =>
        renditionBytes(
          hash,
          spec,
          async () =>
            source
              ? (
                  await renderRendition(await sourceBytes(source), spec, {
                    maxPixels: runtime.settings.maxPixels,
                  })
                ).bytes
              : (await renderPlaceholder(spec)).bytes,
          onMade,
        ),
    };
  }

  // One poll per slot being waited on in this process, however many requests wait for it.
  const slotWaits = new Map<string, { untilMs: number; published: Promise<boolean> }>();

  /** Waits (polling the slot's state cheaply) for a generation in progress, up to the deadline. */
  async function waitForSlot(sku: string, slot: string, deadlineMs: number): Promise<boolean> {
    const key = `${sku}/${slot}`;
    const untilMs = Date.now() + deadlineMs;
    let wait = slotWaits.get(key);
    if (wait) {
      wait.untilMs = Math.max(wait.untilMs, untilMs);
    } else {
      const shared: { untilMs: number; published: Promise<boolean> } = {
        untilMs,
        published: Promise.resolve(false),
      };
      shared.published = (async () => {
        try {
          while (Date.now() < shared.untilMs) {
            await sleep(Math.min(SLOT_POLL_MS, shared.untilMs - Date.now()));
            if ((await slotState(runtime.db, sku, slot)) === "published") return true;
          }
          return false;
        } finally {
          slotWaits.delete(key);
        }
      })();
      slotWaits.set(key, shared);
      wait = shared;
    }
    // This request's own deadline, even when the shared poll runs on for a later one.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, untilMs - Date.now()));
    });
    try {
      return await Promise.race([wait.published, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function handle(request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
    const { sku, slot, preset } = validateParams(request.params);
    const { options: queryOptions, signature } = parseRenditionQuery(
      request.query as Record<string, unknown>,
    );
    const hasQueryOptions = Object.keys(queryOptions).length > 0;
    if (hasQueryOptions) {
      const input = renditionSigningInput(sku, slot, preset, queryOptions);
      if (!runtime.settings.signingKey) {
        throw new ShotlistError(
          "signature_invalid",
          "custom rendition options need a signed URL, and this server has no SHOTLIST_SIGNING_KEY; use a preset",
          { status: 403 },
        );
      }
      if (!verifyRenditionSignature(runtime.settings.signingKey, input, signature)) {
        throw new ShotlistError(
          "signature_invalid",
          signature === undefined
            ? "custom rendition options need a signature `s`; use a preset or sign the URL"
            : "the signature `s` does not match this path and its options",
          { status: 403 },
        );
      }
    }
    const options: RenditionRequest = {
      ...(preset ? RENDITION_PRESETS[preset] : {}),
      ...queryOptions,
    };

    let sources = await slotSources(sku, slot);
    if (!sources) {
      throw new ShotlistError("not_found", `product ${sku} has no slot ${slot}`, { status: 404 });
    }
    let outcome: "hit" | "rendition_made" | "generated" | "fallback" = "hit";
    if (
      sources.slotState !== "published" &&
      sources.jobState !== undefined &&
      OPEN_JOB_STATES.has(sources.jobState) &&
      deadlineMs > 0
    ) {
      // The fallback is made while the request waits, so a miss is answered at the deadline and
      // not a render later; its bytes are content-addressed, so a later request reuses them.
      const early = fallbackFor(sources);
      answerFor(early.source, options, request.headers.accept, () => {})
        .load()
        .catch((error: unknown) =>
          request.log.warn({ err: error, sku, slot }, "fallback not made"),
        );
      // The deadline counts from the request's arrival (Fastify's onRequest), not from the lookup.
      const remainingMs = deadlineMs - reply.elapsedTime;
      if (await waitForSlot(sku, slot, remainingMs)) {
        sources = (await slotSources(sku, slot)) ?? sources;
        outcome = "generated";
      } else {
        metrics.onDemandDeadlineMisses.inc();
      }
    }

    const onMade = () => {
      if (outcome === "hit") outcome = "rendition_made";
    };
    let fallback: Fallback | undefined;
    let source: SourceAsset | undefined;
    if (sources.slotState === "published" && sources.slotAsset) {
      source = sources.slotAsset;
    } else {
      outcome = "fallback";
      ({ fallback, source } = fallbackFor(sources));
      if (sources.jobState === undefined) {
        // saveProductPlan writes the job with the slot, so this is a bug or a manual edit.
        request.log.warn({ sku, slot, recipeHash: sources.recipeHash }, "slot has no render job");
      }
    }

    const answer = answerFor(source, options, request.headers.accept, onMade);
    const formatIsNegotiated =
      (options.format === undefined || options.format === "auto") &&
      !(source && Object.keys(options).length === 0);
    if (formatIsNegotiated) reply.header("Vary", "Accept");
    reply.header("ETag", answer.etag);
    if (answer.lastModified) reply.header("Last-Modified", answer.lastModified.toUTCString());
    if (fallback) {
      reply.header("Cache-Control", FALLBACK_CACHE_CONTROL).header("Shotlist-Fallback", fallback);
    } else {
      reply.header("Cache-Control", currentCacheControl);
    }

    const ifNoneMatch = request.headers["if-none-match"];
    if (ifNoneMatch?.split(",").some((tag) => tag.trim() === answer.etag || tag.trim() === "*")) {
      metrics.onDemandRequests.inc({ outcome });
      return reply.code(304).send();
    }
    const bytes = await answer.load();
    metrics.onDemandRequests.inc({ outcome });
    reply.type(answer.mime).header("Content-Length", bytes.length);
    if (request.method === "HEAD") return reply.send();
    return reply.send(bytes);
  }

  // Fastify answers HEAD from GET routes (exposeHeadRoutes), with the same headers.
  app.get<{ Params: Params }>("/i/:sku/:slot", handle);
  app.get<{ Params: Params }>("/i/:sku/:slot/:preset", handle);
}

/** The best stand-in for a slot that is not published: its older asset, the hero, a placeholder. */
function fallbackFor(sources: SlotSources): {
  fallback: Fallback;
  source: SourceAsset | undefined;
} {
  if (sources.slotAsset) return { fallback: "older", source: sources.slotAsset };
  if (sources.heroAsset) return { fallback: "hero", source: sources.heroAsset };
  return { fallback: "placeholder", source: undefined };
}

/** SKU, slot and preset are closed alphabets: path tricks and control characters are a 400. */
function validateParams(params: Params): Params {
  const sku = validateSku(params.sku);
  if (!SLOT_PATTERN.test(params.slot)) {
    throw new ShotlistError(
      "unknown_slot",
      "slot names are lowercase letters, digits and '-', at most 64 characters",
      { extra: { slot: params.slot.slice(0, 64) } },
    );
  }
  const preset = params.preset;
  if (preset !== undefined && !Object.hasOwn(RENDITION_PRESETS, preset)) {
    throw new ShotlistError(
      "invalid_rendition_option",
      `unknown preset; presets are ${Object.keys(RENDITION_PRESETS).join(", ")}`,
      { extra: { option: "preset" } },
    );
  }
  return { sku, slot: params.slot, ...(preset ? { preset } : {}) };
}
