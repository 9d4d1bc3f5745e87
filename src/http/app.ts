import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import { ShotlistError } from "../domain/errors.js";
import type { Runtime } from "../runtime.js";
import { requireApiKeys } from "./auth.js";
import { errorHandler, sendProblem } from "./problem.js";
import { assetRoutes } from "./routes/assets.js";
import { costRoutes } from "./routes/costs.js";
import { dashboardRoutes } from "./routes/dashboard.js";
import { docsRoutes } from "./routes/docs.js";
import { healthRoutes } from "./routes/health.js";
import { jobRoutes } from "./routes/jobs.js";
import { keyRoutes } from "./routes/keys.js";
import { productRoutes } from "./routes/products.js";
import { providerWebhookRoutes } from "./routes/provider-webhooks.js";
import { renditionRoutes } from "./routes/renditions.js";
import { reviewRoutes } from "./routes/review.js";
import { webhookDeliveryRoutes } from "./routes/webhook-deliveries.js";
import { webhookEndpointRoutes } from "./routes/webhook-endpoints.js";
import { webhookRoutes } from "./routes/webhooks.js";

export interface BuildAppOptions {
  /**
   * Require `Authorization: Bearer` on /v1 routes (and with it, Idempotency-Key, which is
   * scoped per API key). Default true. Security: false only for benchmarks that measure the
   * layer's overhead, never in a server.
   */
  requireApiKeys?: boolean;
}

/** The HTTP API (DESIGN §3): one Fastify app, one routes file per resource, one error mapping. */
export async function buildApp(
  runtime: Runtime,
  options: BuildAppOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: runtime.log.child({ component: "http" }) as FastifyBaseLogger,
    // Our own request logs (or none); the top-level option is deprecated in Fastify 5.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    requestIdHeader: "x-request-id",
    genReqId: () => crypto.randomUUID(),
    // Path tricks (%2e%2e, control characters) reach our validators instead of being re-routed.
    routerOptions: { maxParamLength: 512 },
  });
  app.setErrorHandler(errorHandler(runtime.log));
  // The API speaks JSON only: a text/plain body is a 415, not a string handed to validators.
  app.removeContentTypeParser("text/plain");
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      new ShotlistError("not_found", `no route ${request.method} ${request.url}`, { status: 404 }),
      request.url,
    ),
  );
  app.addHook("onResponse", async (request, reply) => {
    runtime.metrics.httpRequests.inc({
      route: request.routeOptions.url ?? "unmatched",
      method: request.method,
      status: String(reply.statusCode),
    });
  });
  app.addHook("onSend", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  if (options.requireApiKeys !== false) requireApiKeys(app, runtime);
  healthRoutes(app, runtime);
  productRoutes(app, runtime);
  jobRoutes(app, runtime);
  costRoutes(app, runtime);
  assetRoutes(app, runtime);
  dashboardRoutes(app, runtime);
  renditionRoutes(app, runtime);
  webhookRoutes(app, runtime);
  providerWebhookRoutes(app, runtime);
  keyRoutes(app, runtime);
  docsRoutes(app, runtime);
  webhookEndpointRoutes(app, runtime);
  webhookDeliveryRoutes(app, runtime);
  reviewRoutes(app, runtime);
  await app.ready();
  return app;
}
