import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRetryAfter } from "../../src/integrations/webhooks/delivery.js";
import {
  attemptsOf,
  DEFAULT_RETRY_SCHEDULE,
  nextRetryDelayMs,
  WEBHOOK_RETRY_SCHEDULE_MS,
} from "../../src/integrations/webhooks/schedule.js";

const HOUR = 3_600_000;

describe("the outbound webhook retry schedule", () => {
  it("is Svix's seven delays, more than 24 h in all, and eight attempts", () => {
    assert.deepEqual(WEBHOOK_RETRY_SCHEDULE_MS, [
      5_000,
      300_000,
      1_800_000,
      2 * HOUR,
      5 * HOUR,
      10 * HOUR,
      10 * HOUR,
    ]);
    const total = WEBHOOK_RETRY_SCHEDULE_MS.reduce((sum, delay) => sum + delay, 0);
    assert.ok(total > 24 * HOUR, `${total / HOUR} h`);
    assert.equal(attemptsOf(DEFAULT_RETRY_SCHEDULE), 8);
  });

  it("draws each delay with full jitter, within [0, the step]", () => {
    for (const [index, ceiling] of WEBHOOK_RETRY_SCHEDULE_MS.entries()) {
      const failedAttempt = index + 1;
      if (failedAttempt === WEBHOOK_RETRY_SCHEDULE_MS.length) continue; // the last has a floor
      assert.equal(
        nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE, failedAttempt, 0, () => 0),
        0,
      );
      const top = nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE, failedAttempt, 0, () => 0.999_999_9);
      assert.ok(top !== undefined && top < ceiling && top >= ceiling * 0.999, `${top}`);
      for (let draw = 0; draw < 200; draw++) {
        const delay = nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE, failedAttempt, 0);
        assert.ok(delay !== undefined && delay >= 0 && delay < ceiling, `${delay}`);
      }
    }
  });

  it("holds the last retry back until 24 h after the first attempt, whatever the jitter drew", () => {
    for (let trial = 0; trial < 200; trial++) {
      let elapsedMs = 0;
      for (let failed = 1; failed <= WEBHOOK_RETRY_SCHEDULE_MS.length; failed++) {
        const delay = nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE, failed, elapsedMs);
        assert.ok(delay !== undefined);
        elapsedMs += delay;
      }
      assert.ok(elapsedMs >= 24 * HOUR, `the last attempt came after ${elapsedMs / HOUR} h`);
      assert.ok(elapsedMs <= 24 * HOUR + 10 * HOUR, `${elapsedMs / HOUR} h`);
    }
    // A slow first day still gets a full jittered last step, never a negative one.
    const late = nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE, 7, 30 * HOUR, () => 0.5);
    assert.equal(late, 5 * HOUR);
  });

  it("ends after the last step", () => {
    assert.equal(nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE, 8, 0), undefined);
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    assert.equal(parseRetryAfter("120"), 120_000);
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter("soon"), undefined);
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const parsed = parseRetryAfter(inAMinute);
    assert.ok(parsed !== undefined && parsed > 55_000 && parsed <= 60_000, `${parsed}`);
  });
});
