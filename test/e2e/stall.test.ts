import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { allZero, deployment, type Deployment } from "../helpers/deployment.ts";
import { privateRedis } from "../helpers/privateRedis.ts";
import { replyGate } from "../helpers/replyGate.ts";

/**
 * A stalled exec worker (SIGSTOP past its BullMQ lock, as a long GC pause or a
 * starved VM would) loses its run to another worker. When it resumes it must
 * stop that run at once instead of finishing it alongside the new owner, and
 * its late writes are fenced by the run id.
 */
/** One exec worker (1 slot) and a dispatcher; a 20 s observed workflow admitted and started on that worker. */
async function longRunStarted(d: Deployment) {
  const a = d.start("exec", { FAIRLANE_CONCURRENCY: "1" });
  await d.waitCapacity(1);
  d.start("dispatcher");
  const [id] = await d.admit("clinic", [{ type: "observed", class: "B", payload: { obs: d.obs, durationMs: 20_000 } }]);
  const runsOf = async () => (await d.observation()).events.filter((e) => e.id === id);
  for (let i = 0; i < 100 && !(await runsOf()).some((e) => e.kind === "start"); i++) await sleep(50);
  return { a, id: id!, runsOf };
}

describe("a stalled exec worker", () => {
  it("stops its run as soon as it resumes after losing the lock, and the workflow completes once", { timeout: 90_000 }, async () => {
    const d = await deployment({ clinic: { tier: "professional", mca: 4 } }, { FAIRLANE_LOCK_MS: "2000" });
    try {
      const { a, id, runsOf } = await longRunStarted(d);
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
      let aEnd: Awaited<ReturnType<typeof runsOf>>[number] | undefined;
      for (let i = 0; i < 100 && !aEnd; i++) {
        aEnd = (await runsOf()).find((e) => e.kind === "end" && e.pid === a.child.pid);
        if (!aEnd) await sleep(50);
      }
      assert.ok(aEnd, "the stalled run ended");
      assert.ok(aEnd.reason === "stalled" || aEnd.reason === "lost", `ended ${aEnd.reason}`);
      assert.ok(aEnd.at - resumedAt < 2_000, `it stopped ${aEnd.at - resumedAt} ms after resuming`);

      const [view] = await d.waitEnded(new Map([[id, "clinic"]]), 60_000);
      assert.equal(view!.state, "completed");
      const ends = (await runsOf()).filter((e) => e.kind === "end");
      assert.deepEqual(
        ends.filter((e) => e.pid === b.child.pid).map((e) => e.reason),
        ["done"],
        "the second worker's run completed",
      );
      assert.equal(ends.filter((e) => e.pid === a.child.pid).length, 1);
      for (let i = 0; i < 50 && !allZero(await d.counters()); i++) await sleep(100);
      assert.ok(allZero(await d.counters()), JSON.stringify(await d.counters()));
    } finally {
      await d.close();
    }
  });

  it("never starts a run whose fetch's reply reached it after the lock lapsed and another worker ran it", { timeout: 90_000 }, async () => {
    const d = await deployment({ clinic: { tier: "professional", mca: 4 } }, { FAIRLANE_LOCK_MS: "2000" });
    const gate = await replyGate(d.env.REDIS_URL!);
    try {
      // The first worker reaches Redis through the gate; its log says when it has dealt with the late reply.
      const a = d.start("exec", { FAIRLANE_CONCURRENCY: "1", REDIS_URL: gate.url, LOG_LEVEL: "info" });
      await d.waitCapacity(1);
      const [id] = await d.admit("clinic", [{ type: "observed", class: "B", payload: { obs: d.obs, durationMs: 0 } }]);
      // Its fetch takes the workflow (lock, start) in Redis; the reply, the first with the id, waits as in a
      // frozen process (seen in the fault drill: SIGSTOP just as the fetch was answered).
      const fetched = gate.holdFrom(id!);
      d.start("dispatcher");
      const waited = new AbortController();
      await Promise.race([
        fetched,
        sleep(30_000, undefined, { signal: waited.signal }).then(() => assert.fail("the first worker never fetched it")),
      ]).finally(() => waited.abort());
      // The lock lapses; a second worker takes the stalled job over and runs it to the end.
      const b = d.start("exec", { FAIRLANE_CONCURRENCY: "1" });
      const [view] = await d.waitEnded(new Map([[id!, "clinic"]]), 60_000);
      assert.equal(view!.state, "completed");

      // Now the first worker reads the fetch's reply, whose start said "run".
      gate.release();
      for (let i = 0; i < 200 && !a.output().includes("handed back to ingress"); i++) await sleep(50);
      assert.match(a.output(), /handed back to ingress/, "the first worker dealt with the late reply");
      const starts = (await d.observation()).events.filter((e) => e.id === id && e.kind === "start");
      assert.deepEqual(
        starts.map((e) => e.pid),
        [b.child.pid],
        "only the second worker ran it: the first never started it on a lapsed lock",
      );
      for (let i = 0; i < 50 && !allZero(await d.counters()); i++) await sleep(100);
      assert.ok(allZero(await d.counters()), JSON.stringify(await d.counters()));
    } finally {
      await d.close();
      await gate.close();
    }
  });

  it("stops a run it cannot renew the lock of (Redis frozen past the lock) before another worker can take it", {
    timeout: 90_000,
  }, async () => {
    const redis = await privateRedis();
    const d = await deployment({ clinic: { tier: "professional", mca: 4 } }, { FAIRLANE_LOCK_MS: "2000" }, redis.url);
    const redisPid = redis.server().pid!;
    try {
      const { a, id, runsOf } = await longRunStarted(d);
      const b = d.start("exec", { FAIRLANE_CONCURRENCY: "1" });
      await d.waitCapacity(2);

      // Redis answers nobody for twice the lock: the run's lock lapses while its worker cannot renew it,
      // and the other worker takes the job over as soon as Redis is back.
      const frozenAt = Date.now();
      process.kill(redisPid, "SIGSTOP");
      await sleep(4_000);
      process.kill(redisPid, "SIGCONT");
      const resumedAt = Date.now();

      const [view] = await d.waitEnded(new Map([[id, "clinic"]]), 60_000);
      assert.equal(view!.state, "completed");
      const events = await runsOf();
      const aEnd = events.find((e) => e.kind === "end" && e.pid === a.child.pid);
      assert.ok(aEnd, "the first run ended");
      assert.equal(aEnd.reason, "stalled");
      // Its worker stopped it while Redis was still frozen, before the lock (2 s from its last renewal) lapsed.
      assert.ok(
        aEnd.at > frozenAt && aEnd.at < frozenAt + 2_000 && aEnd.at < resumedAt,
        `stopped ${aEnd.at - frozenAt} ms into the freeze`,
      );
      // Every run of it began after the one before had ended: never two at once.
      const starts = events.filter((e) => e.kind === "start");
      const ends = events.filter((e) => e.kind === "end");
      for (let i = 1; i < starts.length; i++)
        assert.ok(starts[i]!.at >= ends[i - 1]!.at, `run ${i + 1} started ${ends[i - 1]!.at - starts[i]!.at} ms before run ${i} ended`);
      assert.equal(ends.at(-1)!.reason, "done");
      assert.ok([a.child.pid, b.child.pid].includes(ends.at(-1)!.pid));
      for (let i = 0; i < 50 && !allZero(await d.counters()); i++) await sleep(100);
      assert.ok(allZero(await d.counters()), JSON.stringify(await d.counters()));
    } finally {
      await d.close();
      await redis.stop();
    }
  });
});
