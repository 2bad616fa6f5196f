import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../../src/lib/clock.ts";
import { aEligible, bcEligible } from "../../src/scheduler/policy/caps.ts";
import { chooseClass, choosePreemptionVictim } from "../../src/scheduler/policy/dispatchRule.ts";
import { DEFAULT_SHARES, poolShares } from "../../src/scheduler/policy/shares.ts";
import { waterFill } from "../../src/scheduler/policy/waterFill.ts";
import { chargeFor, DEFAULT_CHARGE_MS, enterAt, heldMs, serve, settle } from "../../src/scheduler/policy/wfq.ts";
import { caps } from "../helpers/simulate.ts";

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

describe("virtual time (service received ÷ weight)", () => {
  it("serves at the tenant's virtual time and charges the estimate ÷ weight", () => {
    assert.deepEqual(serve({ inflight: 500 }, 10, 1000, 4), { v: 260, inflight: 1500, now: 10 });
  });

  it("settles a run to the slot-time it really held and learns the estimates", () => {
    const s = settle({ v: 260, est: 1000, inflight: 1500 }, { est: 1000 }, 1000, 200, 4);
    assert.deepEqual(s, { v: 60, est: 800, inflight: 500, classEst: 950 });
    assert.deepEqual(settle({}, {}, 0, 50, 1), { v: 50, est: 50, inflight: 0, classEst: 50 }, "a first run sets the estimates");
  });

  it("charges the tenant's estimate, else the class's, else the default", () => {
    assert.equal(chargeFor({ est: 12 }, { est: 99 }), 12);
    assert.equal(chargeFor({}, { est: 99 }), 99);
    assert.equal(chargeFor({}, {}), DEFAULT_CHARGE_MS);
    assert.equal(DEFAULT_CHARGE_MS, 0, "nothing known: charge nothing, so no estimate can inflate the frontier newcomers enter at");
  });

  it("starts a tenant entering the ready set at the lowest virtual time there, keeping recent debt", () => {
    assert.equal(enterAt({ v: 3 }, { now: 700 }, 500, 1), 500, "no credit banked while idle: level with the best backlogged tenant");
    assert.equal(enterAt({ v: 3 }, { now: 700 }, 800, 1), 700, "nor below the last served");
    assert.equal(enterAt({ v: 900 }, { now: 700 }, 500, 1), 900, "debt until the others catch up");
    assert.equal(enterAt({ v: 3 }, { now: 700 }, undefined, 1), 700, "nobody ready: the last served");
    assert.equal(enterAt({}, {}, undefined, 1), 0);
    assert.equal(enterAt({ v: 3, inflight: 400 }, { now: 700 }, 500, 4), 400, "back from its cap: one round of its runs in flight of lag");
  });

  it("never charges a negative slot-time when two processes' clocks disagree", () => {
    assert.equal(heldMs(1_000, 990), 0);
    assert.equal(heldMs(1_000, 1_250), 250);
  });
});

describe("water-filling (capped weighted fair shares)", () => {
  it("splits by weight, and gives what a capped tenant cannot use to the others by weight", () => {
    assert.deepEqual(waterFill(70, [{ weight: 1, cap: Infinity }, { weight: 2, cap: Infinity }, { weight: 4, cap: Infinity }]), [10, 20, 40]);
    assert.deepEqual(waterFill(30, [{ weight: 1, cap: 2 }, { weight: 1, cap: Infinity }, { weight: 2, cap: Infinity }]), [2, 28 / 3, 56 / 3]);
    assert.deepEqual(waterFill(10, [{ weight: 1, cap: 3 }, { weight: 1, cap: 3 }]), [3, 3], "more slots than caps: everyone at cap");
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

