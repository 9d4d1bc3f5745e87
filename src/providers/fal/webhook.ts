import { createHash, createPublicKey, verify } from "node:crypto";
import { ShotlistError } from "../../domain/errors.js";
import { headerOf, type WebhookHeaders } from "../webhook-headers.js";

/** One key of fal's JWKS: an Ed25519 public key, `x` in base64url (RFC 8037). */
export interface FalJsonWebKey {
  kty: string;
  crv: string;
  x: string;
  kid?: string;
}

export interface FalWebhookEvent {
  /** The queue request id (what `submit` returned inside the externalId). */
  requestId: string;
  /** "succeeded" for fal's `OK`, "failed" for `ERROR`. */
  status: "succeeded" | "failed";
  /** fal's `error` message when the request failed. */
  error: string | null;
}

export interface VerifyFalWebhookInput {
  headers: WebhookHeaders;
  /** The body exactly as received: the signature covers its SHA-256. */
  rawBody: string | Buffer;
  /** fal's signing keys from its JWKS (`FalProvider.webhookKeys`); any one may have signed. */
  keys: readonly FalJsonWebKey[];
  /** Whether a ledger row holds this request id; a signed callback for another is refused. */
  isKnownRequest(requestId: string): boolean | Promise<boolean>;
  /** Clock, ms since epoch; default now. */
  nowMs?: number;
  /** Largest distance of the timestamp from the clock, s; default 300 (fal's advice). */
  toleranceSeconds?: number;
}

function refuse(detail: string): ShotlistError {
  return new ShotlistError("invalid_signature", `fal webhook: ${detail}`, { status: 401 });
}

/** The bytes fal signs: request id, user id, timestamp and the body's SHA-256 hex, one a line. */
export function falSignedMessage(
  requestId: string,
  userId: string,
  timestamp: string,
  body: Buffer,
): Buffer {
  const digest = createHash("sha256").update(body).digest("hex");
  return Buffer.from([requestId, userId, timestamp, digest].join("\n"), "utf8");
}

/**
 * Verifies a callback from fal (https://docs.fal.ai/model-apis/model-endpoints/webhooks,
 * "Verifying your webhook"): `X-Fal-Webhook-Signature` is the hex Ed25519 signature, by one of
 * the JWKS keys, of `request-id \n user-id \n timestamp \n sha256-hex(body)`, taken from the
 * `X-Fal-Webhook-Request-Id`, `-User-Id` and `-Timestamp` headers. Refuses (401
 * `invalid_signature`) a missing header, a timestamp outside the tolerance, or no key verifying;
 * a body that is not fal's callback or names another request than its header (400
 * `invalid_json`); and a request no ledger row knows (404 `unknown_prediction`).
 */
export async function verifyFalWebhook(input: VerifyFalWebhookInput): Promise<FalWebhookEvent> {
  const requestId = headerOf(input.headers, "x-fal-webhook-request-id");
  const userId = headerOf(input.headers, "x-fal-webhook-user-id");
  const timestamp = headerOf(input.headers, "x-fal-webhook-timestamp");
  const signatureHex = headerOf(input.headers, "x-fal-webhook-signature");
  if (!requestId || userId === undefined || !timestamp || !signatureHex) {
    throw refuse(
      "the X-Fal-Webhook-Request-Id, -User-Id, -Timestamp and -Signature headers are required",
    );
  }
  if (!/^\d{1,12}$/.test(timestamp)) throw refuse("the timestamp is not a number of seconds");
  const nowSeconds = Math.floor((input.nowMs ?? Date.now()) / 1000);
  const tolerance = input.toleranceSeconds ?? 300;
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) {
    throw refuse(`the timestamp is more than ${tolerance} s from now`);
  }
  if (!/^[0-9a-f]{128}$/i.test(signatureHex)) throw refuse("the signature is not 64 hex bytes");
  const body = typeof input.rawBody === "string" ? Buffer.from(input.rawBody) : input.rawBody;
  const message = falSignedMessage(requestId, userId, timestamp, body);
  const signature = Buffer.from(signatureHex, "hex");
  const verified = input.keys.some((jwk) => {
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519") return false;
    try {
      const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  });
  if (!verified) throw refuse("no key verifies the signature");

  let callback: unknown;
  try {
    callback = JSON.parse(body.toString("utf8"));
  } catch (cause) {
    throw new ShotlistError("invalid_json", "fal webhook: body is not JSON", { cause });
  }
  const { request_id: bodyRequestId, status, error } = (callback ?? {}) as Record<string, unknown>;
  if (bodyRequestId !== requestId || (status !== "OK" && status !== "ERROR")) {
    throw new ShotlistError(
      "invalid_json",
      "fal webhook: body is not a callback for the request its headers name",
    );
  }
  if (!(await input.isKnownRequest(requestId))) {
    throw new ShotlistError(
      "unknown_prediction",
      `fal webhook: request ${requestId} is not one of ours`,
      {
        status: 404,
      },
    );
  }
  return {
    requestId,
    status: status === "OK" ? "succeeded" : "failed",
    error: typeof error === "string" ? error : null,
  };
}
