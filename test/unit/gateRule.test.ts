import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../../src/lib/clock.ts";
import { eligibleWaiters, mayAcquire, ParallelismHint, waitBound } from "../../src/runtime/gateRule.ts";
import { GATE_CASES } from "../helpers/gateCases.ts";

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

  for (const c of GATE_CASES) {
    it(`shared case: ${c.name}`, () => {
      for (const m of c.may) assert.equal(mayAcquire(c.state, m.batch, m.position), m.expected, JSON.stringify(m));
      assert.deepEqual(eligibleWaiters(c.state), c.wakes);
    });
  }

  it("wakes exactly the waiters that may go, no one else", () => {
    for (const c of GATE_CASES) {
      const { ab, c: cw } = eligibleWaiters(c.state);
      for (let p = 0; p < c.state.waitingAB; p++) assert.equal(p < ab, mayAcquire(c.state, false, p), `${c.name}: A/B waiter ${p}`);
      for (let p = 0; p < c.state.waitingC; p++) assert.equal(p < cw, mayAcquire(c.state, true, p), `${c.name}: C waiter ${p}`);
    }
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
