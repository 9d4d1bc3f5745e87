import { ShotlistError } from "../domain/errors.js";
import type { OutputFormat, Recipe } from "../domain/recipe.js";

export type Operation = "generate" | "edit" | "remove-background" | "compose";

export interface ProviderRequest {
  recipe: Recipe;
  recipeHash: string;
  /** Bytes of every reference image the recipe names, keyed by SHA-256 hex. */
  references: ReadonlyMap<string, Buffer>;
}

export interface ProviderResult {
  bytes: Buffer;
  format: OutputFormat;
  width: number;
  height: number;
  costMicros: number;
  /** The provider's own id for the call, for provenance (absent for local work). */
  providerRequestId?: string;
}

export interface CallContext {
  signal: AbortSignal;
}

/** One small interface every imagery adapter implements (STYLE §2). */
export interface ImageProvider {
  readonly name: string;
  readonly operations: readonly Operation[];
  /** Model version string recorded in recipes, e.g. "sharp 0.35.5 / vips 8.18.7 / pipeline 1". */
  modelVersion(model: string): string;
  estimateCostMicros(request: ProviderRequest): number;
  run(request: ProviderRequest, context: CallContext): Promise<ProviderResult>;
}

/** The context of one paid call, as the ledger opened it. */
export interface PaidCallContext extends CallContext {
  /**
   * The ledger row's id, stable across retries of the same row: adapters send it as the
   * provider's idempotency header where the provider has one, and fakes count calls by it.
   */
  callId: string;
}

/** Limits an adapter declares; the resilience layer and the checks read them. */
export interface ProviderLimits {
  /** Largest input or output side in pixels the provider accepts. */
  maxSide: number;
  /** Output formats it can return. */
  formats: readonly OutputFormat[];
  /** Documented requests per minute (the concurrency limit and rate policy start from it). */
  requestsPerMinute: number;
}

/** How a paid call failed, mapped by the adapter from the provider's own answer. */
export type ProviderFailureKind =
  /** 429: retryable; `retryAfterMs` from Retry-After when the provider sent it. */
  | "rate_limited"
  /** 5xx, connection refused or reset: retryable. */
  | "unavailable"
  /** No answer in time: retryable; for a sync call the outcome is unknown (in doubt). */
  | "timeout"
  /** 401/403: permanent until someone fixes the credentials. */
  | "unauthorized"
  /** 402 or the provider's "insufficient credits" error: permanent. */
  | "insufficient_credits"
  /** Content-policy refusal (moderation): permanent for this recipe; move down the chain. */
  | "content_policy"
  /** Any other 4xx: permanent. */
  | "invalid_request"
  /** The answer is not a usable image (HTML page, truncated, non-image, wrong size): permanent. */
  | "bad_output";

const RETRYABLE_KINDS: ReadonlySet<ProviderFailureKind> = new Set([
  "rate_limited",
  "unavailable",
  "timeout",
]);

/** A paid provider's failure: a ShotlistError whose `retryable` follows from its kind. */
export class ProviderCallError extends ShotlistError {
  readonly kind: ProviderFailureKind;
  readonly provider: string;
  readonly httpStatus: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    provider: string,
    kind: ProviderFailureKind,
    detail: string,
    options: { httpStatus?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super("provider_error", `${provider}: ${kind}: ${detail}`, {
      status: 502,
      retryable: RETRYABLE_KINDS.has(kind),
      cause: options.cause,
      extra: {
        provider,
        kind,
        ...(options.httpStatus ? { httpStatus: options.httpStatus } : {}),
        // The worker reads extra.retryAfterMs as the floor of a job's retry delay.
        ...(options.retryAfterMs === undefined ? {} : { retryAfterMs: options.retryAfterMs }),
      },
    });
    this.kind = kind;
    this.provider = provider;
    this.httpStatus = options.httpStatus;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** What polling an async call answers. */
export type PollResult =
  | { status: "pending" }
  | { status: "succeeded"; result: ProviderResult }
  | { status: "failed"; error: ProviderCallError };

interface PaidProviderBase extends ImageProvider {
  readonly billing: "paid";
  readonly limits: ProviderLimits;
}

/** One request returns the image (OpenAI images, remove.bg, Photoroom). `run` is the call. */
export interface SyncPaidProvider extends PaidProviderBase {
  readonly mode: "sync";
  run(request: ProviderRequest, context: PaidCallContext): Promise<ProviderResult>;
}

/**
 * Submit returns the provider's id at once; the image comes from polling (or a webhook).
 * The ledger stores `externalId` the moment `submit` returns, so a retried job resumes polling
 * instead of paying again. `run` is submit + poll to the end, for callers without a ledger.
 */
export interface AsyncPaidProvider extends PaidProviderBase {
  readonly mode: "async";
  submit(request: ProviderRequest, context: PaidCallContext): Promise<{ externalId: string }>;
  poll(externalId: string, context: CallContext): Promise<PollResult>;
}

export type PaidProvider = SyncPaidProvider | AsyncPaidProvider;

export function isPaidProvider(provider: ImageProvider): provider is PaidProvider {
  return (provider as Partial<PaidProvider>).billing === "paid";
}
