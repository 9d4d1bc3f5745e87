import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { ShotlistError } from "../../domain/errors.js";
import {
  parseCategoryMapping,
  productFromShopify,
  SHOPIFY_PRODUCT_TOPICS,
} from "../../intake/shopify.js";
import { submitProduct } from "../../intake/submit.js";
import type { Runtime } from "../../runtime.js";
import { hasReceipt, recordReceipt, type WebhookSource } from "../../store/webhooks.js";

/** Largest webhook body; a Shopify product with 2,048 variants is about 2 MiB. */
export const WEBHOOK_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/** Thrown inside the product transaction when a racing copy of the delivery committed first. */
class DuplicateDelivery extends Error {}

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
 * before anything is parsed, deduplicated durably on the delivery id, and handed to the one
 * intake. 200 means the product, its jobs and the receipt are committed.
 */
export function webhookRoutes(app: FastifyInstance, runtime: Runtime) {
  const categories = parseCategoryMapping(runtime.settings.shopifyCategories);
  const intakeVerifiers = runtime.settings.intakeWebhookSecrets.map((secret, index) => {
    try {
      return new Webhook(secret);
    } catch (cause) {
      throw new ShotlistError(
        "invalid_env",
        `SHOTLIST_INTAKE_WEBHOOK_SECRETS: secret ${index + 1} is not whsec_<base64>`,
        { cause },
      );
    }
  });
  const log = runtime.log.child({ component: "webhooks" });

  async function accept(
    reply: FastifyReply,
    source: WebhookSource,
    deliveryId: string,
    topic: string,
    product: unknown,
  ) {
    try {
      const result = await submitProduct(runtime.intake, product, {
        withinTransaction: async (tx, parsed) => {
          const recorded = await recordReceipt(tx, { source, deliveryId, topic, sku: parsed.sku });
          if (!recorded) throw new DuplicateDelivery(deliveryId);
        },
      });
      return reply.code(200).send({
        status: "accepted",
        deliveryId,
        sku: result.sku,
        changed: result.changed,
        jobsCreated: result.jobsCreated,
      });
    } catch (error) {
      if (error instanceof DuplicateDelivery) {
        return reply.code(200).send({ status: "duplicate", deliveryId });
      }
      throw error;
    }
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
        if (await hasReceipt(runtime.db, "shopify", deliveryId)) {
          return reply.code(200).send({ status: "duplicate", deliveryId });
        }
        const product = productFromShopify(parseJson(raw), categories, runtime.shotList);
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
            "SHOTLIST_INTAKE_WEBHOOK_SECRETS is not set",
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
        if (await hasReceipt(runtime.db, "intake", deliveryId)) {
          return reply.code(200).send({ status: "duplicate", deliveryId });
        }
        return accept(reply, "intake", deliveryId, "product", parseJson(raw));
      },
    );
  });
}
