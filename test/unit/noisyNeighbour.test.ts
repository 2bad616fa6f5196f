import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { FakeClock } from "../../src/lib/clock.ts";
import { registry } from "../../src/observability/metrics.ts";
import { setUsageSource } from "../../src/usage/usageMetrics.ts";
import type { TenantUsage } from "../../src/usage/usageSnapshot.ts";
import { assertPromtoolClean, promtoolCheckMetrics } from "../helpers/promtool.ts";
import { tickFairShares, type FairnessSample } from "../../src/dispatch/policy/fairness.ts";
import {
  isolationImpact,
  medianWithout,
  NOISY_DEFAULTS,
  NoisyNeighbours,
  spearman,
  type NoisyInput,
  type NoisyReport,
} from "../../src/usage/noisyNeighbour.ts";

/**
 * The noisy-neighbour signal on synthetic series, one tick a second on a fake
 * clock: a storm that moves the others' p99 is flagged; one that leaves it
 * flat is not; one that holds more than its share while others wait, but
 * harms no one, is noisy only.
 */
interface Row extends NoisyInput {
  weight?: number;
  cap?: number;
}

const row = (tenant: string, running: number, p99: number | null, queued = 0): Row => ({
  tenant,
  running,
  queued,
  p99,
  latencySamples: p99 === null ? 0 : 50,
});

/** Feeds one tick: every tenant in one pool group of `slots` general slots, `free` of them free. */
function tick(n: NoisyNeighbours, clock: FakeClock, rows: Row[], pool = { slots: 8, free: 4 }): NoisyReport {
  const samples = new Map<string, FairnessSample>();
  for (const r of rows) {
    if (r.running + r.queued === 0) continue;
    samples.set(r.tenant, {
      running: r.running,
      backlogged: r.queued > 0,
      weight: r.weight ?? 1,
      cap: Math.min(r.cap ?? Infinity, r.running + r.queued),
      group: "default|default",
    });
  }
  const report = n.observe({
    at: clock.now(),
    tenants: rows,
    samples,
    shares: tickFairShares(samples),
    groups: new Map([["default|default", pool]]),
  });
  clock.advance(1_000);
  return report;
}

const QUIET = ["q1", "q2", "q3"];

describe("noisy-neighbour signal (pure, fake clock)", () => {
  it("ranks with ties and leaves one value out of a median", () => {
    assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 1000]), 1, "monotone, whatever the scale");
    assert.equal(spearman([1, 1, 1], [1, 2, 3]), null, "a constant side has no correlation");
    assert.ok(Math.abs(spearman([0, 0, 1, 1], [1, 2, 3, 4])! - 0.894) < 0.001, "ties get their average rank");
    // A storm's first 4 ticks of 32, the others' latency following it exactly: a short step caps ρ.
    const step = Array.from({ length: 32 }, (_, k) => (k < 28 ? 0 : 5));
    assert.ok(
      spearman(
        step,
        step.map((x, k) => (x ? 500 + k : 10 + (k % 3))),
      )! < 0.6,
    );
    const s = Float64Array.from([1, 5, 9, 100]);
    assert.equal(medianWithout(s, undefined), 7);
    assert.equal(medianWithout(s, 100), 5, "its own value is not the others'");
    assert.equal(medianWithout(s, 42), 7, "a value not in the list leaves it whole");
    assert.ok(Number.isNaN(medianWithout(Float64Array.from([3]), 3)), "nobody else: no value");
  });

  it("flags the tenant whose load moves the others' p99, names their baseline, and not the victims", () => {
    const clock = new FakeClock();
    const n = new NoisyNeighbours();
    let r: NoisyReport | undefined;
    for (let k = 0; k < 40; k++) {
      const storm = k >= 20;
      // The victims wait longer, and once their work queues they hold a little more too: their
      // load follows the others' latency as well as the storm's does, but rises far less.
      const quiet = QUIET.map((q, i) => row(q, ((k + i) % 2) + (storm ? 1 : 0), storm ? 400 + 10 * i : 10 + i, storm ? 1 : 0));
      r = tick(n, clock, [row("storm", storm ? 8 : 0, storm ? 9_000 : null, storm ? 500 : 0), ...quiet], { slots: 8, free: storm ? 0 : 6 });
      if (k === 21) assert.equal(r.isolationIncomplete.length, 0, "not on two ticks of evidence");
    }
    assert.deepEqual(
      r!.isolationIncomplete.map((x) => x.tenant),
      ["storm"],
    );
    assert.ok(r!.impact.get("q1")! >= NOISY_DEFAULTS.impactThreshold, `the victims correlate too (${r!.impact.get("q1")})`);
    const x = r!.isolationIncomplete[0]!;
    assert.ok(x.impact >= 0.8, `impact ${x.impact}`);
    assert.equal(x.othersP99Ms, 410, "the median of the others' p99, its own 9 s left out");
    assert.equal(x.baselineP99Ms, 11);
    assert.equal(x.since, Date.UTC(2026, 0, 1) + 22_000, "from its third high tick");
  });

  it("does not flag a storm that leaves the others' latency flat, however well it correlates", () => {
    const clock = new FakeClock();
    const n = new NoisyNeighbours();
    let r: NoisyReport | undefined;
    for (let k = 0; k < 40; k++) {
      const storm = k >= 20;
      // Capped at 4 slots, the storm leaves free slots: the others' 5 ms p99 becomes 9 ms.
      r = tick(
        n,
        clock,
        [row("storm", storm ? 4 : 0, storm ? 20_000 : null, storm ? 500 : 0), ...QUIET.map((q) => row(q, 1, storm ? 9 : 5))],
        { slots: 8, free: storm ? 1 : 5 },
      );
    }
    assert.equal(r!.impact.get("storm"), 1, "perfectly correlated");
    assert.deepEqual(r!.isolationIncomplete, [], "but 4 ms is no harm");
    assert.deepEqual(r!.noisy, [], "and with a slot free nobody waits for it");
    assert.equal(r!.quiet, 4);
    const v = isolationImpact([0, 0, 0, 4, 4, 4, 4, 4, 4, 4], [50, 50, 50, 120, 120, 120, 120, 120, 120, 120], NOISY_DEFAULTS);
    assert.equal(v.flagged, false, "+70 ms is under the 100 ms floor, though more than doubled");
  });

  it("does not take one tenant's wait behind its own cap for everyone's", () => {
    const clock = new FakeClock();
    const n = new NoisyNeighbours();
    let r: NoisyReport | undefined;
    for (let k = 0; k < 40; k++) {
      const storm = k >= 20;
      // q1's load happens to rise with the storm; the storm's own p99 soars (its cap), q2 and q3 stay flat.
      r = tick(n, clock, [
        row("storm", storm ? 4 : 0, storm ? 30_000 : null, storm ? 900 : 0),
        row("q1", storm ? 2 : 0, 10),
        row("q2", 1, 10),
        row("q3", 1, 12),
      ]);
    }
    assert.ok((r!.impact.get("q1") ?? 0) <= 1);
    assert.deepEqual(r!.isolationIncomplete, [], "the median of q1's others is q2/q3's, not the storm's");
  });

  it("calls a tenant noisy that holds the pool while others wait, and only that if nobody's latency moves", () => {
    const clock = new FakeClock();
    const n = new NoisyNeighbours();
    let r: NoisyReport | undefined;
    for (let k = 0; k < 30; k++) {
      // The pool is full: "big" holds 7 of 8 general slots, q1 and q2 have work queued.
      r = tick(n, clock, [row("big", 7, 20, 40), row("q1", 1, 30, 2), row("q2", 0, 30, 1), row("q3", 0, 30)], { slots: 8, free: 0 });
    }
    assert.deepEqual(
      r!.noisy.map((x) => x.tenant),
      ["big"],
    );
    const big = r!.noisy[0]!;
    assert.equal(big.share, 0.875);
    // Of the 8 slots the backlogged hold: q2 asks for 1, q1 for 3 (its cap), big gets 4.
    assert.equal(big.fairShare, 0.5);
    assert.equal(big.contestedTicks, 30);
    assert.equal(big.since, Date.UTC(2026, 0, 1) + 4_000, "from the fifth contested tick");
    assert.equal(r!.quiet, 2, "q1 and q2 have work and are not noisy; q3 has none");
    assert.deepEqual(r!.isolationIncomplete, [], "nobody's latency moved");
    // Its backlog drains: quiet again at once (SQS's rule).
    r = tick(n, clock, [row("big", 7, 20, 0), row("q1", 1, 30, 2), row("q2", 0, 30, 1)], { slots: 8, free: 0 });
    assert.deepEqual(r.noisy, []);
  });

  it("keeps a storm longer than the window flagged while the others still wait, and clears it when they recover", () => {
    const clock = new FakeClock();
    const n = new NoisyNeighbours({ windowMs: 30_000 });
    const at = (_k: number, load: number, others: number) =>
      tick(n, clock, [row("storm", load, 5_000, 100), ...QUIET.map((q) => row(q, 1, others))]);
    for (let k = 0; k < 10; k++) at(k, 0, 8);
    let r: NoisyReport | undefined;
    for (let k = 0; k < 60; k++) {
      r = at(k, 6, 600);
      if (k === 40) assert.equal(r.impact.get("storm"), undefined, "a flat window has no correlation left");
      if (k >= 10)
        assert.deepEqual(
          r.isolationIncomplete.map((x) => x.tenant),
          ["storm"],
          `tick ${k}`,
        );
    }
    assert.equal(r!.isolationIncomplete[0]!.baselineP99Ms, 8, "the baseline latched when it was flagged");
    // One tick in which it holds nothing does not end it; three ticks back at baseline do.
    assert.equal(at(0, 0, 600).isolationIncomplete.length, 1);
    assert.equal(at(0, 6, 9).isolationIncomplete.length, 1);
    r = at(0, 6, 9);
    assert.deepEqual(r.isolationIncomplete, [], "the others are back at their baseline");
  });

  it("tracks at most maxTracked tenants and costs a few ms a tick at 10,000 tenants", () => {
    const clock = new FakeClock();
    const n = new NoisyNeighbours();
    const tenants = Array.from({ length: 10_000 }, (_, i) => `t${String(i).padStart(5, "0")}`);
    const times: number[] = [];
    let r: NoisyReport | undefined;
    for (let k = 0; k < 90; k++) {
      // Half hold slots (1 to 4, changing), all have a p99; a tenth have work queued, in a full pool.
      const rows = tenants.map((t, i) => row(t, i % 2 ? 1 + ((i + k) % 4) : 0, 5 + ((i * 7 + k) % 50), i % 10 === 0 ? 3 : 0));
      const samples = new Map<string, FairnessSample>();
      for (const x of rows)
        if (x.running + x.queued)
          samples.set(x.tenant, { running: x.running, backlogged: x.queued > 0, weight: 1, cap: x.running + x.queued, group: "g" });
      const shares = tickFairShares(samples);
      const t0 = performance.now();
      r = n.observe({ at: clock.now(), tenants: rows, samples, shares, groups: new Map([["g", { slots: 12_000, free: 0 }]]) });
      times.push(performance.now() - t0);
      clock.advance(1_000);
    }
    assert.ok(r!.impact.size <= NOISY_DEFAULTS.maxTracked, `${r!.impact.size} tracked`);
    const steady = times.slice(60).sort((a, b) => a - b);
    const median = steady[steady.length >> 1]!;
    console.log(
      JSON.stringify({
        tenants: 10_000,
        tracked: r!.impact.size,
        medianMs: Math.round(median * 100) / 100,
        maxMs: Math.round(steady.at(-1)! * 100) / 100,
      }),
    );
    assert.ok(median < 25, `median ${median} ms per tick`);
  });
});

describe("noisy-neighbour gauges on /metrics", () => {
  after(() => setUsageSource(undefined));

  it("flags the labelled tenants, folds the rest into _other (flag if any, the highest impact) and counts noisy and quiet", async () => {
    // 101 busy tenants: the default 100 busiest get a label, busy-100 (and "small") go to _other.
    const usage = (tenant: string, queued: number) =>
      ({
        tenant,
        mca: 3,
        burst: { state: "none", until: null },
        running: { A: 0, B: 1, C: 0, total: 1 },
        queued: { A: 0, B: queued, C: 0, total: queued },
        tools: { inFlight: 0, mctc: 10, waiting: 0 },
        throttledPerMin: 0,
        parked: 0,
        atCap: { any: false },
        fairShare: { ratio: null, backloggedTicks: 0 },
      }) as unknown as TenantUsage;
    const tenants = Array.from({ length: 101 }, (_, i) => usage(`busy-${String(i).padStart(3, "0")}`, 200 - i));
    tenants.push(usage("small", 0));
    const report: NoisyReport = {
      windowMs: 60_000,
      ticks: 120,
      noisy: [{ tenant: "busy-000", share: 0.9, fairShare: 0.3, contestedTicks: 40, impact: 0.7, since: 0 }],
      quiet: 101,
      isolationIncomplete: [{ tenant: "small", impact: 0.66, othersP99Ms: 900, baselineP99Ms: 10, since: 0 }],
      impact: new Map([
        ["busy-000", 0.7],
        ["busy-100", 0.2],
        ["small", 0.66],
      ]),
    };
    setUsageSource(async () => ({
      snapshot: { at: 0, readMs: 0, windowMs: 60_000, tenants, pools: [], dependencies: [] },
      fairness: { index: null, tenants: 0, windowMs: 60_000, ticks: 0, worst: null },
      noisy: report,
    }));
    const text = await registry.metrics();
    const series = (name: string) =>
      [...text.matchAll(new RegExp(`^${name}(?:\\{tenant="([^"]+)"\\})? (\\S+)$`, "gm"))].map((m) => [m[1], Number(m[2])]);
    assert.deepEqual(series("fairlane_tenant_noisy"), [["busy-000", 1]]);
    assert.deepEqual(series("fairlane_tenant_isolation_incomplete"), [["_other", 1]], "an unlabelled tenant's flag shows through _other");
    assert.deepEqual(series("fairlane_tenant_isolation_impact"), [
      ["busy-000", 0.7],
      ["_other", 0.66],
    ]);
    assert.deepEqual(series("fairlane_noisy_tenants"), [[undefined, 1]]);
    assert.deepEqual(series("fairlane_quiet_tenants"), [[undefined, 101]]);
    const check = promtoolCheckMetrics(text);
    if (check) assertPromtoolClean(check.status, check.output);
  });
});
