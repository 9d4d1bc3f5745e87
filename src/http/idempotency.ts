import type { FastifyReply, FastifyRequest } from "fastify";
import { canonicalJson, sha256Hex } from "../domain/canonical.js";
import { ShotlistError } from "../domain/errors.js";
import type { Runtime } from "../runtime.js";
import {
  claimIdempotencyKey,
  finishIdempotencyKey,
  releaseIdempotencyKey,
} from "../store/idempotency.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The Idempotency-Key this request claimed; its response is stored in onSend. */
    idempotencyKey?: string;
  }
}

const MAX_KEY_LENGTH = 255;

/** The header's value: Stripe sends a bare token, the IETF draft an sf-string ("…"). */
export function parseIdempotencyKey(raw: string | string[]): string {
  const text = Array.isArray(raw) ? raw.join(",") : raw;
  const key = /^"(.*)"$/.exec(text)?.[1] ?? text;
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new ShotlistError(
      "idempotency_key_invalid",
      `Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} visible ASCII characters`,
    );
  }
  return key;
}

/**
 * Idempotency-Key for a POST route (Stripe / draft-ietf-httpapi-idempotency-key-header): the
 * first 2xx response is stored for 24 h and replayed byte for byte with `Idempotent-Replayed:
 * true`; same key, other body → 422; same key while the first is running → 409. Keys are
 * scoped to the API key. An error response is not stored: it wrote nothing, so a retry may
 * run again (Stripe's rule).
 */
export function idempotencyHooks(runtime: Runtime) {
  return {
    async preHandler(request: FastifyRequest, reply: FastifyReply) {
      const raw = request.headers["idempotency-key"];
      if (raw === undefined || !request.apiKey) return;
      const key = parseIdempotencyKey(raw);
      const requestHash = sha256Hex(
        `${request.method} ${request.routeOptions.url}\n${canonicalJson(request.body ?? null)}`,
      );
      const claim = await claimIdempotencyKey(runtime.db, request.apiKey.id, key, requestHash);
      switch (claim.kind) {
        case "claimed":
          request.idempotencyKey = key;
          return;
        case "mismatch":
          throw new ShotlistError(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
            { status: 422 },
          );
        case "in_flight":
          throw new ShotlistError(
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry later",
            { status: 409 },
          );
        case "replay":
          return reply
            .code(claim.status)
            .header("content-type", claim.contentType)
            .header("idempotent-replayed", "true")
            .send(claim.body);
      }
    },
    async onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
      const key = request.idempotencyKey;
      const apiKey = request.apiKey;
      if (key === undefined || !apiKey) return payload;
      request.idempotencyKey = undefined;
      if (reply.statusCode < 300 && typeof payload === "string") {
        await finishIdempotencyKey(runtime.db, apiKey.id, key, {
          status: reply.statusCode,
          contentType: String(reply.getHeader("content-type") ?? "application/json"),
          body: payload,
        });
      } else {
        await releaseIdempotencyKey(runtime.db, apiKey.id, key);
      }
      return payload;
    },
  };
}
