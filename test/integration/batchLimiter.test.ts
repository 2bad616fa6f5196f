import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { latenessMs } from "../../src/exec/batchLimiter.ts";

describe("batch limiter: the loop's lateness, from Node's own histogram", () => {
  it("reads how late the loop ran, not the histogram's timer period that Node records with it", async () => {
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    await sleep(300);
    h.disable();
    // Node records the time between the timer's firings: about its 10 ms period, or more. Not every one:
    // after a late firing the next can come a little early (CI saw 9.2 ms on a busy machine), so the median.
    assert.ok(h.percentile(50) / 1e6 >= 9.5, `median interval ${h.percentile(50) / 1e6} ms`);
    assert.equal(latenessMs(h.percentile(99)), Math.max(0, h.percentile(99) / 1e6 - 10));
    assert.equal(latenessMs(10e6), 0);
    assert.equal(latenessMs(35e6), 25);
    assert.equal(latenessMs(5e6), 0, "never negative");
  });
});
