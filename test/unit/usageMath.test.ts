import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { recommend } from "../../src/usage/recommend.ts";
import { parseWindow } from "../../src/usage/capacityReport.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { atCap, burstState } from "../../src/usage/capState.ts";
import { waterFill } from "../../src/dispatch/policy/waterFill.ts";
import { fairShareRatios, jainIndex, weightedSlotFairness, type FairnessSample } from "../../src/dispatch/policy/fairness.ts";
import { percentileFromBuckets, summarizeLatency } from "../../src/usage/percentiles.ts";
import { addBucket, bucketsInWindow, bucketStart, LATENCY_BUCKETS, latencyBucket } from "../../src/usage/usageBuckets.ts";
import { UsageHistory } from "../../src/usage/usageHistory.ts";
import { fairnessSampleOf, poolGroups } from "../../src/usage/usageSampler.ts";
import { emptyEvidence, mergeEvidence } from "../../src/usage/usageRollup.ts";
import type { TenantUsage } from "../../src/usage/usageSnapshot.ts";
import { applySpecPatch } from "../../src/tenancy/specPatch.ts";

/** Equal within 1e-9 (water-filling divides). */
const close = (got: number[], want: number[]) => {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-9, `${i}: ${g} ≠ ${want[i]}`));
};

const hist = (pairs: [number, number][]) => {
  const h = new Array<number>(LATENCY_BUCKETS).fill(0);
  for (const [b, n] of pairs) h[b] = n;
  return h;
};

describe("usage math (pure, fake clock)", () => {
  it("puts a latency in the smallest power-of-two bucket that holds it, as the exec's LatencyTally counts it", () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 1000, 1024, 1025].map(latencyBucket), [0, 0, 1, 2, 2, 3, 10, 10, 11]);
    assert.equal(latencyBucket(1e12), LATENCY_BUCKETS - 1, "capped at the last bucket");
  });

  it("computes percentiles from bucket counts across processes, within one bucket", () => {
    assert.equal(percentileFromBuckets(hist([]), 0.99), null);
    // 100 samples: 90 in (4, 8] ms, 10 in (512, 1024] ms.
    const h = hist([
      [3, 90],
      [10, 10],
    ]);
    const p50 = percentileFromBuckets(h, 0.5)!;
    assert.ok(p50 > 4 && p50 <= 8, `${p50}`);
    const p99 = percentileFromBuckets(h, 0.99)!;
    assert.ok(p99 > 512 && p99 <= 1024, `${p99}`);
    assert.deepEqual(summarizeLatency(hist([[0, 1]])), { p50: 0.5, p95: 1, p99: 1, samples: 1 });
    assert.throws(() => percentileFromBuckets(h, 1.5), RangeError);
  });

  it("adds event buckets per tenant and ignores fields it does not know", () => {
    const m = new Map();
    addBucket(m, { "a|l3": "2", "a|thr": "5", "a|acq": "7", "a|gw": "700", "b|l0": "1", junk: "1", "a|l99": "4", "a|zz": "1" });
    addBucket(m, { "a|thr": "1" });
    assert.equal(m.get("a").throttled, 6);
    assert.equal(m.get("a").latency[3], 2);
    assert.equal(m.get("a").gateWaitMs, 700);
    assert.equal(m.get("b").latency[0], 1);
  });

  it("covers the last minute with 10 s buckets, the current one included", () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 5));
    const b = bucketsInWindow(clock.now(), 60_000);
    assert.equal(b.length, 7);
    assert.equal(b.at(-1), bucketStart(clock.now()));
    clock.advance(14_999); // 00:00:19.999: the oldest bucket starts exactly a minute back
    assert.equal(bucketsInWindow(clock.now(), 60_000).length, 6);
  });

  it("Jain's index is 1 for equal shares and 1/n when one tenant has everything", () => {
    assert.equal(jainIndex([]), null);
    assert.equal(jainIndex([3, 3, 3]), 1);
    assert.equal(jainIndex([4, 0, 0, 0]), 0.25);
    assert.equal(jainIndex([0, 0]), 1);
    // Weighted: a tenant of weight 2 holding twice the slots is fair.
    const tick = new Map([
      ["a", { running: 4, backlogged: true, weight: 2 }],
      ["b", { running: 2, backlogged: true, weight: 1 }],
      ["idle", { running: 1, backlogged: false, weight: 1 }],
    ]);
    assert.deepEqual(weightedSlotFairness([tick, tick]), { index: 1, tenants: 2 });
    const unfair = new Map([...tick, ["b", { running: 0, backlogged: true, weight: 1 }]]);
    assert.equal(weightedSlotFairness([unfair]).index, 0.5);
  });

  it("water-fills slots by weight, gives a capped tenant its cap and the excess to the others by weight", () => {
    assert.deepEqual(waterFill(14, [{ weight: 1 }, { weight: 2 }, { weight: 4 }]), [2, 4, 8]);
    // 8 slots, weights 1:1:2: a's share would be 2, its cap is 1; the other 7 go 1:2 to b and c.
    close(waterFill(8, [{ weight: 1, cap: 1 }, { weight: 1 }, { weight: 2 }]), [1, 7 / 3, 14 / 3]);
    // Caps that bind in turn: a at 1 (level 2.5), then b at 2 (level 3), c takes the 7 left.
    assert.deepEqual(waterFill(10, [{ weight: 1, cap: 1 }, { weight: 1, cap: 2 }, { weight: 2 }]), [1, 2, 7]);
    // Caps adding up to less than the slots: everyone gets its cap, the rest is nobody's share.
    assert.deepEqual(
      waterFill(6, [
        { weight: 1, cap: 1 },
        { weight: 5, cap: 2 },
      ]),
      [1, 2],
    );
    assert.deepEqual(waterFill(4, [{ weight: 4, cap: 0 }, { weight: 1 }]), [0, 4], "a cap of 0 takes nothing");
    assert.deepEqual(waterFill(0, [{ weight: 1 }, { weight: 2 }]), [0, 0]);
  });

  it("fair-share ratio: slot-time held ÷ capped weighted fair share, counted only over the ticks a tenant was backlogged in", () => {
    const s = (running: number, backlogged: boolean, weight = 1, extra: Partial<FairnessSample> = {}): FairnessSample => ({
      running,
      backlogged,
      weight,
      ...extra,
    });
    // Weights 1:2:4 holding 3 slots each (the issue's "held now ÷ weight" outcome): S = 9, shares 9/7, 18/7, 36/7.
    const equal = fairShareRatios([
      new Map([
        ["w1", s(3, true, 1)],
        ["w2", s(3, true, 2)],
        ["w4", s(3, true, 4)],
      ]),
    ]);
    close(
      [..."124"].map((w) => equal.tenants.get(`w${w}`)!.ratio!),
      [7 / 3, 7 / 6, 7 / 12],
    );
    assert.equal(equal.worst!.tenant, "w4");
    close([equal.worst!.ratio], [7 / 12]);

    // A capped tenant at its cap gets ratio 1; the slot its weight would have given it goes to b and c by weight.
    const capped = fairShareRatios([
      new Map([
        ["a", s(1, true, 1, { cap: 1 })],
        ["b", s(3, true, 1)],
        ["c", s(4, true, 2)],
      ]),
    ]);
    close(
      ["a", "b", "c"].map((t) => capped.tenants.get(t)!.ratio!),
      [1, 3 / (7 / 3), 4 / (14 / 3)],
    );
    assert.equal(capped.worst!.tenant, "c");

    // Three ticks. idle holds 5 slots with nothing queued: no ratio, and its slots are not shared out.
    //   tick 1: a 2, b 2, both backlogged         -> shares 2, 2
    //   tick 2: a 4 backlogged, b idle (absent)   -> a's share 4
    //   tick 3: a 4, b 0, both backlogged         -> shares 2, 2
    const ticks = [
      new Map([
        ["a", s(2, true)],
        ["b", s(2, true)],
        ["idle", s(5, false)],
      ]),
      new Map([
        ["a", s(4, true)],
        ["idle", s(5, false)],
      ]),
      new Map([
        ["a", s(4, true)],
        ["b", s(0, true)],
        ["idle", s(5, false)],
      ]),
    ];
    const r = fairShareRatios(ticks);
    assert.deepEqual(r.tenants.get("a"), { ratio: 10 / 8, received: 10, fairShare: 8, backloggedTicks: 3 });
    assert.deepEqual(r.tenants.get("b"), { ratio: 0.5, received: 2, fairShare: 4, backloggedTicks: 2 });
    assert.equal(r.tenants.has("idle"), false, "a tenant never backlogged has no ratio");
    assert.deepEqual(r.worst, { tenant: "b", ratio: 0.5 });
  });

  it("fair-share ratio: groups that share no pool are split apart, a zero share has no ratio, a brief backlog is not the worst", () => {
    const s = (running: number, weight: number, group?: string, backlogged = true): FairnessSample => ({
      running,
      backlogged,
      weight,
      ...(group ? { group } : {}),
    });
    // a and b share the default pool (4 slots, weights 1:4 -> 0.8 and 3.2); eu is alone in its pool.
    const g = fairShareRatios([
      new Map([
        ["a", s(2, 1, "default|default")],
        ["b", s(2, 4, "default|default")],
        ["eu", s(1, 4, "default|eu")],
      ]),
    ]);
    close(
      ["a", "b", "eu"].map((t) => g.tenants.get(t)!.ratio!),
      [2.5, 0.625, 1],
    );

    // Nobody backlogged holds a slot: the share is 0, so there is no ratio (not 0, not Infinity).
    const none = fairShareRatios([
      new Map([
        ["a", s(0, 1)],
        ["idle", s(3, 1, undefined, false)],
      ]),
    ]);
    assert.deepEqual(none.tenants.get("a"), { ratio: null, received: 0, fairShare: 0, backloggedTicks: 1 });
    assert.equal(none.worst, null);

    // new joined in the last of 4 ticks and waits for its first slot: ratio 0, but the worst is
    // taken over tenants backlogged in at least half the ticks (Jain's set).
    const steady = new Map([
      ["a", s(3, 1)],
      ["b", s(1, 1)],
    ]);
    const late = fairShareRatios([steady, steady, steady, new Map([...steady, ["new", s(0, 1)]])]);
    assert.equal(late.tenants.get("new")!.ratio, 0);
    assert.deepEqual(late.worst, { tenant: "b", ratio: 4 / (2 + 2 + 2 + 4 / 3) });
  });

  it("samples a tenant's cap for the fair share from its policy, its burst state, its queue and pause", () => {
    const row = (over: Partial<Record<string, unknown>> = {}): TenantUsage =>
      ({
        tenant: "t",
        weight: 2,
        paused: false,
        mca: 10,
        burstMca: 15,
        burst: { state: "cooldown", until: null },
        mcaUrgent: 3,
        running: { A: 1, B: 4, C: 0, total: 5 },
        queued: { A: 0, B: 20, C: 0, total: 20 },
        ...over,
      }) as unknown as TenantUsage;
    assert.deepEqual(
      fairnessSampleOf(row()),
      { running: 5, backlogged: true, weight: 2, cap: 1 + 10 },
      "Class A: what it holds + queues, within mcaUrgent; B + C: mca",
    );
    assert.equal(fairnessSampleOf(row({ burst: { state: "open", until: 1 } }))!.cap, 1 + 15, "an open burst raises B + C to burst.mca");
    assert.equal(fairnessSampleOf(row({ burst: { state: "available", until: null } }))!.cap, 1 + 15, "so does one it may still open");
    assert.equal(fairnessSampleOf(row({ queued: { A: 5, B: 1, C: 0, total: 6 } }))!.cap, 3 + 5, "never more than it holds + has queued");
    assert.equal(fairnessSampleOf(row({ paused: true }))!.cap, 5, "a paused tenant starts nothing: its cap is what it holds");
    assert.equal(fairnessSampleOf(row({ queued: { A: 0, B: 0, C: 0, total: 0 } }))!.backlogged, false);
    assert.equal(
      fairnessSampleOf(row({ running: { A: 0, B: 0, C: 0, total: 0 }, queued: { A: 0, B: 0, C: 0, total: 0 } })),
      undefined,
      "idle: not sampled",
    );
    assert.equal(fairnessSampleOf(row(), "default|default")!.group, "default|default");
  });

  it("groups tenants that compete for the same slots: by cell and pool, joined through tenants allowed in several", () => {
    const g = poolGroups([
      { tenant: "a", cell: "default", pools: ["default"] },
      { tenant: "both", cell: "default", pools: ["eu", "default"] },
      { tenant: "eu", cell: "default", pools: ["eu"] },
      { tenant: "own", cell: "default", pools: ["dedicated"] },
      { tenant: "c2", cell: "c2", pools: ["default"] },
    ]);
    assert.equal(g.get("a"), g.get("both"));
    assert.equal(g.get("eu"), g.get("a"), "eu competes with a through both");
    assert.equal(new Set(g.values()).size, 3, "default+eu, dedicated, and the other cell's default");
    assert.notEqual(g.get("own"), g.get("a"));
    assert.notEqual(g.get("c2"), g.get("a"));
  });

  it("tells the burst state across its window and cooldown on a fake clock", () => {
    const clock = new FakeClock(1_000_000);
    const caps = { mca: 10, burstMca: 15, burstMs: 30_000, cooldownMs: 300_000, burstStart: null as number | null };
    assert.equal(burstState(caps, clock.now()).state, "available");
    caps.burstStart = clock.now();
    clock.advance(10_000);
    assert.deepEqual(burstState(caps, clock.now()), { state: "open", until: 1_030_000 });
    clock.advance(30_000);
    assert.deepEqual(burstState(caps, clock.now()), { state: "cooldown", until: 1_330_000 });
    clock.advance(300_000);
    assert.equal(burstState(caps, clock.now()).state, "available");
    assert.equal(burstState({ ...caps, burstMca: 10 }, clock.now()).state, "none");
  });

  it("marks a tenant at its cap for mca, Class A or mctc", () => {
    const base = { runningA: 0, runningBC: 2, mca: 3, mcaUrgent: 1, toolsInFlight: 0, mctc: 10 };
    assert.equal(atCap(base).any, false);
    assert.deepEqual(atCap({ ...base, runningBC: 3 }), { mca: true, urgent: false, mctc: false, any: true });
    assert.equal(atCap({ ...base, runningA: 1 }).urgent, true);
    assert.equal(atCap({ ...base, mcaUrgent: 0 }).urgent, false, "no Class A allowed is not 'at cap'");
    assert.equal(atCap({ ...base, toolsInFlight: 10 }).mctc, true);
  });

  it("recommends raising a cap that is often hit, lowering one never approached, and nothing on thin data", () => {
    const e = {
      ...emptyEvidence(),
      samples: 600,
      capWait: 420,
      peakRunning: 10,
      mca: 10,
      mctc: 50,
      acquired: 900,
      throttled: 100,
      peakToolsInFlight: 50,
    };
    const tenMinutes = { minEvidenceMs: 600_000, sampleMs: 1_000 }; // 600 samples of 1 s (test/unit/recommend.test.ts: the 24 h default)
    const r = recommend("t", e, { mca: 10, mctc: 50 }, tenMinutes);
    assert.equal(r.mca.action, "raise");
    assert.equal(r.mca.recommended, 15);
    assert.match(r.mca.reason, /70 %/);
    assert.equal(r.mctc.action, "raise");
    assert.equal(r.mctc.recommended, 75);
    assert.equal(r.evidence.throttleRate, 0.1);
    const quiet = recommend(
      "q",
      { ...emptyEvidence(), samples: 600, peakRunning: 2, peakToolsInFlight: 3, acquired: 50 },
      { mca: 50, mctc: 200 },
      tenMinutes,
    );
    assert.deepEqual([quiet.mca.action, quiet.mca.recommended, quiet.mctc.action, quiet.mctc.recommended], ["lower", 3, "lower", 4]);
    const thin = recommend("n", { ...e, samples: 5 }, { mca: 10, mctc: 50 }, tenMinutes);
    assert.equal(thin.mca.action, "keep");
    assert.match(thin.mca.reason, /not enough data/);
  });

  it("merges evidence: sums counts, keeps peaks", () => {
    const a = { ...emptyEvidence(), samples: 2, throttled: 1, peakRunning: 5, mca: 10 };
    const b = { ...emptyEvidence(), samples: 3, throttled: 2, peakRunning: 3, mca: 12 };
    assert.deepEqual({ ...mergeEvidence(a, b) }, { ...emptyEvidence(), samples: 5, throttled: 3, peakRunning: 5, mca: 12 });
  });

  it("parses a report window, refusing anything but m/h/d up to 7 days", () => {
    assert.deepEqual(parseWindow("90m"), { ms: 5_400_000 });
    assert.deepEqual(parseWindow("7d"), { ms: 604_800_000 });
    for (const bad of ["8d", "0h", "1w", "", "1.5h", "-1h"]) assert.ok("error" in parseWindow(bad), bad);
  });

  it("merges a partial policy change, nested budget key by key, and names a bad field", () => {
    const spec = { tier: "professional" as const, mca: 10, budget: { perWorkflowUsd: 0.5, monthlyUsd: 100 } };
    const ok = applySpecPatch(spec, { mca: 20, budget: { monthlyUsd: 500 } });
    assert.deepEqual(ok, { ok: true, spec: { tier: "professional", mca: 20, budget: { perWorkflowUsd: 0.5, monthlyUsd: 500 } } });
    const bad = applySpecPatch(spec, { mca: -1, nope: 1 });
    assert.equal(bad.ok, false);
    assert.deepEqual(!bad.ok && bad.issues.map((i) => i.field).sort(), ["(body)", "mca"]);
    const reviewed = { tier: "professional" as const, review: { pool: "prior-auth", onTimeout: "escalate" as const, escalateTo: "leads" } };
    assert.deepEqual(applySpecPatch(reviewed, { review: { slaSeconds: 1200 } }), {
      ok: true,
      spec: { tier: "professional", review: { pool: "prior-auth", onTimeout: "escalate", escalateTo: "leads", slaSeconds: 1200 } },
    });
    assert.equal(applySpecPatch(spec, []).ok, false);
    assert.equal(applySpecPatch(spec, {}).ok, false);
  });

  it("keeps a 15-minute ring of history per active tenant, idle tenants cost nothing", () => {
    const clock = new FakeClock();
    const row = (tenant: string, running: number): TenantUsage =>
      ({
        tenant,
        mca: 3,
        running: { A: 0, B: running, C: 0, total: running },
        queued: { A: 0, B: 0, C: 0, total: 0 },
        tools: { inFlight: 0, mctc: 10 },
        throttledPerMin: 0,
        latency: { p99: null, samples: 0 },
        parked: 0,
      }) as unknown as TenantUsage;
    const h = new UsageHistory(4);
    for (let i = 0; i < 6; i++) {
      h.push(clock.now(), [row("busy", i), row("idle", 0)]);
      clock.advance(3_000);
    }
    const busy = h.get("busy");
    assert.deepEqual(busy.series.running, [2, 3, 4, 5], "the oldest points fell out of the ring");
    assert.deepEqual(busy.series.p99Ms, [null, null, null, null]);
    const idle = h.get("idle", row("idle", 0), clock.now());
    assert.deepEqual(idle.series.running, [0, 0, 0, 0, 0]);
    assert.deepEqual(idle.series.mca, [3, 3, 3, 3, 3]);
  });
});
