import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { ShotlistError } from "../../domain/errors.js";
import type { ProductInput } from "../../domain/product.js";
import {
  parseCategoryMapping,
  productFromShopify,
  SHOPIFY_PRODUCT_TOPICS,
} from "../../intake/shopify.js";
import { parseProductInput } from "../../intake/submit.js";
import type { Runtime } from "../../runtime.js";
import { createDeliveryQueue, type WebhookSource } from "../../store/webhooks.js";

/** Largest webhook body; a Shopify product with 2,048 variants is about 2 MiB. */
export const WEBHOOK_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function unauthorized(detail: string): ShotlistError {
  return new ShotlistError("invalid_signature", detail, { status: 401 });
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch (error) {
    throw new ShotlistError("invalid_json", `body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Shopify: base64 HMAC-SHA256 of the raw body with the app secret, compared in constant time. */
export function shopifySignatureValid(raw: Buffer, signature: string, secret: string): boolean {
  const expected = createHmac("sha256", secret).update(raw).digest();
  const given = Buffer.from(signature, "base64");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Webhooks in (DESIGN §2): Shopify and Standard Webhooks deliveries, verified on the raw bytes
 * before anything is parsed, checked for the fields the intake needs (422 otherwise), then
 * deduplicated durably on the delivery id and queued as an `intake` job in one statement.
 * 200 means the delivery is durably queued; the worker runs it through the one intake.
 */
export function webhookRoutes(app: FastifyInstance, runtime: Runtime) {
  const categories = parseCategoryMapping(runtime.settings.shopifyCategories);
  const intakeVerifiers = runtime.settings.intakeWebhookSecrets.map((secret, index) => {
    try {
      return new Webhook(secret);
    } catch (cause) {
      throw new ShotlistError(
        "invalid_env",
        `SHOTLIST_INTAKE_WEBHOOK_SECRET: secret ${index + 1} is not whsec_<base64>`,
        { cause },
      );
    }
  });
  const log = runtime.log.child({ component: "webhooks" });
  const enqueueDelivery = createDeliveryQueue(runtime.db, runtime.settings.maxAttempts);

  /**
   * The durable enqueue: the receipt and the `intake` job in one statement (group-committed
   * with the deliveries arriving alongside). 200 means both are
   * committed; the product appears when a worker runs the job (reference images are fetched
   * there, not here).
   */
  async function accept(
    reply: FastifyReply,
    source: WebhookSource,
    deliveryId: string,
    topic: string,
    product: ProductInput,
  ) {
    const jobId = await enqueueDelivery({ source, deliveryId, topic, sku: product.sku }, product);
    if (jobId === undefined) return reply.code(200).send({ status: "duplicate", deliveryId });
    runtime.intake.onJobsCreated?.(1);
    return reply.code(200).send({ status: "accepted", deliveryId, sku: product.sku, jobId });
  }

  app.register(async (scope) => {
    // Signatures are over the exact bytes sent, so these routes take the body unparsed.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) =>
      done(null, body),
    );

    scope.post(
      "/webhooks/shopify",
      { bodyLimit: WEBHOOK_BODY_LIMIT_BYTES },
      async (request, reply) => {
        const secret = runtime.settings.shopifyWebhookSecret;
        if (!secret) {
          throw new ShotlistError(
            "webhook_not_configured",
            "SHOTLIST_SHOPIFY_WEBHOOK_SECRET is not set",
            { status: 503 },
          );
        }
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const signature = header(request, "x-shopify-hmac-sha256");
        if (!signature) throw unauthorized("X-Shopify-Hmac-Sha256 is missing");
        if (!shopifySignatureValid(raw, signature, secret)) {
          throw unauthorized("X-Shopify-Hmac-Sha256 does not match the body");
        }
        const topic = header(request, "x-shopify-topic") ?? "";
        const deliveryId =
          header(request, "x-shopify-event-id") ?? header(request, "x-shopify-webhook-id");
        if (!SHOPIFY_PRODUCT_TOPICS.has(topic)) {
          log.info({ topic, deliveryId }, "ignored a Shopify webhook of a topic we do not handle");
          return reply.code(202).send({ status: "ignored", topic });
        }
        if (!deliveryId) {
          throw new ShotlistError(
            "invalid_request",
            "X-Shopify-Event-Id and X-Shopify-Webhook-Id are both missing",
          );
        }
        const product = parseProductInput(
          productFromShopify(parseJson(raw), categories, runtime.shotList),
          runtime.shotList,
        );
        return accept(reply, "shopify", deliveryId, topic, product);
      },
    );

    scope.post(
      "/webhooks/intake",
      { bodyLimit: WEBHOOK_BODY_LIMIT_BYTES },
      async (request, reply) => {
        if (intakeVerifiers.length === 0) {
          throw new ShotlistError(
            "webhook_not_configured",
            "SHOTLIST_INTAKE_WEBHOOK_SECRET is not set",
            { status: 503 },
          );
        }
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const headers = {
          "webhook-id": header(request, "webhook-id") ?? "",
          "webhook-timestamp": header(request, "webhook-timestamp") ?? "",
          "webhook-signature": header(request, "webhook-signature") ?? "",
        };
        // Standard Webhooks: during rotation the sender signs with old and new secrets; any of
        // ours verifying any of its signatures is enough. The library enforces the 5-minute window.
        let lastFailure = "no secret verified the signature";
        const verified = intakeVerifiers.some((verifier) => {
          try {
            verifier.verify(raw, headers, { jsonParse: false });
            return true;
          } catch (error) {
            if (!(error instanceof WebhookVerificationError)) throw error;
            lastFailure = error.message;
            return false;
          }
        });
        if (!verified) throw unauthorized(`webhook signature rejected: ${lastFailure}`);
        const deliveryId = headers["webhook-id"];
        const product = parseProductInput(parseJson(raw), runtime.shotList);
        return accept(reply, "intake", deliveryId, "product", product);
      },
    );
  });
}
