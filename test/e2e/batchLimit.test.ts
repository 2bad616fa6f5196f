import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ObservedEvent } from "../helpers/observer.ts";
import { allZero, deployment } from "../helpers/deployment.ts";

/** The most Class C runs the observer saw running at once among those that started within [from, to]. */
function peakC(events: ObservedEvent[], from: number, to: number): number {
  const runs = new Map<string, { start: number; end: number }>();
  for (const e of events) {
    if (e.cls !== "C") continue;
    if (e.kind === "start") runs.set(e.id, { start: e.at, end: Infinity });
    else if (e.kind === "end" && runs.has(e.id)) runs.get(e.id)!.end = e.at;
  }
  let peak = 0;
  for (const r of runs.values()) {
    if (r.start < from || r.start > to) continue;
    const at = r.start;
    peak = Math.max(peak, [...runs.values()].filter((o) => o.start <= at && o.end > at).length);
  }
  return peak;
}

describe("batch limit: Class C backs off while the exec process's event loop lags", () => {
  it("takes far fewer slots while its runs keep the loop busy, then takes them back once the loop is quiet", {
    timeout: 180_000,
  }, async () => {
    const d = await deployment({ night: { tier: "enterprise", mca: 50 } }, { FAIRLANE_BATCH_MAX_SHARE: "1" });
    try {
      // Target 40 ms: increases need the loop at most 20 ms late (p99), which even a busy test machine
      // gives; the CPU-heavy runs below block the loop 60 ms at each start.
      d.start("exec", { FAIRLANE_CONCURRENCY: "20", FAIRLANE_EXEC_LAG_TARGET_MS: "40" });
      d.start("dispatcher");
      await d.waitCapacity(20);
      const item = (payload: Record<string, unknown>) => ({ type: "observed", class: "C", payload: { obs: d.obs, ...payload } });

      // 1. A quiet batch: its limit grows a step per half second while it uses it.
      const quiet = await d.admit(
        "night",
        Array.from({ length: 500 }, () => item({ durationMs: 150 })),
      );
      await d.waitEnded(new Map(quiet.map((id) => [id, "night"])), 90_000);
      const q = await d.observation();
      const quietPeak = peakC(q.events, 0, Date.now());

      // 2. CPU-heavy runs: the loop lags, the limit falls toward its floor (2 of 20) within seconds.
      const heavyFrom = Date.now();
      const heavy = await d.admit(
        "night",
        Array.from({ length: 150 }, () => item({ durationMs: 100, spinMs: 60 })),
      );
      const views = await d.waitEnded(new Map(heavy.map((id) => [id, "night"])), 120_000);
      const o = await d.observation();
      const starts = o.events.filter((e) => e.kind === "start" && e.at >= heavyFrom).map((e) => e.at);
      const heavyPeakLate = peakC(o.events, Math.min(...starts) + 4_000, Date.now());

      console.log(JSON.stringify({ quietPeak, heavyPeakLate }));
      assert.ok(quietPeak >= 12, `a quiet batch grew its limit well above the floor: peak ${quietPeak} of 20`);
      assert.ok(heavyPeakLate <= 6, `CPU-heavy runs held to a few slots once the limit fell: peak ${heavyPeakLate}`);
      assert.deepEqual([...new Set(views.map((v) => v.state))], ["completed"], "the batch still completes");
      assert.equal(o.doubleRuns.length, 0);
      assert.ok(allZero(await d.counters()));
    } finally {
      await d.close();
    }
  });
});
