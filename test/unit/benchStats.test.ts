import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jain, maxMinFair, percentile, sliceJain, summarize } from "../bench/lib/stats.ts";

describe("benchmark statistics", () => {
  it("takes nearest-rank percentiles, so p99 of 100 samples is the 99th smallest", () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile(xs, 100), 100);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.deepEqual(summarize([1, 2, 3]), { n: 3, p50: 2, p95: 3, p99: 3, mean: 2, max: 3 });
  });

  it("gives Jain's index 1 for equal shares and 1/n when one tenant takes everything", () => {
    assert.equal(jain([3, 3, 3, 3]), 1);
    assert.equal(jain([1, 0, 0, 0]), 0.25);
    assert.ok(Math.abs(jain([1, 2]) - 0.9) < 1e-12);
  });

  it("water-fills max-min fair shares: small demands in full, the rest split equally", () => {
    assert.deepEqual(maxMinFair([10, 10, 100], 60), [10, 10, 40]);
    assert.deepEqual(maxMinFair([100, 100], 60), [30, 30]);
    assert.deepEqual(maxMinFair([5, 0], 60), [5, 0]);
  });

  it("scores a tenant kept waiting while another runs as unfair in that slice, even if it is served later", () => {
    // One slot. Tenant b waits the whole first second while a runs, then runs in the second.
    const fifo = [
      { tenant: "a", enq: 0, start: 0, end: 1000 },
      { tenant: "b", enq: 0, start: 1000, end: 2000 },
    ];
    // Slice 1: both want 1000, fair 500 each, a got 1000 (capped 1), b got 0: Jain 0.5. Slice 2: only b wants: 1.
    assert.equal(sliceJain(fifo, 1, 0, 2000, 1000), 0.75);
    // Two slots, both served at once: 1 in every slice.
    assert.equal(
      sliceJain(
        fifo.map((s) => ({ ...s, start: 0, end: 1000 })),
        2,
        0,
        1000,
        1000,
      ),
      1,
    );
  });
});
