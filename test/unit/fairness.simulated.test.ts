import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { simulate, type SimCaps, type SimTenant } from "../../src/dispatch/simulator.ts";
import { DEFAULT_SHARES } from "../../src/dispatch/policy/shares.ts";
import { caps, jain } from "../helpers/simulate.ts";

/**
 * The dispatch rule's fairness, driven by the simulator with a fake clock:
 * the same rule the dispatch script is checked against (the differential
 * test), so these are the scheduling contract at any pool size. Capacity 10
 * leaves 9 general slots (the Class A reserve keeps one).
 */
const backlog = (c: Partial<SimCaps>, durationMs: SimTenant["durationMs"], o: Partial<SimTenant> = {}): SimTenant => ({
  caps: caps(c),
  cls: "B",
  jobs: Infinity,
  durationMs,
  ...o,
});

const slotShares = (r: ReturnType<typeof simulate>, names: string[]) => {
  const total = names.reduce((s, n) => s + r.tenants[n]!.slotMs, 0);
  return Object.fromEntries(names.map((n) => [n, r.tenants[n]!.slotMs / total]));
};

describe("weighted fair queuing by service received (simulated, fake clock)", () => {
  it("splits 9 slots 1:2:4 for weights 1:2:4 (±5%), though no whole-slot split is exact", () => {
    const r = simulate(
      { w1: backlog({ weight: 1 }, 50), w2: backlog({ weight: 2 }, 50), w4: backlog({ weight: 4 }, 50) },
      { capacity: 10, untilMs: 60_000 },
    );
    const shares = slotShares(r, ["w1", "w2", "w4"]);
    for (const [n, want] of [
      ["w1", 1 / 7],
      ["w2", 2 / 7],
      ["w4", 4 / 7],
    ] as const)
      assert.ok(Math.abs(shares[n]! - want) / want <= 0.05, `${n}: ${shares[n]!.toFixed(3)} vs ${want.toFixed(3)}`);
    assert.ok(r.jain! >= 0.99, `jain ${r.jain}`);
  });

  it("keeps weights with fewer slots than tenants: six of weight 4 get 4× six of weight 1 on 9 slots (±10%)", () => {
    const tenants: Record<string, SimTenant> = {};
    for (let i = 0; i < 6; i++) {
      tenants[`light${i}`] = backlog({ weight: 1 }, 50);
      tenants[`heavy${i}`] = backlog({ weight: 4 }, 50);
    }
    const r = simulate(tenants, { capacity: 10, untilMs: 60_000 });
    const sum = (p: string) =>
      Object.entries(r.tenants)
        .filter(([n]) => n.startsWith(p))
        .reduce((s, [, t]) => s + t.slotMs, 0);
    const ratio = sum("heavy") / sum("light");
    assert.ok(Math.abs(ratio - 4) / 4 <= 0.1, `heavy ÷ light ${ratio.toFixed(3)}`);
    assert.ok(r.jain! >= 0.98, `jain ${r.jain}`);
  });

  it("gives 10 ms and 1 s workflows of equal weight equal slot-time (±5%), not equal starts", () => {
    const r = simulate({ short: backlog({}, 10), long: backlog({}, 1_000) }, { capacity: 10, untilMs: 60_000 });
    const ratio = r.tenants.short!.slotMs / r.tenants.long!.slotMs;
    assert.ok(Math.abs(ratio - 1) <= 0.05, `slot-time short ÷ long ${ratio.toFixed(3)}`);
    assert.ok(r.tenants.short!.starts > 50 * r.tenants.long!.starts);
  });

  it("gives 200 tenants of mixed weights on 100 slots, capped at 20, each its capped weighted fair share (±10%) over 4 hours of 45 s decisions", () => {
    const tenants: Record<string, SimTenant> = {};
    for (let i = 0; i < 200; i++) tenants[`bank${i}`] = backlog({ weight: [1, 2, 4][i % 3]!, mca: 20, burstMca: 20 }, [30_000, 60_000]);
    // A few large tenants whose weight would buy more than their cap.
    for (let i = 0; i < 3; i++) tenants[`big${i}`] = backlog({ weight: 400, mca: 20, burstMca: 20 }, 45_000);
    const r = simulate(tenants, { capacity: 112, untilMs: 4 * 3_600_000, seed: 7 });
    for (const [n, t] of Object.entries(r.tenants)) assert.ok(Math.abs(t.share! - 1) <= 0.1, `${n}: share ${t.share!.toFixed(3)}`);
    for (let i = 0; i < 3; i++) assert.equal(r.tenants[`big${i}`]!.maxRunning, 20, "the cap binds the heavy tenants");
    assert.ok(r.jain! >= 0.99, `jain ${r.jain}`);
  });

  it("gives a tenant back from 10 minutes idle its fair share, not the whole pool", () => {
    const r = simulate(
      {
        steady1: backlog({}, 200),
        steady2: backlog({}, 200),
        back: backlog({}, 200, { atMs: 10 * 60_000 }),
      },
      { capacity: 31, untilMs: 11 * 60_000 },
    );
    // Alone at the start of its return it may take what frees first, but over
    // its backlogged minute it gets a third, as the others do.
    const back = r.tenants.back!;
    assert.ok(Math.abs(back.share! - 1) <= 0.05, `share ${back.share}`);
    assert.ok(back.maxRunning <= 12, `max running ${back.maxRunning} of 30 general slots`);
  });

  it("gives 50 equal-weight tenants with different run times equal slot-time (Jain ≥ 0.99)", () => {
    const tenants = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`t${i}`, backlog({}, 10 + (i % 7))]));
    const r = simulate(tenants, { capacity: 20, untilMs: 60_000 });
    assert.ok(jain(Object.values(r.tenants).map((t) => t.slotMs)) >= 0.99);
  });

  it("never runs a tenant above its cap, and bursts only within the window", () => {
    const r = simulate(
      {
        meridian: backlog({ mca: 150, burstMca: 250, burstMs: 60_000, cooldownMs: 600_000 }, 30_000, { cls: "C", jobs: 1200 }),
        clinic: backlog({ mca: 10 }, 1_000, { jobs: 500 }),
      },
      { capacity: 400, untilMs: 5 * 60_000, shares: { ...DEFAULT_SHARES, batchMaxShare: 1 } },
    );
    assert.equal(r.tenants.meridian!.maxRunning, 250);
    assert.equal(r.tenants.clinic!.maxRunning, 10);
  });

  it("replays exactly from a seed", () => {
    const run = () =>
      simulate({ a: backlog({ weight: 2 }, [10, 500]), b: backlog({}, [10, 500]) }, { capacity: 5, untilMs: 20_000, seed: 3 });
    assert.deepEqual(run(), run());
  });
});
