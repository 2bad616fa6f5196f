import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { cancelWorkflow } from "../../queues/lua/cancelWorkflow.ts";
import { allZero, deployment, type Deployment } from "../helpers/deployment.ts";

async function liveCapacity(d: Deployment): Promise<number> {
  const cell = d.p.keys.cell("default");
  const live = await d.p.redis.zrangebyscore(cell.poolWorkers("default"), `(${Date.now()}`, "+inf");
  if (!live.length) return 0;
  return (await d.p.redis.hmget(cell.poolConcurrency("default"), ...live)).reduce((s, c) => s + Number(c ?? 0), 0);
}

describe("workflow lifecycle on real processes", () => {
  it("pool capacity follows live workers: a killed worker's share disappears within its heartbeat TTL, a new one adds at once", {
    timeout: 60_000,
  }, async () => {
    const d = await deployment({ t: { tier: "free" } });
    try {
      const a = d.start("exec", { FAIRLANE_CONCURRENCY: "3" });
      d.start("exec", { FAIRLANE_CONCURRENCY: "5" });
      await d.waitCapacity(8);
      await a.kill9();
      const killedAt = Date.now();
      while ((await liveCapacity(d)) !== 5) await sleep(50);
      const gone = Date.now() - killedAt;
      assert.ok(gone <= 2000 + 1000, `share gone after ${gone} ms (TTL 2000 ms)`);
      d.start("exec", { FAIRLANE_CONCURRENCY: "4" });
      await d.waitCapacity(9);
    } finally {
      await d.close();
    }
  });

  it("cancels a running workflow through its AbortSignal and releases its slot", { timeout: 60_000 }, async () => {
    const d = await deployment({ t: { tier: "professional" } });
    try {
      d.start("exec", { FAIRLANE_CONCURRENCY: "2" });
      d.start("dispatcher");
      await d.waitCapacity(2);
      const [id] = await d.admit("t", [{ type: "observed", payload: { obs: d.obs, durationMs: 30_000 } }]);
      while (!(await d.observation()).events.some((e) => e.id === id)) await sleep(50);
      const r = await cancelWorkflow(d.p.redis, d.p.keys.cell("default"), id!, "t", Date.now(), { recordTtlSec: 3600 });
      assert.equal(r.kind, "signalled");
      const [view] = await d.waitEnded(new Map([[id!, "t"]]), 10_000);
      assert.equal(view!.state, "cancelled");
      const end = (await d.observation()).events.find((e) => e.id === id && e.kind === "end");
      assert.equal(end?.reason, "cancelled");
      await sleep(200);
      assert.ok(allZero(await d.counters()));
    } finally {
      await d.close();
    }
  });

  it("on SIGTERM an exec worker hands unfinished workflows back after its grace period; they finish elsewhere with no attempt used", {
    timeout: 60_000,
  }, async () => {
    const d = await deployment({ t: { tier: "professional", mca: 10 } }, { FAIRLANE_SHUTDOWN_GRACE_MS: "500" });
    try {
      const first = d.start("exec", { FAIRLANE_CONCURRENCY: "2" });
      d.start("dispatcher");
      await d.waitCapacity(2);
      const ids = await d.admit("t", [
        { type: "observed", payload: { obs: d.obs, durationMs: 100 } },
        { type: "observed", payload: { obs: d.obs, durationMs: 4_000 } },
      ]);
      while ((await d.observation()).events.filter((e) => e.kind === "start").length < 2) await sleep(50);
      await sleep(300); // the short one has finished; the long one is mid-run
      assert.equal(await first.stop(), 0, "clean exit");
      d.start("exec", { FAIRLANE_CONCURRENCY: "2" });
      const views = await d.waitEnded(new Map(ids.map((id) => [id, "t"])), 30_000);
      assert.deepEqual(
        views.map((v) => [v.state, v.attempts]),
        [
          ["completed", 1],
          ["completed", 1],
        ],
      );
      const o = await d.observation();
      assert.equal(o.events.filter((e) => e.kind === "end" && e.reason === "shutdown").length, 1);
      assert.equal(o.doubleRuns.length, 0);
      await sleep(200);
      assert.ok(allZero(await d.counters()));
    } finally {
      await d.close();
    }
  });
});
