/**
 * Wake-ups of async calls in this process: a provider's callback (POST /webhooks/providers/…)
 * cuts the poll pause of the worker polling that ledger row short, so a finished prediction is
 * picked up at once instead of at the next poll interval. A wake-up that arrives while no pause
 * is waiting (the worker is mid-poll) is remembered, so the next pause returns at once.
 *
 * Per process: a callback received by another process (`serve --no-worker` beside `worker`)
 * reaches a running job only at its next poll; a job waiting between attempts is woken through
 * the database (`wakeJob`) wherever it runs.
 */
export interface CallWakeups {
  /** A callback arrived for this ledger row. */
  wake(callId: string): void;
  /** Waits `ms`, or until `callId` is woken, or the signal aborts; never rejects. */
  pause(callId: string, ms: number, signal: AbortSignal): Promise<void>;
}

/** How long an unclaimed wake-up is remembered (a call polled by no one here is forgotten). */
const REMEMBER_MS = 10 * 60_000;
/** Bound on remembered wake-ups: callbacks for calls polled elsewhere must not grow memory. */
const MAX_REMEMBERED = 10_000;

export function createCallWakeups(): CallWakeups {
  const waiting = new Map<string, Set<() => void>>();
  const remembered = new Map<string, number>();

  const forgetOld = (now: number) => {
    for (const [callId, at] of remembered) {
      if (now - at <= REMEMBER_MS && remembered.size <= MAX_REMEMBERED) break;
      remembered.delete(callId);
    }
  };

  return {
    wake(callId) {
      const waiters = waiting.get(callId);
      if (waiters && waiters.size > 0) {
        for (const done of [...waiters]) done();
        return;
      }
      const now = Date.now();
      remembered.delete(callId);
      remembered.set(callId, now);
      forgetOld(now);
    },
    pause(callId, ms, signal) {
      if (remembered.delete(callId) || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done, { once: true });
        let waiters = waiting.get(callId);
        if (!waiters) {
          waiters = new Set();
          waiting.set(callId, waiters);
        }
        waiters.add(done);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          const current = waiting.get(callId);
          current?.delete(done);
          if (current?.size === 0) waiting.delete(callId);
          resolve();
        }
      });
    },
  };
}
