import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { deployment } from "../helpers/deployment.ts";
import { backloggedWindow, run } from "../helpers/fairnessRun.ts";
import type { Observation } from "../helpers/observer.ts";

/** The most runs of `tenants` the observer saw at once (their own start and end events). */
function maxTogether(o: Observation, tenants: string[]): number {
  const running = new Set<string>();
  let max = 0;
  for (const e of o.events) {
    if (!tenants.includes(e.tenant)) continue;
    if (e.kind === "start") running.add(e.id);
    else running.delete(e.id);
    max = Math.max(max, running.size);
  }
  return max;
}

/** Organisations (issue 18): an org's caps bound its tenants together; orgs share a pool by weight, their tenants the org's part. */
describe("organisations (real processes, observer)", () => {
  it("never runs more of an org than its mca (12), nor of one tenant than its own (10), with the pool to spare", {
    timeout: 120_000,
  }, async () => {
    const member: PolicySpec = { tier: "professional", mca: 10, burst: { mca: 10 }, org: "holding" };
    const d = await deployment({
      bank1: member,
      bank2: member,
      bank3: member,
      solo: { tier: "professional", mca: 10, burst: { mca: 10 } },
    });
    try {
      await d.p.registry.putOrg("holding", { mca: 12 });
      d.start("exec", { FAIRLANE_CONCURRENCY: "20" });
      d.start("exec", { FAIRLANE_CONCURRENCY: "20" });
      d.start("dispatcher");
      await d.waitCapacity(40);
      const work = (n: number) =>
        Array.from({ length: n }, () => ({ type: "observed", class: "B", payload: { obs: d.obs, durationMs: 150 } }));
      const ids = new Map<string, string>();
      for (const t of ["bank1", "bank2", "bank3", "solo"]) for (const id of await d.admit(t, work(60))) ids.set(id, t);
      await d.waitEnded(ids, 90_000);
      const o = await d.observation();
      const org = maxTogether(o, ["bank1", "bank2", "bank3"]);
      console.log(JSON.stringify({ org, byTenant: o.maxBC, total: o.maxTotal }));
      assert.ok(org <= 12, `the org ran ${org} at once, over its mca of 12`);
      assert.ok(org >= 11, `the org's cap is what bound it (${org} at most)`);
      for (const t of ["bank1", "bank2", "bank3"]) assert.ok(o.maxBC[t]! <= 10, `${t} ran ${o.maxBC[t]}`);
      assert.ok(o.maxBC.solo! >= 9 && o.maxBC.solo! <= 10, `a tenant outside the org reaches its own cap: ${o.maxBC.solo}`);
      assert.deepEqual(o.doubleRuns, []);
    } finally {
      await d.close();
    }
  });

  // Capacity 10 leaves 9 general slots (one is Class A's reserve). Org "small" (weight 1) has two
  // tenants of weight 1, org "large" (weight 3) one of weight 1 and one of weight 3: the pool splits
  // 1:3 between the orgs, and each org's part by its tenants' weights.
  it("shares a pool 1:3 between orgs of weights 1:3 (±5%), and each org's part by its tenants' weights", {
    timeout: 240_000,
  }, async () => {
    const spec = (org: string, weight: number): PolicySpec => ({ tier: "professional", weight, mca: 50, org });
    const tenants = { s1: spec("small", 1), s2: spec("small", 1), l1: spec("large", 1), l3: spec("large", 3) };
    const want = { s1: 1 / 8, s2: 1 / 8, l1: 3 / 16, l3: 9 / 16 };
    const jobs = Object.fromEntries(Object.entries(want).map(([t, share]) => [t, { n: Math.round(share * 1200), ms: 200 }]));
    const { o, from } = await run(tenants, jobs, 10, undefined, async (d) => {
      await d.p.registry.putOrg("small", { weight: 1 });
      await d.p.registry.putOrg("large", { weight: 3 });
    });
    const w = backloggedWindow(o, from);
    const busy = o.busyMs(w.from, w.to);
    const total = Object.keys(want).reduce((s, t) => s + (busy[t] ?? 0), 0);
    const share = (t: string) => (busy[t] ?? 0) / total;
    const small = share("s1") + share("s2");
    console.log(
      JSON.stringify({ small, shares: Object.fromEntries(Object.keys(want).map((t) => [t, share(t)])), windowMs: w.to - w.from }),
    );
    assert.ok(w.to - w.from >= 20_000, `all four backlogged for ${w.to - w.from} ms`);
    assert.ok(Math.abs(small - 0.25) / 0.25 <= 0.05, `the weight-1 org got ${small.toFixed(3)} of the slot-time, not 0.25`);
    for (const [t, s] of Object.entries(want))
      assert.ok(Math.abs(share(t) - s) / s <= 0.1, `${t}: ${share(t).toFixed(3)} of the slot-time, not ${s.toFixed(3)}`);
  });
});
