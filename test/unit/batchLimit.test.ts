import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { batchFloor, cellBatch, nextBatchLimit } from "../../src/exec/batchLimit.ts";

describe("batch limit (Class C backs off while the exec process's event loop lags)", () => {
  const o = { concurrency: 100, targetLagMs: 20 };

  it("a lagging loop cuts the limit by a fifth each interval, down to a tenth of the concurrency", () => {
    const seen: number[] = [];
    let limit = 100;
    for (let i = 0; i < 12; i++) seen.push((limit = nextBatchLimit(limit, 45, 100, o)));
    assert.deepEqual(seen.slice(0, 5), [80, 64, 51, 40, 32]);
    assert.equal(seen.at(-1), 10, "the floor: the batch always moves");
    assert.equal(batchFloor(100), 10);
    assert.equal(batchFloor(3), 1);
  });

  it("a quiet loop gives back 5% of the concurrency per interval while the batch uses the limit, up to all of it", () => {
    let limit = 10;
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) seen.push((limit = nextBatchLimit(limit, 3, limit, o)));
    assert.deepEqual(seen.slice(0, 3), [15, 20, 25]);
    assert.equal(seen.at(-1), 100);
  });

  it("an unused limit falls back to one step above what Class C holds, so a storm on a quiet pool ramps up", () => {
    assert.equal(nextBatchLimit(100, 0, 0, o), 10, "nothing running: the floor");
    assert.equal(nextBatchLimit(100, 0, 30, o), 35);
    let limit = nextBatchLimit(100, 0, 0, o);
    const ramp: number[] = [];
    for (let i = 0; i < 4; i++) ramp.push((limit = nextBatchLimit(limit, 0, limit, o)));
    assert.deepEqual(ramp, [15, 20, 25, 30], "the storm takes what it is given, a step more each interval");
  });

  it("between half the target and the target it holds; exactly at the target is not over it", () => {
    assert.equal(nextBatchLimit(40, 15, 40, o), 40);
    assert.equal(nextBatchLimit(40, 20, 40, o), 40);
    assert.equal(nextBatchLimit(40, 20.1, 40, o), 32);
    assert.equal(nextBatchLimit(40, 10, 40, o), 45);
  });

  it("a target of 0 turns it off: always the whole concurrency", () => {
    assert.equal(nextBatchLimit(10, 500, 0, { concurrency: 100, targetLagMs: 0 }), 100);
  });

  it("a one-slot process keeps its slot for the batch at the floor", () => {
    assert.equal(nextBatchLimit(1, 500, 1, { concurrency: 1, targetLagMs: 20 }), 1);
  });

  it("splits among cells as the slots are split", () => {
    assert.equal(cellBatch(50, 100, 34), 17);
    assert.equal(cellBatch(100, 100, 33), 33);
  });
});
