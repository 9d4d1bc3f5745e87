import type { FastifyInstance } from "fastify";
import { assetKey } from "../../blobs/store.js";
import { ShotlistError } from "../../domain/errors.js";
import { DIGITAL_SOURCE_TYPE_PREFIX, readDigitalSourceTypeFromXmp } from "../../pipeline/xmp.js";
import type { Runtime } from "../../runtime.js";
import { getAsset, getRecipes } from "../../store/assets.js";
import { ledgerFactsOfAsset } from "../../store/provenance.js";
import { findPublishingDecision } from "../../store/review.js";
import { idParamsSchema, parseRequestPart } from "../schemas.js";
import { decisionView } from "./review.js";

const assetIdParamsSchema = idParamsSchema("asset");

const MIME: Readonly<Record<string, string>> = {
  jpg: "image/jpeg",
  webp: "image/webp",
  avif: "image/avif",
  png: "image/png",
};
const ASSET_NAME = /^([0-9a-f]{64})\.(jpg|webp|avif|png)$/;

export function assetRoutes(app: FastifyInstance, runtime: Runtime) {
  /** Immutable content-addressed bytes (DESIGN §3): cache forever, revalidate by ETag. */
  app.get<{ Params: { name: string } }>("/a/:name", async (request, reply) => {
    const match = ASSET_NAME.exec(request.params.name);
    if (!match) {
      throw new ShotlistError("not_found", "asset names are <sha256>.<jpg|webp|avif|png>", {
        status: 404,
      });
    }
    const [, sha256 = "", ext = ""] = match;
    const etag = `"${sha256}"`;
    reply.header("ETag", etag).header("Cache-Control", "public, max-age=31536000, immutable");
    const ifNoneMatch = request.headers["if-none-match"];
    if (ifNoneMatch?.split(",").some((tag) => tag.trim() === etag || tag.trim() === "*")) {
      if (await runtime.blobs.has(assetKey(sha256, ext))) return reply.code(304).send();
    }
    const bytes = await runtime.blobs.get(assetKey(sha256, ext));
    if (!bytes) {
      // Not there yet is not forever: a cache must not keep this 404 as immutable.
      reply.removeHeader("Cache-Control").removeHeader("ETag");
      throw new ShotlistError("not_found", `no asset ${request.params.name}`, { status: 404 });
    }
    return reply.type(MIME[ext] ?? "application/octet-stream").send(bytes);
  });

  /** An asset with its recipe: the provenance (DESIGN §8). */
  app.get("/v1/assets/:id", async (request) => {
    const { id } = parseRequestPart(assetIdParamsSchema, request.params);
    const asset = await getAsset(runtime.db, id);
    if (!asset) throw new ShotlistError("not_found", `no asset ${id}`, { status: 404 });
    const [recipes, decision, ledger, bytes] = await Promise.all([
      getRecipes(runtime.db, [asset.recipe_hash]),
      findPublishingDecision(runtime.db, id),
      ledgerFactsOfAsset(runtime.db, asset),
      runtime.blobs.get(assetKey(asset.sha256, asset.ext)),
    ]);
    const recipe = recipes.get(asset.recipe_hash);
    // A human upload sits on the slot's recipe but was not made from it.
    const made = asset.made_by === "human" ? undefined : recipe;
    return {
      id: asset.id,
      sha256: asset.sha256,
      url: `${runtime.settings.publicUrl}/a/${asset.sha256}.${asset.ext}`,
      state: asset.state,
      width: asset.width,
      height: asset.height,
      byteSize: asset.byte_size,
      costMicros: asset.cost_micros,
      link: asset.link,
      checks: asset.checks,
      recipeHash: asset.recipe_hash,
      recipe,
      madeBy: asset.made_by,
      provenance: {
        madeBy: asset.made_by,
        provider: made?.provider ?? null,
        model: made?.model ?? null,
        modelVersion: made?.modelVersion ?? null,
        prompt: made?.prompt ?? null,
        seed: made?.seed ?? null,
        references: made?.references ?? [],
        steps: made?.steps ?? [],
        parameters: made
          ? { source: made.source, output: made.output, inputs: made.inputs, slot: made.slot }
          : {},
        providerRequestId: asset.provider_request_id ?? ledger.externalId,
        ledgerCallId: ledger.callId,
        costMicros: asset.made_by === "human" ? 0 : ledger.costMicros,
        recipeSpendMicros: ledger.recipeSpendMicros,
        // What the file itself claims (DESIGN §8), read from its XMP packet.
        digitalSourceType: bytes ? digitalSourceTypeOf(bytes) : null,
      },
      review: decision ? decisionView(decision) : null,
      createdAt: asset.created_at,
    };
  });
}

/** The IPTC digital source type code in an image's XMP packet, or null when it claims none. */
function digitalSourceTypeOf(bytes: Buffer): string | null {
  const uri = readDigitalSourceTypeFromXmp(bytes.toString("latin1"));
  if (!uri) return null;
  return uri.startsWith(DIGITAL_SOURCE_TYPE_PREFIX)
    ? uri.slice(DIGITAL_SOURCE_TYPE_PREFIX.length)
    : uri;
}
