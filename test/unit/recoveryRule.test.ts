import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../../src/lib/clock.ts";
import { DEFAULT_RECOVERY, isStable, waveSize } from "../../src/backpressure/recoveryRule.ts";

describe("recovery rules (fake clock)", () => {
  it("waits for the whole stabilisation window of continuous health", () => {
    const clock = new FakeClock(100_000);
    const since = clock.now();
    assert.equal(isStable({ state: "healthy", since }, clock.now(), 10_000), false);
    clock.advance(9_999);
    assert.equal(isStable({ state: "healthy", since }, clock.now(), 10_000), false);
    clock.advance(1);
    assert.equal(isStable({ state: "healthy", since }, clock.now(), 10_000), true);
    assert.equal(isStable({ state: "degraded", since: 0 }, clock.now(), 10_000), false);
    assert.equal(isStable(null, clock.now(), 10_000), false, "a missing signal is not healthy");
  });

  it("paces waves at the configured rate and never above the wave size", () => {
    const o = { ...DEFAULT_RECOVERY, ratePerSec: 10, maxWave: 25 };
    const clock = new FakeClock(0);
    assert.equal(waveSize(undefined, clock.now(), o), 10, "a first wave of one second's worth");
    clock.advance(500);
    assert.equal(waveSize(0, clock.now(), o), 5);
    clock.advance(60_000);
    assert.equal(waveSize(0, clock.now(), o), 25, "idle time is not banked past one wave");
  });
});
