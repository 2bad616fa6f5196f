import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { choosePreemptionVictim } from "../../src/dispatch/policy/dispatchRule.ts";
import { DEFAULT_SHARES, poolShares } from "../../src/dispatch/policy/shares.ts";
import { waterFill } from "../../src/dispatch/policy/waterFill.ts";
import { chargeFor, DEFAULT_CHARGE_MS, enterAt, heldMs, serve, settle } from "../../src/dispatch/policy/wfq.ts";

// The rule's cases it shares with the dispatch script — caps and the burst window, the class a free
// slot goes to, whole scenarios — are the tables in test/conformance/ (caps.cases.ts,
// dispatch.cases.ts), checked against both there.
describe("pool shares", () => {
  it("reserves at least one slot for Class A but never the whole pool", () => {
    assert.deepEqual(poolShares(100, DEFAULT_SHARES), { reserveA: 10, minC: 5, maxC: 50 });
    assert.deepEqual(poolShares(5, DEFAULT_SHARES), { reserveA: 1, minC: 1, maxC: 2 });
    assert.deepEqual(poolShares(1, DEFAULT_SHARES), { reserveA: 0, minC: 1, maxC: 1 });
    assert.deepEqual(poolShares(0, DEFAULT_SHARES), { reserveA: 0, minC: 0, maxC: 0 });
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
    assert.deepEqual(
      waterFill(70, [
        { weight: 1, cap: Infinity },
        { weight: 2, cap: Infinity },
        { weight: 4, cap: Infinity },
      ]),
      [10, 20, 40],
    );
    assert.deepEqual(
      waterFill(30, [
        { weight: 1, cap: 2 },
        { weight: 1, cap: Infinity },
        { weight: 2, cap: Infinity },
      ]),
      [2, 28 / 3, 56 / 3],
    );
    assert.deepEqual(
      waterFill(10, [
        { weight: 1, cap: 3 },
        { weight: 1, cap: 3 },
      ]),
      [3, 3],
      "more slots than caps: everyone at cap",
    );
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
