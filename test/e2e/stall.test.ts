import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { allZero, deployment } from "../helpers/deployment.ts";

/**
 * A stalled exec worker (SIGSTOP past its BullMQ lock, as a long GC pause or a
 * starved VM would) loses its run to another worker. When it resumes it must
 * stop that run at once instead of finishing it alongside the new owner, and
 * its late writes are fenced by the run id.
 */
describe("a stalled exec worker", () => {
  it("stops its run as soon as it resumes after losing the lock, and the workflow completes once", { timeout: 90_000 }, async () => {
    const d = await deployment({ clinic: { tier: "professional", mca: 4 } }, { FAIRLANE_LOCK_MS: "2000" });
    try {
      const a = d.start("exec", { FAIRLANE_CONCURRENCY: "1" });
      await d.waitCapacity(1);
      d.start("dispatcher");
      const [id] = await d.admit("clinic", [{ type: "observed", class: "B", payload: { obs: d.obs, durationMs: 20_000 } }]);
      const runsOf = async () => (await d.observation()).events.filter((e) => e.id === id);
      for (let i = 0; i < 100 && !(await runsOf()).some((e) => e.kind === "start"); i++) await sleep(50);
      assert.equal((await runsOf())[0]?.pid, a.child.pid, "the first worker runs it");

      // Freeze the first worker; a second one joins and takes the stalled job once BullMQ sees the lock expired.
      process.kill(a.child.pid!, "SIGSTOP");
      const b = d.start("exec", { FAIRLANE_CONCURRENCY: "1" });
      let taken = false;
      for (let i = 0; i < 300 && !taken; i++) {
        taken = (await runsOf()).some((e) => e.kind === "start" && e.pid === b.child.pid);
        if (!taken) await sleep(100);
      }
      assert.ok(taken, "the second worker took over the stalled run");
      process.kill(a.child.pid!, "SIGCONT");
      const resumedAt = Date.now();

      // The first worker's run ends at once on resuming, long before its 20 s of work: the stall watchdog
      // stops it in the first timer pass ("stalled"), or failing that the lost lock renewal ("lost").
      let aEnd;
      for (let i = 0; i < 100 && !aEnd; i++) {
        aEnd = (await runsOf()).find((e) => e.kind === "end" && e.pid === a.child.pid);
        if (!aEnd) await sleep(50);
      }
      assert.ok(aEnd, "the stalled run ended");
      assert.ok(aEnd.reason === "stalled" || aEnd.reason === "lost", `ended ${aEnd.reason}`);
      assert.ok(aEnd.at - resumedAt < 2_000, `it stopped ${aEnd.at - resumedAt} ms after resuming`);

      const [view] = await d.waitEnded(new Map([[id!, "clinic"]]), 60_000);
      assert.equal(view!.state, "completed");
      const ends = (await runsOf()).filter((e) => e.kind === "end");
      assert.deepEqual(ends.filter((e) => e.pid === b.child.pid).map((e) => e.reason), ["done"], "the second worker's run completed");
      assert.equal(ends.filter((e) => e.pid === a.child.pid).length, 1);
      for (let i = 0; i < 50 && !allZero(await d.counters()); i++) await sleep(100);
      assert.ok(allZero(await d.counters()), JSON.stringify(await d.counters()));
    } finally {
      await d.close();
    }
  });
});
