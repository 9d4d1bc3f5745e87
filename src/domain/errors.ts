/**
 * One error class for everything Shotlist refuses or fails at. The `code` is stable (scripts,
 * tests and problem+json clients match on it); `status` is the HTTP status where one applies;
 * `retryable` is decided where the error is born (a provider's 429 is retryable, a 400 is not).
 */
export type ErrorCode =
  | "invalid_request"
  | "invalid_json"
  | "invalid_signature"
  | "unknown_prediction"
  | "webhook_not_configured"
  | "invalid_sku"
  | "invalid_config"
  | "invalid_env"
  | "unknown_category"
  | "unknown_slot"
  | "not_found"
  | "payload_too_large"
  | "reference_image_missing"
  | "reference_image_undecodable"
  | "reference_image_too_large"
  | "reference_image_fetch_failed"
  | "reference_url_forbidden"
  | "image_undecodable"
  | "image_too_large"
  | "cannot_make_locally"
  | "check_failed"
  | "provider_error"
  | "budget_exhausted"
  | "circuit_open"
  | "provider_call_in_progress"
  | "csv_row_invalid"
  | "database_error"
  | "invalid_rendition_option"
  | "signature_invalid"
  | "shopify_error"
  | "invalid_webhook_url"
  | "webhook_url_forbidden"
  | "output_url_forbidden"
  | "unknown_event"
  | "webhook_delivery_failed"
  | "webhook_endpoint_disabled"
  | "webhook_delivery_in_progress"
  | "review_item_resolved"
  | "review_candidate_unknown"
  | "requeue_not_allowed"
  | "unsupported_media_type"
  | "internal"
  | "unauthorized"
  | "forbidden"
  | "idempotency_key_invalid"
  | "idempotency_key_in_use"
  | "idempotency_key_reused";

export interface ShotlistErrorOptions {
  /** HTTP status for the problem+json answer; default 400. */
  status?: number;
  /** Whether trying again later can succeed; default false (permanent). */
  retryable?: boolean;
  cause?: unknown;
  /** Extra machine-readable members for the problem document (e.g. `errors`, `line`). */
  extra?: Record<string, unknown>;
}

export class ShotlistError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, options: ShotlistErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ShotlistError";
    this.code = code;
    this.status = options.status ?? 400;
    this.retryable = options.retryable ?? false;
    this.extra = options.extra ?? {};
  }
}

/** Turns anything thrown into an Error, keeping the original as `cause` (graphile-worker's coerceError). */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === "string" ? thrown : JSON.stringify(thrown), { cause: thrown });
}

/** A non-empty one-line message for logs and job records. */
export function errorMessage(thrown: unknown): string {
  const error = coerceError(thrown);
  const message = error.message.trim() || error.name || "unknown error";
  return error instanceof ShotlistError ? `${error.code}: ${message}` : message;
}
