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
import { findSlotSources, type SourceAsset, slotState } from "../../store/on-demand.js";

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
  // Single flight within this process: concurrent requests for one missing rendition share
  // one render (keyed by the rendition's content address).
  const inFlight = new Map<string, Promise<Buffer>>();

  /** Finds the rendition in the blob store or makes it once; `onMade` runs for the maker only. */
  async function renditionBytes(
    hash: string,
    spec: RenditionSpec,
    make: () => Promise<Buffer>,
    onMade: () => void,
  ): Promise<Buffer> {
    const key = renditionKey(hash, FORMAT_EXT[spec.format]);
    const pending = inFlight.get(key);
    if (pending) return pending;
    // The blob-store lookup is inside the shared promise, so no request can miss the store and
    // then find no render in flight because another one just finished.
    const work = (async () => {
      const cached = await runtime.blobs.get(key);
      if (cached) return cached;
      const started = performance.now();
      const bytes = await make();
      await runtime.blobs.put(key, bytes);
      runtime.metrics.renditionDuration.observe(
        { format: spec.format },
        (performance.now() - started) / 1000,
      );
      onMade();
      return bytes;
    })();
    inFlight.set(key, work);
    try {
      return await work;
    } finally {
      if (inFlight.get(key) === work) inFlight.delete(key);
    }
  }

  async function sourceBytes(source: SourceAsset): Promise<Buffer> {
    const bytes = await runtime.blobs.get(assetKey(source.sha256, source.ext));
    if (!bytes) {
      throw new ShotlistError("internal", `asset ${source.sha256} is missing from the blob store`, {
        status: 500,
      });
    }
    return bytes;
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

  /** Waits (polling the slot's state cheaply) for a generation in progress, up to the deadline. */
  async function waitForSlot(sku: string, slot: string, deadlineMs: number): Promise<boolean> {
    const until = Date.now() + deadlineMs;
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, until - Date.now())));
      if ((await slotState(runtime.db, sku, slot)) === "published") return true;
    }
    return false;
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

    let sources = await findSlotSources(runtime.db, sku, slot);
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
      if (await waitForSlot(sku, slot, deadlineMs)) {
        sources = (await findSlotSources(runtime.db, sku, slot)) ?? sources;
        outcome = "generated";
      } else {
        runtime.metrics.onDemandDeadlineMisses.inc();
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
      if (sources.slotAsset) {
        fallback = "older";
        source = sources.slotAsset;
      } else if (sources.heroAsset) {
        fallback = "hero";
        source = sources.heroAsset;
      } else {
        fallback = "placeholder";
      }
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
      runtime.metrics.onDemandRequests.inc({ outcome });
      return reply.code(304).send();
    }
    const bytes = await answer.load();
    runtime.metrics.onDemandRequests.inc({ outcome });
    reply.type(answer.mime).header("Content-Length", bytes.length);
    if (request.method === "HEAD") return reply.send();
    return reply.send(bytes);
  }

  // Fastify answers HEAD from GET routes (exposeHeadRoutes), with the same headers.
  app.get<{ Params: Params }>("/i/:sku/:slot", handle);
  app.get<{ Params: Params }>("/i/:sku/:slot/:preset", handle);
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
