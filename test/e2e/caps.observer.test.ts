import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { poolShares, DEFAULT_SHARES } from "../../src/dispatch/policy/shares.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { allZero, deployment, rng, type Deployment } from "../helpers/deployment.ts";

/**
 * Invariant 1 under a randomized mixed load, measured by an independent
 * observer (what the workflows themselves recorded), with three exec worker
 * processes and two dispatchers racing on the same cell.
 */
const TENANTS: Record<string, PolicySpec> = {
  hospital: { tier: "enterprise", weight: 3, mca: 4, burst: { mca: 6, seconds: 1, cooldownSeconds: 2 }, mcaUrgent: 2 },
  clinic: { tier: "professional", weight: 2, mca: 3, burst: { mca: 3 }, mcaUrgent: 1 },
  practice: { tier: "free", mca: 2, burst: { mca: 2 }, mcaUrgent: 1 },
  lab: { tier: "professional", mca: 3, burst: { mca: 3 }, mcaUrgent: 2 },
  pharmacy: { tier: "free", mca: 2, burst: { mca: 2 }, mcaUrgent: 1 },
  payer: { tier: "enterprise", weight: 4, mca: 5, burst: { mca: 5 }, mcaUrgent: 2 },
};
const WORKERS = 3;
const CONCURRENCY = 4;

describe("caps under a randomized mixed load (real processes, independent observer)", () => {
  let d: Deployment;
  before(async () => {
    d = await deployment(TENANTS);
    for (let i = 0; i < WORKERS; i++) d.start("exec", { FAIRLANE_CONCURRENCY: String(CONCURRENCY) });
    d.start("dispatcher");
    d.start("dispatcher");
    await d.waitCapacity(WORKERS * CONCURRENCY);
  });
  after(() => d.close());

  it("never exceeds a tenant's cap, mcaUrgent, the Class C share or the pool's capacity, and ends every workflow", {
    timeout: 120_000,
  }, async () => {
    const random = rng(20261124);
    const names = Object.keys(TENANTS);
    const ids = new Map<string, string>();
    // A batch that pushes the hospital past its mca, into its burst window.
    const batch = Array.from({ length: 30 }, () => ({ type: "observed", class: "B", payload: { obs: d.obs, durationMs: 250 } }));
    for (const id of await d.admit("hospital", batch)) ids.set(id, "hospital");
    for (let wave = 0; wave < 6; wave++) {
      for (const tenant of names) {
        const n = Math.floor(random() * 12);
        const items = Array.from({ length: n }, () => {
          const r = random();
          return {
            type: "observed",
            class: r < 0.15 ? "A" : r < 0.6 ? "B" : "C",
            payload: { obs: d.obs, durationMs: 20 + Math.floor(random() * 130) },
          };
        });
        for (const id of await d.admit(tenant, items)) ids.set(id, tenant);
      }
      await sleep(300);
    }
    const views = await d.waitEnded(ids, 90_000);
    assert.deepEqual([...new Set(views.map((v) => v.state))], ["completed"]);

    const o = await d.observation();
    console.log(JSON.stringify({ workflows: ids.size, maxTotal: o.maxTotal, maxC: o.maxC, maxBC: o.maxBC, maxA: o.maxA }));
    const capacity = WORKERS * CONCURRENCY;
    assert.equal(o.doubleRuns.length, 0, `ran twice at once: ${o.doubleRuns.join()}`);
    assert.ok(o.maxTotal <= capacity, `total ${o.maxTotal} > ${capacity}`);
    assert.ok(o.maxC <= poolShares(capacity, DEFAULT_SHARES).maxC, `Class C ${o.maxC}`);
    for (const [t, spec] of Object.entries(TENANTS)) {
      assert.ok((o.maxBC[t] ?? 0) <= (spec.burst?.mca ?? spec.mca!), `${t} B/C ${o.maxBC[t]}`);
      assert.ok((o.maxA[t] ?? 0) <= spec.mcaUrgent!, `${t} A ${o.maxA[t]}`);
    }
    // The observer saw real concurrency, so the checks above could have failed.
    assert.ok(o.maxTotal >= capacity / 2, `observed total peak ${o.maxTotal}`);
    assert.ok((o.maxBC.hospital ?? 0) > TENANTS.hospital!.mca!, "the hospital used its burst");

    await sleep(200);
    const c = await d.counters();
    assert.ok(allZero(c), JSON.stringify(c));
  });
});
