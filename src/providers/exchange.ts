import { failureFromResponse, type HttpAnswer, type HttpFailureRefinement } from "./paid-call.js";
import {
  type AsyncPaidProvider,
  type CallContext,
  type PaidCallContext,
  ProviderCallError,
  type ProviderRequest,
  type ProviderResult,
} from "./provider.js";

/**
 * One HTTP exchange per adapter call, whatever the SDK would do.
 *
 * The official SDKs retry on their own (replicate 1.x: up to 5 repeats on 429, and on 5xx for
 * GETs; @fal-ai/client 1.x: 3–5 repeats with 1–60 s backoff, hard-coded per queue operation so
 * the client's `retry` option cannot lower it). Retries, backoff and the breaker belong to the
 * resilience layer that wraps the adapters, which must see every failure once. So each call
 * gives the SDK a fetch that goes to the network at most once: a 2xx answer is handed to the SDK
 * as usual; any other answer or transport error is held here and the SDK gets `ExchangeHeld`,
 * which neither SDK retries with a delay (fal treats it as non-retryable; replicate repeats the
 * call at once, and the repeat is refused here without touching the network). The adapter then
 * maps the held answer, not the SDK's wrapping of it.
 */
export class ExchangeHeld extends Error {
  constructor() {
    super("the HTTP exchange is held for the adapter to map");
    this.name = "ExchangeHeld";
  }
}

export type HeldFailure = { response: HttpAnswer } | { error: unknown };

export interface CallDeadline {
  /** Aborts when the caller aborts or `timeoutMs` passes. */
  signal: AbortSignal;
  timedOut(): boolean;
  /** A fetch that reaches the network once for this call (see above). */
  fetch: typeof fetch;
  /** Network exchanges made so far. */
  exchanges(): number;
  /** What went wrong on the wire, once an SDK call has failed. */
  held(): HeldFailure | undefined;
}

/**
 * Runs one adapter call under the caller's signal and a per-call timeout. The signal is our own
 * controller fed by a listener, not `AbortSignal.any`: on Node 20 a composed signal is only
 * weakly held and can be collected before it fires.
 */
export async function withDeadline<T>(
  context: CallContext,
  timeoutMs: number,
  baseFetch: typeof fetch,
  work: (deadline: CallDeadline) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError"));
  }, timeoutMs);
  const forward = () => abort.abort(context.signal.reason);
  if (context.signal.aborted) forward();
  else context.signal.addEventListener("abort", forward, { once: true });
  let exchanges = 0;
  let held: HeldFailure | undefined;
  const singleFetch: typeof fetch = async (input, init) => {
    if (exchanges > 0) throw new ExchangeHeld();
    exchanges++;
    let response: Response;
    let body: Buffer;
    try {
      response = await baseFetch(input, { ...init, signal: abort.signal });
      body = Buffer.from(await response.arrayBuffer());
    } catch (error) {
      held = { error };
      throw new ExchangeHeld();
    }
    if (response.status >= 200 && response.status < 300) {
      return new Response(body.length > 0 ? new Uint8Array(body) : null, {
        status: response.status,
        headers: response.headers,
      });
    }
    held = { response: { status: response.status, headers: response.headers, body } };
    throw new ExchangeHeld();
  };
  try {
    return await work({
      signal: abort.signal,
      timedOut: () => timedOut,
      fetch: singleFetch,
      exchanges: () => exchanges,
      held: () => held,
    });
  } finally {
    clearTimeout(timer);
    context.signal.removeEventListener("abort", forward);
  }
}

/**
 * The failure of an SDK call made under `deadline`: the held wire answer when there is one, a
 * timeout when ours fired, the caller's own abort reason when the caller aborted, and a
 * connection failure (unavailable) otherwise. `sdkError` is kept as the cause.
 */
export function failureOfCall(
  provider: string,
  deadline: CallDeadline,
  context: CallContext,
  sdkError: unknown,
  refine?: (response: HttpAnswer, json: unknown) => HttpFailureRefinement | undefined,
): unknown {
  if (sdkError instanceof ProviderCallError) return sdkError;
  const held = deadline.held();
  if (held && "response" in held) return failureFromResponse(provider, held.response, refine);
  if (deadline.timedOut()) {
    return new ProviderCallError(provider, "timeout", "no answer before the call's timeout", {
      cause: sdkError,
    });
  }
  if (context.signal.aborted) return context.signal.reason ?? sdkError;
  if (held && "error" in held) {
    const transport = held.error;
    return new ProviderCallError(
      provider,
      "unavailable",
      `connection failed: ${transport instanceof Error ? transport.message : String(transport)}`,
      { cause: transport },
    );
  }
  const message = sdkError instanceof Error ? sdkError.message : String(sdkError);
  // The SDK failed on its own: before the wire it refused our request; after a 2xx it could not
  // read the answer (a proxy's page where JSON was due).
  return deadline.exchanges() === 0
    ? new ProviderCallError(provider, "invalid_request", `request refused: ${message}`, {
        cause: sdkError,
      })
    : new ProviderCallError(provider, "bad_output", `answer unreadable: ${message}`, {
        cause: sdkError,
      });
}

/**
 * A poll whose answer cannot be read (a proxy's or portal's page where JSON was due) says nothing
 * about the job, and polling again is free: it is `unavailable` (retryable), where the same answer
 * to a paid submit stays `bad_output`.
 */
export function asPollFailure(provider: string, error: unknown): unknown {
  if (error instanceof ProviderCallError && error.kind === "bad_output") {
    return new ProviderCallError(
      provider,
      "unavailable",
      `the status answer was unreadable, the job's state is unknown: ${error.message}`,
      { ...(error.httpStatus === undefined ? {} : { httpStatus: error.httpStatus }), cause: error },
    );
  }
  return error;
}

/** Waits `ms` between polls of `run()`, ending early (rejecting) when the caller aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * `run()` of an async adapter, for callers without a ledger: submit (the recipe hash as the call
 * id when the caller has none), then poll to the end, pausing between polls.
 */
export async function runToEnd(
  provider: Pick<AsyncPaidProvider, "submit" | "poll">,
  request: ProviderRequest,
  context: CallContext,
  pollIntervalMs: number,
): Promise<ProviderResult> {
  const callId = (context as Partial<PaidCallContext>).callId ?? request.recipeHash;
  const { externalId } = await provider.submit(request, { ...context, callId });
  for (;;) {
    const polled = await provider.poll(externalId, context);
    if (polled.status === "succeeded") return polled.result;
    if (polled.status === "failed") throw polled.error;
    await pause(pollIntervalMs, context.signal);
  }
}
