import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { allZero, deployment } from "../helpers/deployment.ts";
import { recordEvent } from "../helpers/observedWorkflow.ts";
import { killedEvent } from "../helpers/observer.ts";

/**
 * Crash safety with real OS processes: kill -9 an exec worker, and in
 * another test the dispatcher, in the middle of a storm. Every accepted
 * workflow still ends, none runs twice at the same time (observer), and every
 * slot counter is back to zero at quiescence.
 */
const TENANTS = {
  hospital: { tier: "enterprise" as const, mca: 20, burst: { mca: 20 } },
  clinic: { tier: "professional" as const, mca: 10, burst: { mca: 10 } },
};

async function storm(d: Awaited<ReturnType<typeof deployment>>): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const [tenant, cls] of [
    ["hospital", "C"],
    ["clinic", "B"],
    ["hospital", "B"],
  ] as const) {
    const items = Array.from({ length: 40 }, (_, i) => ({
      type: "observed",
      class: cls,
      payload: { obs: d.obs, durationMs: 100 + (i % 5) * 50 },
    }));
    for (const id of await d.admit(tenant, items)) ids.set(id, tenant);
  }
  return ids;
}

describe("crash safety", () => {
  it("survives kill -9 of an exec worker mid-storm: nothing lost, nothing run twice at once, counters back to zero", {
    timeout: 120_000,
  }, async () => {
    const d = await deployment(TENANTS, { FAIRLANE_BATCH_MAX_SHARE: "1" });
    try {
      const victim = d.start("exec", { FAIRLANE_CONCURRENCY: "6" });
      d.start("exec", { FAIRLANE_CONCURRENCY: "6" });
      d.start("dispatcher");
      await d.waitCapacity(12);
      const ids = await storm(d);
      // Kill it while it is running workflows (the observer shows them).
      for (let i = 0; i < 100; i++) {
        const o = await d.observation();
        if (o.events.filter((e) => e.pid === victim.child.pid && e.kind === "start").length >= 6) break;
        await sleep(50);
      }
      await victim.kill9();
      await recordEvent(d.obs, killedEvent(victim.child.pid!), d.p.redis);
      const views = await d.waitEnded(ids, 90_000);
      assert.deepEqual([...new Set(views.map((v) => v.state))], ["completed"]);
      const o = await d.observation();
      assert.equal(o.doubleRuns.length, 0, `ran twice at once: ${o.doubleRuns.join()}`);
      const reruns = views.filter((v) => v.attempts > 1).length;
      const cut =
        o.events.filter((e) => e.pid === victim.child.pid && e.kind === "start").length -
        o.events.filter((e) => e.pid === victim.child.pid && e.kind === "end").length;
      assert.ok(cut > 0, "the kill interrupted running workflows");
      // Re-runs: every run the kill cut, plus runs the victim had started but not yet reported (at most its concurrency).
      assert.ok(reruns >= cut && reruns <= cut + 6, `${reruns} re-runs for ${cut} runs cut`);
      await sleep(200);
      const c = await d.counters();
      assert.ok(allZero(c), JSON.stringify(c));
    } finally {
      await d.close();
    }
  });

  it("survives kill -9 of the dispatcher mid-storm; a restarted dispatcher finishes the work", { timeout: 120_000 }, async () => {
    const d = await deployment(TENANTS, { FAIRLANE_BATCH_MAX_SHARE: "1" });
    try {
      d.start("exec", { FAIRLANE_CONCURRENCY: "8" });
      const dispatcher = d.start("dispatcher");
      await d.waitCapacity(8);
      const ids = await storm(d);
      for (let i = 0; i < 100 && (await d.observation()).events.length < 20; i++) await sleep(50);
      await dispatcher.kill9();
      const startedBefore = new Set((await d.observation()).events.map((e) => e.id)).size;
      assert.ok(startedBefore < ids.size, "killed mid-storm");
      d.start("dispatcher");
      const views = await d.waitEnded(ids, 90_000);
      assert.deepEqual([...new Set(views.map((v) => v.state))], ["completed"]);
      const o = await d.observation();
      assert.equal(o.doubleRuns.length, 0);
      assert.equal(new Set(o.events.map((e) => e.id)).size, ids.size, "every workflow ran");
      assert.ok(
        views.every((v) => v.attempts === 1),
        "none ran twice: the move is atomic",
      );
      await sleep(200);
      const c = await d.counters();
      assert.ok(allZero(c), JSON.stringify(c));
    } finally {
      await d.close();
    }
  });
});
