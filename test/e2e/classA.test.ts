import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { allZero, deployment } from "../helpers/deployment.ts";

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

describe("Class A isolation", () => {
  it("starts other tenants' Class A work within one job-duration while 1,200 Class C jobs fill the pool", {
    timeout: 180_000,
  }, async () => {
    const JOB_MS = 80;
    const d = await deployment(
      {
        meridian: { tier: "enterprise", mca: 150, burst: { mca: 250, seconds: 60, cooldownSeconds: 600 } },
        er1: { tier: "professional", mcaUrgent: 5 },
        er2: { tier: "professional", mcaUrgent: 5 },
      },
      { FAIRLANE_BATCH_MAX_SHARE: "1" },
    );
    try {
      d.start("exec", { FAIRLANE_CONCURRENCY: "10" });
      d.start("exec", { FAIRLANE_CONCURRENCY: "10" });
      d.start("dispatcher");
      await d.waitCapacity(20);
      const batch = Array.from({ length: 1200 }, () => ({ type: "observed", class: "C", payload: { obs: d.obs, durationMs: JOB_MS } }));
      const ids = new Map<string, string>();
      for (const id of await d.admit("meridian", batch)) ids.set(id, "meridian");
      const urgent = new Map<string, number>(); // id -> enqueued at
      for (let i = 0; i < 30; i++) {
        await sleep(60);
        const tenant = i % 2 ? "er1" : "er2";
        const [id] = await d.admit(tenant, [{ type: "observed", class: "A", payload: { obs: d.obs, durationMs: JOB_MS } }]);
        ids.set(id!, tenant);
        urgent.set(id!, Date.now());
      }
      await d.waitEnded(ids, 150_000);
      const o = await d.observation();
      const firstStart = new Map<string, number>();
      for (const e of o.events) if (e.kind === "start" && !firstStart.has(e.id)) firstStart.set(e.id, e.at);
      const waits = [...urgent].map(([id, at]) => firstStart.get(id)! - at);
      const p99 = percentile(waits, 99);
      const cStillQueued = o.events.filter((e) => e.cls === "C" && e.kind === "start").length;
      console.log(JSON.stringify({ classAWaitP50: percentile(waits, 50), classAWaitP99: p99, jobMs: JOB_MS, cStarts: cStillQueued }));
      // The storm really filled the pool while the urgent work arrived.
      assert.ok(o.maxC >= 18, `Class C peak ${o.maxC}`);
      assert.ok(p99 <= JOB_MS, `Class A enqueue->start p99 ${p99} ms > one job (${JOB_MS} ms)`);
      assert.equal(o.doubleRuns.length, 0);
      await sleep(200);
      assert.ok(allZero(await d.counters()));
    } finally {
      await d.close();
    }
  });

  it("preempts the newest Class C workflows when Class A arrives to a full pool; they resume without using an attempt", {
    timeout: 120_000,
  }, async () => {
    const C_MS = 8_000;
    const d = await deployment(
      { night: { tier: "enterprise", mca: 50 }, er: { tier: "professional", mcaUrgent: 5 } },
      { FAIRLANE_BATCH_MAX_SHARE: "1" },
    );
    try {
      d.start("exec", { FAIRLANE_CONCURRENCY: "4" });
      d.start("dispatcher");
      await d.waitCapacity(4);
      const ids = new Map<string, string>();
      const cs = await d.admit(
        "night",
        Array.from({ length: 3 }, () => ({ type: "observed", class: "C", payload: { obs: d.obs, durationMs: C_MS } })),
      );
      for (const id of cs) ids.set(id, "night");
      for (let i = 0; i < 100 && (await d.observation()).events.length < 3; i++) await sleep(50);
      const sent = Date.now();
      const as = await d.admit(
        "er",
        Array.from({ length: 3 }, () => ({ type: "observed", class: "A", payload: { obs: d.obs, durationMs: 100 } })),
      );
      for (const id of as) ids.set(id, "er");
      const views = await d.waitEnded(ids, 90_000);
      const o = await d.observation();
      const aStarts = o.events.filter((e) => e.cls === "A" && e.kind === "start").map((e) => e.at - sent);
      assert.equal(aStarts.length, 3);
      assert.ok(Math.max(...aStarts) < C_MS / 4, `Class A started after ${Math.max(...aStarts)} ms; Class C runs ${C_MS} ms`);
      const preempted = o.events.filter((e) => e.kind === "end" && e.reason === "preempted");
      assert.equal(preempted.length, 2, "the reserve took one; two Class C yielded");
      for (const v of views) assert.equal(v.state, "completed");
      for (const id of cs) assert.equal(views.find((v) => v.id === id)!.attempts, 1, "preemption used no attempt");
      assert.equal(o.doubleRuns.length, 0);
      await sleep(200);
      assert.ok(allZero(await d.counters()));
    } finally {
      await d.close();
    }
  });
});
