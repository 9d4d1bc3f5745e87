/**
 * Retry delays after each failed attempt: Svix's schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
 * 10 h; 27 h 35 min 5 s in all), so a receiver that is down for a day still gets its events.
 * Eight attempts: the first, then one after each delay.
 */
export const WEBHOOK_RETRY_SCHEDULE_MS: readonly number[] = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
];

/** The shortest span from the first attempt to the last one; default 24 h. */
export const WEBHOOK_MIN_RETRY_WINDOW_MS = 24 * 3_600_000;

export interface RetrySchedule {
  delaysMs: readonly number[];
  minWindowMs: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = {
  delaysMs: WEBHOOK_RETRY_SCHEDULE_MS,
  minWindowMs: WEBHOOK_MIN_RETRY_WINDOW_MS,
};

/**
 * The delay before the next attempt after `failedAttempt` (1-based) failed, or undefined when
 * the schedule is used up. Full jitter (AWS, "Exponential Backoff and Jitter"): uniform in
 * [0, delay], so deliveries that failed together (a receiver outage) do not return in a wave.
 * Full jitter alone would end the retries after ~14 h on average, so the last retry is held
 * back until `minWindowMs` after the first attempt: retries always span at least 24 h.
 */
export function nextRetryDelayMs(
  schedule: RetrySchedule,
  failedAttempt: number,
  elapsedMs: number,
  random: () => number = Math.random,
): number | undefined {
  const ceiling = schedule.delaysMs[failedAttempt - 1];
  if (ceiling === undefined) return undefined;
  const jittered = Math.floor(random() * ceiling);
  const isLast = failedAttempt === schedule.delaysMs.length;
  return isLast ? Math.max(jittered, schedule.minWindowMs - elapsedMs) : jittered;
}

/** Attempts a delivery job gets: the first one and one after each delay. */
export const attemptsOf = (schedule: RetrySchedule) => schedule.delaysMs.length + 1;
