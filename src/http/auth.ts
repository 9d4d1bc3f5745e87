import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ShotlistError } from "../domain/errors.js";
import type { Runtime } from "../runtime.js";
import { type ApiKey, findActiveApiKey, type Scope } from "../store/api-keys.js";
import { sendProblem } from "./problem.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Scope a /v1 route needs; default `read` for GET/HEAD, `write` otherwise. */
    scope?: Scope;
  }
  interface FastifyRequest {
    /** The API key that authenticated this request (/v1 routes only). */
    apiKey: ApiKey | null;
  }
}

// RFC 6750 §2.1: b64token syntax.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

const isApiPath = (path: string) => path === "/v1" || path.startsWith("/v1/");

function unauthorized(reply: FastifyReply, request: FastifyRequest, detail: string) {
  // RFC 6750 §3: a 401 names the scheme it wants.
  reply.header("www-authenticate", 'Bearer realm="shotlist"');
  return sendProblem(
    reply,
    new ShotlistError("unauthorized", detail, { status: 401 }),
    request.url,
  );
}

/**
 * `Authorization: Bearer <key>` on every /v1 route (DESIGN §3). Everything else — health,
 * metrics, content-addressed assets, on-demand images, webhooks, the dashboard — stays open.
 * `admin` implies `read` and `write`.
 */
export function requireApiKeys(app: FastifyInstance, runtime: Runtime): void {
  app.decorateRequest("apiKey", null);
  app.addHook("onRequest", async (request, reply) => {
    const path = request.url.split("?", 1)[0] ?? "";
    const route = request.routeOptions.url;
    if (!isApiPath(path) && !(route !== undefined && isApiPath(route))) return;
    const header = request.headers.authorization;
    if (header === undefined) {
      return unauthorized(reply, request, "send Authorization: Bearer <api key>");
    }
    const token = BEARER.exec(header)?.[1];
    const apiKey = token === undefined ? undefined : await findActiveApiKey(runtime.db, token);
    if (!apiKey) return unauthorized(reply, request, "the API key is unknown or revoked");
    const needed: Scope =
      request.routeOptions.config?.scope ??
      (request.method === "GET" || request.method === "HEAD" ? "read" : "write");
    if (!apiKey.scopes.includes(needed) && !apiKey.scopes.includes("admin")) {
      return sendProblem(
        reply,
        new ShotlistError("forbidden", `this API key lacks the ${needed} scope`, {
          status: 403,
          extra: { requiredScope: needed },
        }),
        request.url,
      );
    }
    request.apiKey = apiKey;
  });
}
