import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../../src/lib/clock.ts";
import { mayAcquire, ParallelismHint, waitBound } from "../../src/runtime/gateRule.ts";

// The table of who may take a permit and whom a release wakes, checked against the scripts too, is
// test/conformance/gate.cases.ts (test/conformance/gate.test.ts).
describe("tool gate rules", () => {
  const s = { mctc: 4, mctcBatch: 2, held: 2, heldC: 0, waitingAB: 0 };

  it("lets callers in FIFO order while permits are free", () => {
    assert.equal(mayAcquire(s, false, 0), true);
    assert.equal(mayAcquire(s, false, 1), true);
    assert.equal(mayAcquire(s, false, 2), false, "third in line waits: only 2 permits are free");
  });

  it("holds Class C to mctcBatch and behind waiting A/B callers", () => {
    assert.equal(mayAcquire({ ...s, heldC: 2 }, true, 0), false, "batch ceiling reached");
    assert.equal(mayAcquire({ ...s, waitingAB: 1 }, true, 0), false, "an A/B caller waits");
    assert.equal(mayAcquire(s, true, 1), true);
  });

  it("bounds a wait by the tool wait timeout, or by the deadline when it comes first", () => {
    const clock = new FakeClock(1_000);
    assert.deepEqual(waitBound(clock.now(), null, 5_000), { until: 6_000, byDeadline: false });
    assert.deepEqual(waitBound(clock.now(), 3_000, 5_000), { until: 3_000, byDeadline: true });
    assert.deepEqual(waitBound(clock.now(), 9_000, 5_000), { until: 6_000, byDeadline: false });
  });

  it("drops the parallelism hint to sequential after THROTTLED and recovers as calls pass", () => {
    const h = new ParallelismHint(8);
    assert.equal(h.value, 8);
    h.throttled();
    assert.equal(h.value, 1);
    h.passed();
    h.passed();
    assert.equal(h.value, 4);
    h.passed();
    h.passed();
    assert.equal(h.value, 8, "never above the maximum");
  });
});
