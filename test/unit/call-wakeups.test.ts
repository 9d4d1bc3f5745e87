import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCallWakeups } from "../../src/queue/call-wakeups.js";

const HOUR_MS = 3_600_000;

describe("call wake-ups (a provider's callback cuts a poll pause short)", () => {
  it("ends a pause of the woken call, and only that one", { timeout: 10_000 }, async () => {
    const wakeups = createCallWakeups();
    const stop = new AbortController();
    let otherEnded = false;
    const woken = wakeups.pause("call-a", HOUR_MS, new AbortController().signal);
    const other = wakeups.pause("call-b", HOUR_MS, stop.signal).then(() => {
      otherEnded = true;
    });
    wakeups.wake("call-a");
    await woken;
    assert.equal(otherEnded, false, "another call's pause went on");
    stop.abort();
    await other;
  });

  it("remembers a wake-up that came while no pause waited, for the next pause only", {
    timeout: 10_000,
  }, async () => {
    const wakeups = createCallWakeups();
    wakeups.wake("call-c");
    await wakeups.pause("call-c", HOUR_MS, new AbortController().signal);
    const stop = new AbortController();
    let ended = false;
    const second = wakeups.pause("call-c", HOUR_MS, stop.signal).then(() => {
      ended = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ended, false, "the remembered wake-up was used up by the first pause");
    stop.abort();
    await second;
  });

  it("ends a pause at its time when no callback comes", { timeout: 10_000 }, async () => {
    const wakeups = createCallWakeups();
    await wakeups.pause("call-d", 10, new AbortController().signal);
  });
});
