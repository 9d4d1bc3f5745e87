import {
  BrokenCircuitError,
  type BulkheadPolicy,
  bulkhead,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  DelegateBackoff,
  handleWhen,
  type IRetryBackoffContext,
  type RetryPolicy,
  retry,
} from "cockatiel";
import type { ProviderPolicy, ShotListConfig } from "../domain/shotlist.js";
import { ProviderCallError } from "../providers/provider.js";
import { fullJitterDelayMs } from "./backoff.js";

export { BrokenCircuitError, CircuitState };

/**
 * The resilience of one paid provider in this process (cockatiel): retry with exponential
 * backoff and full jitter that honours Retry-After, a circuit breaker, a bulkhead. The timeout
 * and the daily budget are applied per call by paid-call.ts (the budget lives in the ledger, so
 * it holds across processes; breaker and bulkhead are per process).
 */
export interface ProviderResilience {
  policy: ProviderPolicy;
  retry: RetryPolicy;
  breaker: CircuitBreakerPolicy;
  bulkhead: BulkheadPolicy;
}

/** Refused without billing and worth another go soon: 429 and 5xx/connection failures. */
function retriedInline(error: Error, policy: ProviderPolicy): boolean {
  return (
    error instanceof ProviderCallError &&
    (error.kind === "rate_limited" || error.kind === "unavailable") &&
    (error.retryAfterMs ?? 0) <= policy.maxInlineWaitMs
  );
}

/** What counts against the breaker: the provider failing, not the caller's request or a 429. */
function breakerFailure(error: Error): boolean {
  return (
    error instanceof ProviderCallError && (error.kind === "unavailable" || error.kind === "timeout")
  );
}

export function createProviderResilience(
  policy: ProviderPolicy,
  random: () => number = Math.random,
): ProviderResilience {
  const backoff = new DelegateBackoff<IRetryBackoffContext<unknown>>((context) => {
    const jitter = fullJitterDelayMs(
      context.attempt,
      policy.retryBaseMs,
      policy.retryCapMs,
      random,
    );
    const error = "error" in context.result ? context.result.error : undefined;
    // RFC 9110 §10.2.3: Retry-After is the least the server asks us to wait.
    const hinted = error instanceof ProviderCallError ? (error.retryAfterMs ?? 0) : 0;
    return Math.max(jitter, hinted);
  });
  return {
    policy,
    retry: retry(
      handleWhen((error) => retriedInline(error, policy)),
      { maxAttempts: policy.retries, backoff },
    ),
    breaker: circuitBreaker(handleWhen(breakerFailure), {
      halfOpenAfter: policy.breaker.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(policy.breaker.failures),
    }),
    // Calls past the limit queue (a job waits for a slot) rather than fail.
    bulkhead: bulkhead(policy.concurrency, Number.MAX_SAFE_INTEGER),
  };
}

/** One resilience set per configured provider, made once per process. */
export function createProviderResiliences(
  shotList: ShotListConfig,
): Map<string, ProviderResilience> {
  const byName = new Map<string, ProviderResilience>();
  for (const config of shotList.providers.values()) {
    byName.set(config.name, createProviderResilience(config.policy));
  }
  return byName;
}
