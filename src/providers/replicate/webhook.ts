import { createHmac, timingSafeEqual } from "node:crypto";
import { ShotlistError } from "../../domain/errors.js";
import { headerOf, type WebhookHeaders } from "../webhook-headers.js";

export type ReplicatePredictionStatus =
  | "starting"
  | "processing"
  | "succeeded"
  | "failed"
  | "canceled"
  | "aborted";

export interface ReplicateWebhookEvent {
  /** `webhook-id`: the same on every retry of one delivery (dedupe on it). */
  webhookId: string;
  predictionId: string;
  status: ReplicatePredictionStatus;
  /** succeeded, failed, canceled or aborted: the prediction will not change again. */
  terminal: boolean;
  /** The prediction's `error` when it failed. */
  error: string | null;
}

export interface VerifyReplicateWebhookInput {
  headers: WebhookHeaders;
  /** The body exactly as received: the signature covers these bytes, not a re-serialisation. */
  rawBody: string | Buffer;
  /**
   * Signing secret(s) `whsec_…` from `GET /v1/webhooks/default/secret`; during a rotation pass
   * the old and the new one.
   */
  secrets: string | readonly string[];
  /** Whether a ledger row holds this prediction id; a signed callback for another is refused. */
  isKnownPrediction(predictionId: string): boolean | Promise<boolean>;
  /** Clock, ms since epoch; default now. */
  nowMs?: number;
  /** Largest distance of `webhook-timestamp` from the clock, s; default 300 (Replicate's advice). */
  toleranceSeconds?: number;
}

const STATUSES: ReadonlySet<string> = new Set([
  "starting",
  "processing",
  "succeeded",
  "failed",
  "canceled",
  "aborted",
]);
const TERMINAL: ReadonlySet<string> = new Set(["succeeded", "failed", "canceled", "aborted"]);

function refuse(detail: string): ShotlistError {
  return new ShotlistError("invalid_signature", `replicate webhook: ${detail}`, { status: 401 });
}

function keyOf(secret: string): Buffer {
  // Replicate's secrets are Standard Webhooks secrets: "whsec_" + base64 of the HMAC key.
  const encoded = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  const key = Buffer.from(encoded, "base64");
  if (key.length === 0)
    throw new ShotlistError("invalid_config", "replicate webhook secret is empty");
  return key;
}

/**
 * Verifies a callback from Replicate (https://replicate.com/docs/topics/webhooks/verify-webhook,
 * the Standard Webhooks scheme): `webhook-signature` holds space-separated `v1,<base64>` entries,
 * each an HMAC-SHA256 of `${webhook-id}.${webhook-timestamp}.${body}` under the secret; one match
 * is enough. Refuses (401 `invalid_signature`) a missing header, no matching signature, or a
 * timestamp outside the tolerance (replays); a body that is not a prediction (400
 * `invalid_json`); and a prediction no ledger row knows (404 `unknown_prediction`). The signature
 * is checked before the body is parsed. No I/O of its own: the clock is a parameter and the
 * ledger lookup a callback.
 */
export async function verifyReplicateWebhook(
  input: VerifyReplicateWebhookInput,
): Promise<ReplicateWebhookEvent> {
  const id = headerOf(input.headers, "webhook-id");
  const timestamp = headerOf(input.headers, "webhook-timestamp");
  const signature = headerOf(input.headers, "webhook-signature");
  if (!id || !timestamp || !signature) {
    throw refuse("webhook-id, webhook-timestamp and webhook-signature are all required");
  }
  if (!/^\d{1,12}$/.test(timestamp)) throw refuse("webhook-timestamp is not a number of seconds");
  const nowSeconds = Math.floor((input.nowMs ?? Date.now()) / 1000);
  const tolerance = input.toleranceSeconds ?? 300;
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) {
    throw refuse(`webhook-timestamp is more than ${tolerance} s from now`);
  }
  const body = typeof input.rawBody === "string" ? Buffer.from(input.rawBody) : input.rawBody;
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  const offered = signature
    .split(" ")
    .filter((entry) => entry.startsWith("v1,"))
    .map((entry) => Buffer.from(entry.slice(3), "base64"));
  const secrets = typeof input.secrets === "string" ? [input.secrets] : input.secrets;
  const matches = secrets.some((secret) => {
    const expected = createHmac("sha256", keyOf(secret)).update(signed).digest();
    return offered.some(
      (candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected),
    );
  });
  if (!matches) throw refuse("no signature matches");

  let prediction: unknown;
  try {
    prediction = JSON.parse(body.toString("utf8"));
  } catch (cause) {
    throw new ShotlistError("invalid_json", "replicate webhook: body is not JSON", { cause });
  }
  const { id: predictionId, status, error } = (prediction ?? {}) as Record<string, unknown>;
  if (typeof predictionId !== "string" || typeof status !== "string" || !STATUSES.has(status)) {
    throw new ShotlistError(
      "invalid_json",
      "replicate webhook: body is not a prediction (id and status)",
    );
  }
  if (!(await input.isKnownPrediction(predictionId))) {
    throw new ShotlistError(
      "unknown_prediction",
      `replicate webhook: prediction ${predictionId} is not one of ours`,
      { status: 404 },
    );
  }
  return {
    webhookId: id,
    predictionId,
    status: status as ReplicatePredictionStatus,
    terminal: TERMINAL.has(status),
    error: typeof error === "string" ? error : null,
  };
}

/** Signs a callback the way Replicate does; the fake server and tests use it. */
export function signReplicateWebhook(
  secret: string,
  webhookId: string,
  timestampSeconds: number,
  body: string,
): string {
  const digest = createHmac("sha256", keyOf(secret))
    .update(`${webhookId}.${timestampSeconds}.${body}`)
    .digest("base64");
  return `v1,${digest}`;
}
