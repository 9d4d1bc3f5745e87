import { TaskCancelledError, TimeoutStrategy, timeout } from "cockatiel";
import type { Logger } from "pino";
import sharp from "sharp";
import type { BlobStore } from "../blobs/store.js";
import { assetKey, callReceiptKey } from "../blobs/store.js";
import { sha256Hex } from "../domain/canonical.js";
import { errorMessage, ShotlistError } from "../domain/errors.js";
import type { OutputFormat } from "../domain/recipe.js";
import type { ProviderPolicy } from "../domain/shotlist.js";
import {
  type AsyncPaidProvider,
  type PaidProvider,
  ProviderCallError,
  type ProviderRequest,
  type ProviderResult,
} from "../providers/provider.js";
import type { Db, Queryable } from "../store/db.js";
import {
  type CallEnding,
  expirePendingCalls,
  findReusableCalls,
  finishCall,
  markSubmitted,
  msUntilNextUtcDay,
  openCall,
  type ProviderCallRow,
  pendingCallsOfJob,
} from "../store/provider-calls.js";
import { fullJitterDelayMs } from "./backoff.js";
import type { CallWakeups } from "./call-wakeups.js";
import {
  BrokenCircuitError,
  createProviderResilience,
  type ProviderResilience,
} from "./provider-policy.js";

/** A pending sync row's holder gets its timeout plus this before others may call it in doubt. */
const HOLD_GRACE_MS = 5_000;

/**
 * How long a worker keeps trying to close the ledger row of an answered call while the database
 * is unreachable (backoff with full jitter, 100 ms to 2 s), unless its job's lease is lost
 * first. Past it the row is left to a retry, which adopts the output through its receipt.
 */
const CLOSE_RETRY_MS = 120_000;

const FORMAT_OF_EXT: Readonly<Record<string, OutputFormat>> = {
  jpg: "jpeg",
  png: "png",
  webp: "webp",
  avif: "avif",
};
const EXT_OF_FORMAT: Readonly<Record<OutputFormat, string>> = {
  jpeg: "jpg",
  png: "png",
  webp: "webp",
  avif: "avif",
};

export interface PaidCallDeps {
  db: Db;
  blobs: BlobStore;
  /** Per provider name; a provider without one gets the default policy. */
  resilience: Map<string, ProviderResilience>;
  log?: Logger;
  /** Providers' callbacks cut an async call's poll pause short (POST /webhooks/providers/…). */
  callWakeups?: CallWakeups;
  /** How long to keep retrying to close an answered call's row; default 120 s. */
  closeRetryMs?: number;
}

export interface PaidCallResult {
  result: ProviderResult;
  /** The ledger row whose output this is. */
  callId: string;
  /** True when a previous call's output was reused: nothing was paid now. */
  reused: boolean;
}

/**
 * The paid-call path (DESIGN §6): reuse a finished call's output → resume an async call whose
 * external id is known → otherwise, through retry → circuit breaker → bulkhead: budget check and
 * ledger row (committed) → the call under a timeout → the row's ending → the output in the blob
 * store. A provider never sees the database; this module is the only one that talks to both.
 *
 * Throws: ProviderCallError (the provider's failure; `timeout` = a sync call whose outcome is
 * unknown, recorded in doubt), ShotlistError `budget_exhausted` (extra.onBudget, retryAfterMs),
 * `circuit_open`, `provider_call_in_progress` (another worker holds this recipe's call until
 * its deadline; extra.retryAfterMs), or a retryable `provider_error` (an async job still
 * running, or its polls failing: the next attempt resumes polling).
 */
export async function runPaidCall(
  deps: PaidCallDeps,
  provider: PaidProvider,
  request: ProviderRequest,
  context: { jobId: number | null; signal: AbortSignal },
): Promise<PaidCallResult> {
  let resilience = deps.resilience.get(provider.name);
  if (!resilience) {
    resilience = createProviderResilience(DEFAULT_POLICY);
    deps.resilience.set(provider.name, resilience);
  }
  const { policy } = resilience;
  const hash = request.recipeHash;

  const reusable = await findReusableCalls(deps.db, hash);
  // A call answered while the database was down (or just before its worker died) left a
  // receipt beside its output: adopt it rather than pay again.
  // (Unsettled rows come newest first, so the first adopted is the newest.)
  const finished =
    reusable.succeeded ??
    (reusable.unsettled.length > 0
      ? (await adoptReceipts(deps, reusable.unsettled))[0]
      : undefined);
  if (finished) {
    const reused = await reuseOutput(deps, provider, finished);
    if (reused) return reused;
  }
  await expirePendingCalls(deps.db, hash);

  const attempt = async (): Promise<PaidCallResult> => {
    const opened = await openCall(deps.db, {
      recipeHash: hash,
      provider: provider.name,
      model: request.recipe.model,
      jobId: context.jobId,
      estimatedCostMicros: provider.estimateCostMicros(request),
      holdMs: policy.timeoutMs + HOLD_GRACE_MS,
      dailyBudgetMicros: policy.dailyBudgetMicros,
    });
    if (opened.kind === "budget") {
      const retryAfterMs = policy.budgetRetryMs ?? msUntilNextUtcDay();
      throw new ShotlistError(
        "budget_exhausted",
        `${provider.name}: daily budget reached (${opened.spentMicros} of ${opened.budgetMicros} micros spent today, UTC)`,
        {
          status: 429,
          extra: { provider: provider.name, onBudget: policy.onBudget, retryAfterMs },
        },
      );
    }
    if (opened.kind === "open_exists") {
      if (opened.call.state === "submitted" && provider.mode === "async") {
        return pollToEnd(deps, provider, policy, opened.call, context.signal);
      }
      const waitMs = Math.max(0, new Date(opened.call.deadline_at).getTime() - Date.now());
      throw new ShotlistError(
        "provider_call_in_progress",
        `${provider.name}: call ${opened.call.id} of this recipe is already under way`,
        { status: 409, retryable: true, extra: { retryAfterMs: waitMs + 100 } },
      );
    }
    const call = opened.call;
    if (provider.mode === "sync") {
      const result = await callOnce(deps, call, policy, context.signal, (signal) =>
        provider.run(request, { callId: call.id, signal }),
      );
      return {
        result: await keepOutput(deps, call, result, context.signal),
        callId: call.id,
        reused: false,
      };
    }
    const { externalId } = await callOnce(deps, call, policy, context.signal, (signal) =>
      provider.submit(request, { callId: call.id, signal }),
    );
    await markSubmitted(deps.db, call.id, externalId);
    return pollToEnd(
      deps,
      provider,
      policy,
      { ...call, state: "submitted", external_id: externalId },
      context.signal,
    );
  };

  // A call whose external id is known is resumed whatever the breaker says: polling is free.
  const [open] = await deps.db.query<ProviderCallRow>(
    "select * from provider_calls where recipe_hash = $1 and state = 'submitted'",
    [hash],
  );
  if (open && provider.mode === "async") {
    return pollToEnd(deps, provider, policy, open, context.signal);
  }
  try {
    return await resilience.retry.execute(
      () => resilience.breaker.execute(() => resilience.bulkhead.execute(attempt)),
      context.signal,
    );
  } catch (error) {
    if (error instanceof BrokenCircuitError) {
      throw new ShotlistError(
        "circuit_open",
        `${provider.name}: circuit open after ${policy.breaker.failures} consecutive failures; no call made`,
        { status: 503, extra: { provider: provider.name } },
      );
    }
    throw error;
  }
}

/**
 * One exchange under the provider's timeout. Whatever ends it, the ledger row learns how: an
 * error answer is `failed` (not billed), an unusable 200 answer is `succeeded` without output
 * (billed), and no answer at all is `in_doubt` (perhaps billed: counted as spent).
 */
async function callOnce<T>(
  deps: PaidCallDeps,
  call: ProviderCallRow,
  policy: ProviderPolicy,
  signal: AbortSignal,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  try {
    return await timeout(policy.timeoutMs, TimeoutStrategy.Aggressive).execute(
      (_context, inner) => work(inner),
      signal,
    );
  } catch (error) {
    if (error instanceof ProviderCallError && error.kind === "bad_output") {
      await closeBilledWithoutOutput(deps, call, signal, error);
      throw error;
    }
    if (error instanceof ProviderCallError && error.httpStatus !== undefined) {
      await recordEnding(deps, call, signal, { state: "failed", error: errorMessage(error) });
      throw error;
    }
    if (error instanceof ProviderCallError && error.kind === "unavailable") {
      // Refused: the provider never saw the request. Reset or dropped: it may have.
      const state = refusedConnection(error) ? "failed" : "in_doubt";
      await recordEnding(deps, call, signal, { state, error: errorMessage(error) });
      throw error;
    }
    const timedOut = error instanceof TaskCancelledError && !signal.aborted;
    const reason = timedOut
      ? `no answer within ${policy.timeoutMs} ms; outcome unknown`
      : `the call was abandoned (${errorMessage(error)}); outcome unknown`;
    await recordEnding(deps, call, signal, { state: "in_doubt", error: reason });
    if (timedOut) {
      throw new ProviderCallError(call.provider, "timeout", reason, { cause: error });
    }
    throw error;
  }
}

/**
 * Copies a succeeded call's bytes into the blob store (provider outputs expire), then its
 * receipt, then closes the row.
 */
async function keepOutput(
  deps: PaidCallDeps,
  call: ProviderCallRow,
  result: ProviderResult,
  signal: AbortSignal,
): Promise<ProviderResult> {
  const sha256 = sha256Hex(result.bytes);
  const ext = EXT_OF_FORMAT[result.format];
  await deps.blobs.put(assetKey(sha256, ext), result.bytes);
  await closeSucceeded(deps, call, signal, {
    state: "succeeded",
    costMicros: result.costMicros,
    outputSha256: sha256,
    outputExt: ext,
  });
  return result;
}

/** What a receipt holds: the ending of a call the provider answered (and billed). */
interface CallReceipt {
  callId: string;
  recipeHash: string;
  provider: string;
  costMicros: number;
  outputSha256: string | null;
  outputExt: string | null;
  error: string | null;
}

/**
 * A billed call's ending, made durable outside the database first (the blob store), then
 * recorded on its row. A row that cannot be closed (the database is down, the worker dies
 * next) is adopted from the receipt by the next attempt at the recipe or by the end of its job,
 * so an output that was stored is never paid for again.
 */
/** A billed answer whose image is unusable: the call succeeded (and is paid), with no output. */
function closeBilledWithoutOutput(
  deps: PaidCallDeps,
  call: ProviderCallRow,
  signal: AbortSignal,
  error: ProviderCallError,
): Promise<void> {
  return closeSucceeded(deps, call, signal, {
    state: "succeeded",
    costMicros: call.estimated_cost_micros,
    outputSha256: null,
    outputExt: null,
    error: errorMessage(error),
  });
}

async function closeSucceeded(
  deps: PaidCallDeps,
  call: ProviderCallRow,
  signal: AbortSignal,
  ending: Extract<CallEnding, { state: "succeeded" }>,
): Promise<void> {
  const receipt: CallReceipt = {
    callId: call.id,
    recipeHash: call.recipe_hash,
    provider: call.provider,
    costMicros: ending.costMicros,
    outputSha256: ending.outputSha256,
    outputExt: ending.outputExt,
    error: ending.error ?? null,
  };
  await deps.blobs.put(callReceiptKey(call.id), Buffer.from(JSON.stringify(receipt)));
  await recordEnding(deps, call, signal, ending);
}

/**
 * Closes a row, retrying while the database is unreachable: a paid call's answer is worth
 * recording, and giving up here would turn the row in doubt and the next attempt would pay
 * again. Stops when the job's lease is lost (signal) or after `closeRetryMs`.
 */
async function recordEnding(
  deps: PaidCallDeps,
  call: ProviderCallRow,
  signal: AbortSignal,
  ending: CallEnding,
): Promise<void> {
  const giveUpAt = Date.now() + (deps.closeRetryMs ?? CLOSE_RETRY_MS);
  for (let attempt = 1; ; attempt++) {
    try {
      await finishCall(deps.db, call.id, ending);
      if (attempt > 1) {
        deps.log?.info(
          { callId: call.id, attempt },
          "ledger row closed after the database came back",
        );
      }
      return;
    } catch (error) {
      const delayMs = fullJitterDelayMs(attempt, 100, 2_000);
      if (signal.aborted || Date.now() + delayMs > giveUpAt) throw error;
      deps.log?.warn(
        { err: error, callId: call.id, state: ending.state, attempt },
        "could not close the ledger row of an answered call; retrying",
      );
      await sleep(delayMs, signal);
    }
  }
}

/** A call's receipt, or undefined when it has none (or an unreadable one). */
async function readReceipt(
  deps: Pick<PaidCallDeps, "blobs" | "log">,
  call: ProviderCallRow,
): Promise<CallReceipt | undefined> {
  const bytes = await deps.blobs.get(callReceiptKey(call.id));
  if (!bytes) return undefined;
  try {
    const receipt = JSON.parse(bytes.toString("utf8")) as Partial<CallReceipt>;
    const shaOk = receipt.outputSha256 === null || typeof receipt.outputSha256 === "string";
    const extOk = receipt.outputExt === null || typeof receipt.outputExt === "string";
    if (receipt.callId === call.id && typeof receipt.costMicros === "number" && shaOk && extOk) {
      return receipt as CallReceipt;
    }
  } catch {
    // Fall through: a receipt that does not parse proves nothing.
  }
  deps.log?.warn({ callId: call.id }, "unreadable call receipt ignored");
  return undefined;
}

/** Closes the unsettled calls that have a receipt as succeeded; returns them as now recorded. */
async function adoptReceipts(
  deps: Pick<PaidCallDeps, "blobs" | "log"> & { db: Queryable },
  calls: readonly ProviderCallRow[],
): Promise<ProviderCallRow[]> {
  const adopted: ProviderCallRow[] = [];
  for (const call of calls) {
    const receipt = await readReceipt(deps, call);
    if (!receipt) continue;
    const ending = {
      state: "succeeded",
      costMicros: receipt.costMicros,
      outputSha256: receipt.outputSha256,
      outputExt: receipt.outputExt,
      ...(receipt.error === null ? {} : { error: receipt.error }),
    } as const;
    await finishCall(deps.db, call.id, ending);
    deps.log?.info({ callId: call.id }, "adopted a stored output from its call receipt");
    adopted.push({
      ...call,
      state: "succeeded",
      cost_micros: receipt.costMicros,
      output_sha256: receipt.outputSha256,
      output_ext: receipt.outputExt,
      error: receipt.error,
    });
  }
  return adopted;
}

/**
 * Settles the calls a job leaves pending when it ends (given up, or finished by another link):
 * nobody is left to learn their outcome, so each is adopted from its receipt when it has one,
 * otherwise recorded in doubt and counted as spent. Submitted async calls stay as they are: a
 * later job of the recipe resumes polling them (free) instead of paying again.
 */
export async function settleCallsOfJob(
  db: Queryable,
  blobs: BlobStore,
  jobId: number,
  log?: Logger,
): Promise<void> {
  const pending = await pendingCallsOfJob(db, jobId);
  if (pending.length === 0) return;
  const adopted = new Set(
    (await adoptReceipts({ db, blobs, ...(log ? { log } : {}) }, pending)).map((call) => call.id),
  );
  for (const call of pending) {
    if (adopted.has(call.id)) continue;
    await finishCall(db, call.id, {
      state: "in_doubt",
      error: `outcome unknown: job ${jobId} ended while this call was pending`,
    });
  }
}

async function pollToEnd(
  deps: PaidCallDeps,
  provider: AsyncPaidProvider,
  policy: ProviderPolicy,
  call: ProviderCallRow,
  signal: AbortSignal,
): Promise<PaidCallResult> {
  const externalId = call.external_id;
  if (!externalId) throw new ShotlistError("internal", `call ${call.id} has no external id`);
  const deadline = Date.now() + policy.asyncTimeoutMs;
  let failures = 0;
  for (;;) {
    if (signal.aborted) throw signal.reason ?? new Error("aborted");
    let polled: Awaited<ReturnType<AsyncPaidProvider["poll"]>> | undefined;
    try {
      polled = await timeout(policy.timeoutMs, TimeoutStrategy.Aggressive).execute(
        (_context, inner) => provider.poll(externalId, { signal: inner }),
        signal,
      );
      failures = 0;
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof ProviderCallError && error.kind === "bad_output") {
        // The job succeeded (billed) but its output is unusable.
        await closeBilledWithoutOutput(deps, call, signal, error);
        throw error;
      }
      const retryable =
        error instanceof TaskCancelledError ||
        (error instanceof ProviderCallError && error.retryable);
      if (!retryable) {
        // The provider no longer knows the job (or refuses to say): it was accepted, so it
        // may have been billed.
        await recordEnding(deps, call, signal, { state: "in_doubt", error: errorMessage(error) });
        throw error;
      }
      failures++;
      if (failures > policy.retries) {
        throw new ShotlistError(
          "provider_error",
          `${provider.name}: polling job ${externalId} failed ${failures} times (${errorMessage(error)}); the next attempt resumes polling`,
          { status: 503, retryable: true, extra: { retryAfterMs: policy.pollIntervalMs } },
        );
      }
      deps.log?.warn({ err: error, callId: call.id }, "poll failed; polling again");
    }
    if (polled?.status === "succeeded") {
      const result = await keepOutput(deps, call, polled.result, signal);
      return { result, callId: call.id, reused: false };
    }
    if (polled?.status === "failed") {
      await recordEnding(deps, call, signal, {
        state: "failed",
        error: errorMessage(polled.error),
      });
      throw polled.error;
    }
    if (Date.now() > deadline) {
      throw new ShotlistError(
        "provider_error",
        `${provider.name}: job ${externalId} still running after ${policy.asyncTimeoutMs} ms; the next attempt resumes polling`,
        { status: 503, retryable: true, extra: { retryAfterMs: policy.pollIntervalMs } },
      );
    }
    await (deps.callWakeups
      ? deps.callWakeups.pause(call.id, policy.pollIntervalMs, signal)
      : sleep(policy.pollIntervalMs, signal));
  }
}

/** A succeeded call's output, reused by a retry of the same recipe (no new call). */
async function reuseOutput(
  deps: PaidCallDeps,
  provider: PaidProvider,
  call: ProviderCallRow,
): Promise<PaidCallResult | undefined> {
  if (!call.output_sha256 || !call.output_ext) {
    // Paid for, but unusable: the same recipe is not paid again; the chain moves on.
    throw new ProviderCallError(
      provider.name,
      "bad_output",
      `call ${call.id} of this recipe returned an unusable image: ${call.error ?? "no output"}`,
    );
  }
  const bytes = await deps.blobs.get(assetKey(call.output_sha256, call.output_ext));
  const format = FORMAT_OF_EXT[call.output_ext];
  if (!bytes || !format) {
    deps.log?.warn(
      { callId: call.id },
      "the output of a succeeded call is missing from the blob store",
    );
    return undefined;
  }
  const metadata = await sharp(bytes).metadata();
  return {
    result: {
      bytes,
      format,
      width: metadata.width ?? 0,
      height: metadata.height ?? 0,
      costMicros: call.cost_micros ?? call.estimated_cost_micros,
    },
    callId: call.id,
    reused: true,
  };
}

function refusedConnection(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as NodeJS.ErrnoException).code === "ECONNREFUSED") return true;
  }
  return false;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** The policy of a paid provider registered without configuration (the schema's defaults). */
export const DEFAULT_POLICY: ProviderPolicy = {
  timeoutMs: 60_000,
  retries: 3,
  retryBaseMs: 500,
  retryCapMs: 30_000,
  maxInlineWaitMs: 30_000,
  breaker: { failures: 5, halfOpenAfterMs: 30_000 },
  concurrency: 4,
  dailyBudgetMicros: null,
  onBudget: "wait",
  budgetRetryMs: null,
  pollIntervalMs: 1_000,
  asyncTimeoutMs: 600_000,
};
