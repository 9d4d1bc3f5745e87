import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { slotCoverage } from "../../domain/coverage.js";
import { ShotlistError } from "../../domain/errors.js";
import { validateSku } from "../../domain/sku.js";
import { regenerateAssets } from "../../intake/regenerate.js";
import { submitProduct } from "../../intake/submit.js";
import type { Runtime } from "../../runtime.js";
import {
  getProduct,
  getProductSlots,
  getReferences,
  getVariants,
  listProducts,
} from "../../store/products.js";
import { idempotencyHooks } from "../idempotency.js";
import {
  parseRequestPart,
  productBatchSchema,
  productListQuerySchema,
  regenerateRequestSchema,
  skuParamsSchema,
} from "../schemas.js";

// Each product of a batch goes through the intake on its own, so the envelope's items are
// checked there, not here.
const batchEnvelopeSchema = productBatchSchema(z.unknown());

export function productRoutes(app: FastifyInstance, runtime: Runtime) {
  const assetUrl = (sha256: string | null, ext: string | null) =>
    sha256 && ext ? `${runtime.settings.publicUrl}/a/${sha256}.${ext}` : null;

  app.get("/v1/products", async (request) => {
    const { coverage, cursor, limit } = parseRequestPart(productListQuerySchema, request.query);
    const afterSku = cursor === undefined ? undefined : decodeCursor(cursor);
    const rows = await listProducts(runtime.db, { coverage, afterSku, limit });
    const last = rows.at(-1);
    return {
      products: rows.map((row) => ({
        sku: row.sku,
        title: row.title,
        category: row.category,
        coverage: {
          complete: row.published_slots,
          required: row.required_slots,
          ratio: row.required_slots === 0 ? 1 : row.published_slots / row.required_slots,
        },
      })),
      nextCursor:
        rows.length === limit && last ? Buffer.from(last.sku).toString("base64url") : null,
    };
  });

  app.get("/v1/products/:sku", async (request) => {
    const { sku } = parseRequestPart(skuParamsSchema, request.params, "invalid_sku");
    const product = await getProduct(runtime.db, sku);
    if (!product) throw new ShotlistError("not_found", `no product ${sku}`, { status: 404 });
    const [slots, variants, references] = await Promise.all([
      getProductSlots(runtime.db, sku),
      getVariants(runtime.db, sku),
      getReferences(runtime.db, sku),
    ]);
    return {
      sku: product.sku,
      title: product.title,
      category: product.category,
      attributes: product.attributes,
      variants,
      referenceImages: references.map((reference) => ({
        sha256: reference.sha256,
        origin: reference.origin,
        width: reference.width,
        height: reference.height,
      })),
      coverage: slotCoverage(slots),
      slots: slots.map((slot) => ({
        slot: slot.slot,
        required: slot.required,
        state: slot.state,
        reason: slot.reason,
        alt: slot.alt,
        recipeHash: slot.recipe_hash,
        asset:
          slot.asset_id === null
            ? null
            : {
                id: slot.asset_id,
                sha256: slot.asset_sha256,
                url: assetUrl(slot.asset_sha256, slot.asset_ext),
                madeBy: slot.asset_made_by,
              },
      })),
      createdAt: product.created_at,
      updatedAt: product.updated_at,
    };
  });

  /**
   * Issue 5 §4: the product's out-of-date assets (a model or shot-list change), listed with the
   * estimated cost (`dryRun`) or enqueued; old assets stay published until the new ones pass.
   */
  app.post("/v1/products/:sku/regenerate", async (request) => {
    const { sku } = parseRequestPart(skuParamsSchema, request.params, "invalid_sku");
    const body = parseRequestPart(regenerateRequestSchema, request.body ?? {});
    const product = await getProduct(runtime.db, sku);
    if (!product) throw new ShotlistError("not_found", `no product ${sku}`, { status: 404 });
    const only = body.slots ?? (body.slot === undefined ? undefined : [body.slot]);
    if (only !== undefined) {
      const slots = await getProductSlots(runtime.db, sku);
      const unknown = only.filter((name) => !slots.some((slot) => slot.slot === name));
      if (unknown.length > 0) {
        throw new ShotlistError(
          "unknown_slot",
          `product ${sku} has no slot ${unknown.map((name) => `"${name}"`).join(", ")}; its slots: ${slots.map((slot) => slot.slot).join(", ")}`,
          { status: 422, extra: { unknown } },
        );
      }
    }
    const report = await regenerateAssets(
      runtime.intake,
      {
        sku,
        ...(only === undefined ? {} : { slots: only }),
        ...(body.provider === undefined ? {} : { provider: body.provider }),
        ...(body.model === undefined ? {} : { model: body.model }),
      },
      { dryRun: body.dryRun ?? false },
    );
    request.log.info(
      { sku, count: report.count, dryRun: report.dryRun, reason: body.reason },
      "regenerate",
    );
    return report;
  });

  /** One product or a batch (`{products: [...]}`, up to 1,000); each goes through the one intake. */
  app.post(
    "/v1/products",
    { bodyLimit: 64 * 1024 * 1024, ...idempotencyHooks(runtime) },
    async (request, reply) => {
      const body = request.body;
      if (body !== null && typeof body === "object" && "products" in body) {
        const { products } = parseRequestPart(batchEnvelopeSchema, body, "invalid_request", 422);
        const results = [];
        for (const [index, product] of products.entries()) {
          try {
            results.push({
              index,
              status: "accepted",
              ...(await submitProduct(runtime.intake, product)),
            });
          } catch (error) {
            if (!(error instanceof ShotlistError)) throw error;
            results.push({ index, status: "rejected", code: error.code, detail: error.message });
          }
        }
        return reply.code(207).send({ results });
      }
      const result = await submitProduct(runtime.intake, body);
      return reply.code(result.created ? 201 : 200).send(result);
    },
  );
}

function decodeCursor(cursor: string): string {
  const sku = Buffer.from(cursor, "base64url").toString("utf8");
  try {
    return validateSku(sku);
  } catch {
    throw new ShotlistError("invalid_request", "cursor is not one this API returned");
  }
}
