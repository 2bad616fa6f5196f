import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../../src/lib/clock.ts";
import { aEligible, bcEligible } from "../../src/scheduler/policy/caps.ts";
import { chooseClass, choosePreemptionVictim, wfqCompare, type TenantState } from "../../src/scheduler/policy/dispatchRule.ts";
import { DEFAULT_SHARES, poolShares } from "../../src/scheduler/policy/shares.ts";
import { caps, jain, simulate } from "../helpers/simulate.ts";

describe("burst window and cooldown (fake clock)", () => {
  const c = caps({ mca: 150, burstMca: 250, burstMs: 60_000, cooldownMs: 600_000 });

  it("lets a tenant under mca start work without touching the burst", () => {
    assert.deepEqual(bcEligible(c, 149, 0), { eligible: true, startsBurst: false });
  });

  it("opens a window with the first dispatch above mca, up to burst.mca", () => {
    const clock = new FakeClock(1_000_000);
    assert.deepEqual(bcEligible(c, 150, clock.now()), { eligible: true, startsBurst: true });
    const inWindow = { ...c, burstStart: clock.now() };
    clock.advance(59_999);
    assert.deepEqual(bcEligible(inWindow, 249, clock.now()), { eligible: true, startsBurst: false });
    assert.equal(bcEligible(inWindow, 250, clock.now()).eligible, false, "never above burst.mca");
  });

  it("closes the window after burst.seconds and refuses until the cooldown ends", () => {
    const start = 1_000_000;
    const b = { ...c, burstStart: start };
    const d = bcEligible(b, 150, start + 60_000);
    assert.deepEqual(d, { eligible: false, startsBurst: false, retryAt: start + 660_000 });
    assert.equal(bcEligible(b, 149, start + 60_000).eligible, true, "below mca is always fine");
    assert.deepEqual(bcEligible(b, 150, start + 660_000), { eligible: true, startsBurst: true }, "a new window after cooldown");
  });

  it("has no burst when burst.seconds is 0", () => {
    assert.equal(bcEligible(caps({ mca: 3, burstMca: 5 }), 3, 0).eligible, false);
  });

  it("caps Class A at mcaUrgent", () => {
    assert.equal(aEligible(caps({ mcaUrgent: 2 }), 1), true);
    assert.equal(aEligible(caps({ mcaUrgent: 2 }), 2), false);
  });
});

describe("pool shares", () => {
  it("reserves at least one slot for Class A but never the whole pool", () => {
    assert.deepEqual(poolShares(100, DEFAULT_SHARES), { reserveA: 10, minC: 5, maxC: 50 });
    assert.deepEqual(poolShares(5, DEFAULT_SHARES), { reserveA: 1, minC: 1, maxC: 2 });
    assert.deepEqual(poolShares(1, DEFAULT_SHARES), { reserveA: 0, minC: 1, maxC: 1 });
    assert.deepEqual(poolShares(0, DEFAULT_SHARES), { reserveA: 0, minC: 0, maxC: 0 });
  });

  it("gives Class A any free slot, keeps B and C out of the reserve, and C within its shares", () => {
    const all = () => true;
    assert.equal(chooseClass({ capacity: 10, used: 9, usedA: 0, usedC: 0 }, DEFAULT_SHARES, all), "A");
    assert.equal(chooseClass({ capacity: 10, used: 9, usedA: 0, usedC: 0 }, DEFAULT_SHARES, (c) => c !== "A"), null, "the last slot is A's reserve");
    assert.equal(chooseClass({ capacity: 10, used: 10, usedA: 1, usedC: 0 }, DEFAULT_SHARES, all), null);
    assert.equal(chooseClass({ capacity: 10, used: 4, usedA: 0, usedC: 0 }, DEFAULT_SHARES, (c) => c !== "A"), "C", "C's minimum comes first");
    assert.equal(chooseClass({ capacity: 10, used: 4, usedA: 0, usedC: 1 }, DEFAULT_SHARES, (c) => c !== "A"), "B");
    assert.equal(chooseClass({ capacity: 10, used: 4, usedA: 0, usedC: 4 }, DEFAULT_SHARES, (c) => c === "C"), "C");
    assert.equal(chooseClass({ capacity: 10, used: 5, usedA: 0, usedC: 5 }, DEFAULT_SHARES, (c) => c === "C"), null, "C at its max share");
  });
});

describe("weighted fair queuing order", () => {
  const t = (held: number, weight: number, lastServed: number): TenantState => ({
    caps: caps({ weight }),
    queued: { A: 0, B: 1, C: 0 },
    runningA: 0,
    runningBC: held,
    held,
    lastServed,
  });

  it("serves the lowest slots-held ÷ weight first", () => {
    assert.ok(wfqCompare(t(2, 4, 9), t(1, 1, 0)) < 0, "0.5 before 1");
  });

  it("breaks ties by least recently served", () => {
    assert.ok(wfqCompare(t(1, 1, 3), t(1, 1, 7)) < 0);
  });
});

describe("preemption choice", () => {
  it("picks the most recently started Class C workflow not already yielding", () => {
    const victim = choosePreemptionVictim([
      { id: "old", startedAt: 1, yielding: false },
      { id: "newest", startedAt: 9, yielding: true },
      { id: "new", startedAt: 5, yielding: false },
    ]);
    assert.equal(victim, "new");
    assert.equal(choosePreemptionVictim([]), null);
  });
});

describe("fairness of the rule (simulated, fake clock)", () => {
  it("gives 50 equal-weight backlogged tenants equal dispatches (Jain >= 0.99)", () => {
    const tenants = Object.fromEntries(
      Array.from({ length: 50 }, (_, i) => [`t${String(i).padStart(2, "0")}`, { caps: caps(), queued: { B: 10_000 }, durationMs: 10 + (i % 7) }]),
    );
    const r = simulate(20, tenants, 60_000);
    const j = jain(Object.values(r.dispatches));
    assert.ok(j >= 0.99, `jain ${j}`);
  });

  it("splits the pool 1:2:4 for weights 1:2:4 (±5%)", () => {
    const r = simulate(
      70,
      {
        w1: { caps: caps({ weight: 1 }), queued: { B: 1e6 }, durationMs: 20 },
        w2: { caps: caps({ weight: 2 }), queued: { B: 1e6 }, durationMs: 20 },
        w4: { caps: caps({ weight: 4 }), queued: { B: 1e6 }, durationMs: 20 },
      },
      30_000,
    );
    const total = r.slotMs.w1! + r.slotMs.w2! + r.slotMs.w4!;
    for (const [name, want] of [["w1", 1 / 7], ["w2", 2 / 7], ["w4", 4 / 7]] as const) {
      const got = r.slotMs[name]! / total;
      assert.ok(Math.abs(got - want) / want <= 0.05, `${name}: ${got.toFixed(3)} vs ${want.toFixed(3)}`);
    }
  });

  it("charges by slots held: 10 ms and 1 s workflows get equal busy slot-time (±5%)", () => {
    const r = simulate(
      20,
      {
        short: { caps: caps(), queued: { B: 1e6 }, durationMs: 10 },
        long: { caps: caps(), queued: { B: 1e6 }, durationMs: 1_000 },
      },
      60_000,
    );
    const ratio = r.slotMs.short! / r.slotMs.long!;
    assert.ok(Math.abs(ratio - 1) <= 0.05, `slot-time ratio ${ratio}`);
  });

  it("never runs a tenant above its cap, and bursts only within the window", () => {
    const r = simulate(
      400,
      {
        meridian: { caps: caps({ mca: 150, burstMca: 250, burstMs: 60_000, cooldownMs: 600_000 }), queued: { C: 1200 }, durationMs: 30_000 },
        clinic: { caps: caps({ mca: 10 }), queued: { B: 500 }, durationMs: 1_000 },
      },
      5 * 60_000,
      { ...DEFAULT_SHARES, batchMaxShare: 1 },
    );
    assert.equal(r.maxRunning.meridian, 250);
    assert.equal(r.maxRunning.clinic, 10);
  });
});
