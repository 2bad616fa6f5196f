import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_PREFETCH, PrefetchEstimator } from "../../src/dispatch/policy/prefetch.ts";

/**
 * A pool of `capacity` slots whose runs end at `perSecond`, seen by a dispatcher that calls every
 * `everyMs` and refills what ended: the calls' (used after, moved) as the script returns them.
 */
function steady(e: PrefetchEstimator, o: { capacity: number; perSecond: number; everyMs: number; forMs: number; from?: number }): number {
  let now = o.from ?? 0;
  let used = o.capacity;
  let owed = 0;
  for (const end = now + o.forMs; now < end; now += o.everyMs) {
    owed += (o.perSecond * o.everyMs) / 1000;
    const ended = Math.floor(owed);
    owed -= ended;
    used -= ended;
    e.observe(now, { used: used + ended, moved: ended, capacity: o.capacity }); // it refilled what ended
    used += ended;
  }
  return now;
}

describe("prefetch: the pool's dispatch delay times its release rate (src/dispatch/policy/prefetch.ts)", () => {
  it("is the release rate times the delay once the rate settles: 3,000 ends/s over 30 ms is 90", () => {
    const e = new PrefetchEstimator({ ...DEFAULT_PREFETCH, delayMs: 30 });
    steady(e, { capacity: 200, perSecond: 3_000, everyMs: 10, forMs: 10_000 });
    assert.ok(Math.abs(e.perSecond - 3_000) < 30, `${e.perSecond}/s`);
    assert.ok([89, 90].includes(e.value()), `${e.value()}`); // the smoothed rate nears 3/ms from below
  });

  it("is never more than the capacity", () => {
    const e = new PrefetchEstimator();
    steady(e, { capacity: 100, perSecond: 10_000, everyMs: 5, forMs: 10_000 });
    assert.equal(e.value(), 100);
  });

  it("is 0 while runs end less often than once per delay (long runs keep the pool exact)", () => {
    const e = new PrefetchEstimator({ ...DEFAULT_PREFETCH, delayMs: 30 });
    steady(e, { capacity: 100, perSecond: 30, everyMs: 50, forMs: 20_000 });
    assert.equal(e.value(), 0);
    steady(e, { capacity: 100, perSecond: 100, everyMs: 50, forMs: 20_000, from: 20_000 });
    assert.ok([2, 3].includes(e.value()), `${e.value()}`);
  });

  it("falls back to 0 within seconds once runs stop ending, and is 0 before any call or without workers", () => {
    const e = new PrefetchEstimator();
    assert.equal(e.value(), 0);
    const at = steady(e, { capacity: 100, perSecond: 2_000, everyMs: 10, forMs: 5_000 });
    assert.ok(e.value() > 50);
    e.observe(at, { used: 0, moved: 0, capacity: 0 }); // its workers are gone
    assert.equal(e.value(), 0);
    for (let now = at + 500; now < at + 6_000; now += 500) e.observe(now, { used: 100, moved: 0, capacity: 100 });
    assert.equal(e.value(), 0);
  });

  it("counts calls at one instant with the next interval, and never reads another dispatcher's moves as releases", () => {
    const e = new PrefetchEstimator({ ...DEFAULT_PREFETCH, tauMs: 1 });
    const call = (now: number, used: number, moved: number) => e.observe(now, { used, moved, capacity: 10 });
    call(0, 10, 0);
    call(10, 4, 0); // 6 ended
    call(10, 8, 4); // the same instant: 0 more ended, this call moved 4
    call(20, 8, 0); // 0 ended in the next 10 ms... but 6 over the 10 before were seen
    assert.ok(e.perSecond < 50, `${e.perSecond}/s: the interval [10, 20) had no release`);
    call(30, 20, 0); // another dispatcher moved 12: used rose, nothing ended
    assert.ok(e.perSecond < 0.01, `${e.perSecond}/s`);
  });

  it("is 0 when the delay is 0 (FAIRLANE_PREFETCH_MS=0)", () => {
    const e = new PrefetchEstimator({ ...DEFAULT_PREFETCH, delayMs: 0 });
    steady(e, { capacity: 100, perSecond: 5_000, everyMs: 10, forMs: 5_000 });
    assert.equal(e.value(), 0);
  });
});
