import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { batchPauseMs, DEFAULT_BATCH_YIELD as O } from "../../src/runtime/batchYield.ts";

/** When Class C waits for a late exec loop (pure: lag, time waited, time left, jitter in). */
describe("batch yield rule", () => {
  it("never pauses while the loop keeps time, or when turned off", () => {
    assert.equal(batchPauseMs(O.targetLagMs, 0, 60_000, O, 0.5), 0);
    assert.equal(batchPauseMs(10, 0, 60_000, O, 0.5), 0);
    assert.equal(batchPauseMs(500, 0, 60_000, { ...O, targetLagMs: 0 }, 0.5), 0, "targetLagMs 0 turns it off");
  });

  it("pauses for the lag over target, spread by jitter over its second half, at most maxPauseMs", () => {
    assert.equal(batchPauseMs(125, 0, 60_000, O, 0), 50, "half of 100 ms over target with jitter 0");
    assert.equal(batchPauseMs(125, 0, 60_000, O, 0.999), 100);
    assert.equal(batchPauseMs(5_000, 0, 60_000, O, 0.999), O.maxPauseMs, "a very late loop: the longest single pause");
  });

  it("never waits more than maxWaitMs per call, nor past half of what is left before the deadline", () => {
    assert.equal(batchPauseMs(5_000, O.maxWaitMs - 30, 60_000, O, 0.999), 30, "only the rest of the call's wait");
    assert.equal(batchPauseMs(5_000, O.maxWaitMs, 60_000, O, 0.999), 0, "then it goes ahead");
    assert.equal(batchPauseMs(5_000, 0, 80, O, 0.999), 40, "half of the 80 ms left");
    assert.equal(batchPauseMs(5_000, 0, 0, O, 0.999), 0, "nothing left: no pause");
  });
});
