import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ShotlistError } from "../../domain/errors.js";
import { isWebhookEventType, WEBHOOK_EVENTS } from "../../domain/webhook-events.js";
import { forbiddenHostAddress } from "../../intake/address-guard.js";
import type { Runtime } from "../../runtime.js";
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  listWebhookEndpoints,
  type WebhookEndpoint,
} from "../../store/webhook-endpoints.js";
import { createWebhookEndpointSchema, idParamsSchema, parseRequestPart } from "../schemas.js";

const endpointIdParamsSchema = idParamsSchema("endpoint");

const endpointView = (endpoint: WebhookEndpoint) => ({
  id: endpoint.id,
  url: endpoint.url,
  events: endpoint.events,
  createdAt: endpoint.createdAt,
  disabledAt: endpoint.disabledAt,
  disabledReason: endpoint.disabledReason,
});

/** Standard Webhooks secret: `whsec_` + base64 of 32 random bytes (the spec allows 24–64). */
const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

/**
 * Validates an endpoint URL at the edge (DESIGN §9): http(s) only, and — unless private
 * networks are allowed — a host that neither is nor resolves to a loopback, private,
 * link-local or metadata address. Deliveries check the connected address again.
 */
async function validateEndpointUrl(raw: string, allowPrivateNetworks: boolean): Promise<string> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ShotlistError("invalid_webhook_url", `url is not an absolute URL: ${raw}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ShotlistError("invalid_webhook_url", `url must be http(s), not ${url.protocol}`);
  }
  if (allowPrivateNetworks) return url.href;
  let forbidden: string | undefined;
  try {
    forbidden = await forbiddenHostAddress(url);
  } catch (cause) {
    throw new ShotlistError("invalid_webhook_url", `${url.hostname} does not resolve`, { cause });
  }
  if (forbidden) {
    throw new ShotlistError(
      "webhook_url_forbidden",
      `${url.hostname} is or resolves to ${forbidden}, a private or reserved address`,
    );
  }
  return url.href;
}

/** Outbound webhook endpoints (DESIGN §11); every route needs `admin`. */
export function webhookEndpointRoutes(app: FastifyInstance, runtime: Runtime) {
  const admin = { config: { scope: "admin" as const } };

  app.get("/v1/webhook-endpoints", admin, async () => ({
    endpoints: (await listWebhookEndpoints(runtime.db)).map(endpointView),
  }));

  app.post("/v1/webhook-endpoints", admin, async (request, reply) => {
    const parsed = createWebhookEndpointSchema.safeParse(request.body);
    if (!parsed.success) {
      throw new ShotlistError("invalid_request", z.prettifyError(parsed.error));
    }
    const unknown = parsed.data.events.filter((event) => !isWebhookEventType(event));
    if (unknown.length > 0) {
      throw new ShotlistError(
        "unknown_event",
        `unknown event ${unknown.map((event) => JSON.stringify(event)).join(", ")}; known: ${WEBHOOK_EVENTS.join(", ")}`,
      );
    }
    const url = await validateEndpointUrl(parsed.data.url, runtime.settings.allowPrivateNetworks);
    const secret = newSecret();
    const events = [...new Set(parsed.data.events.filter(isWebhookEventType))];
    const created = await createWebhookEndpoint(runtime.db, { url, events, secret });
    // The only time the secret is shown: receivers need it to verify signatures.
    return reply
      .code(201)
      .header("cache-control", "no-store")
      .send({ ...endpointView(created), secret });
  });

  app.delete("/v1/webhook-endpoints/:id", admin, async (request, reply) => {
    const { id } = parseRequestPart(endpointIdParamsSchema, request.params);
    if (!(await deleteWebhookEndpoint(runtime.db, id))) {
      throw new ShotlistError("not_found", `no webhook endpoint ${id}`, { status: 404 });
    }
    return reply.code(204).send();
  });
}
