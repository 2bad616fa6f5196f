import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WorkflowClass } from "../../queues/keys.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import type { DispatchCaps } from "../../src/dispatch/policy/caps.ts";
import {
  capsFromHash,
  countByReason,
  explainClass,
  explainTenantState,
  explainWorkflow,
  headlineReason,
  poolCapacity,
  orgCapsFromHash,
  REASON_CODES,
  type OrgState,
  type PoolView,
  type TenantState,
} from "../../src/dispatch/policy/explain.ts";
import { DEFAULT_SHARES } from "../../src/dispatch/policy/shares.ts";
import { caps } from "../helpers/simulate.ts";

/**
 * The explain rule asked with plain objects and a fake clock: each case sets
 * up the state the dispatch script would see and names the constraint that
 * holds the class, with the numbers an on-call engineer needs.
 */
const clock = new FakeClock(Date.UTC(2026, 0, 1));
const T0 = clock.now();

const pool = (o: Partial<PoolView> = {}): PoolView => ({ pool: "default", capacity: 10, used: 0, usedA: 0, usedC: 0, ...o });

function state(
  o: {
    caps?: Partial<DispatchCaps> | null;
    running?: { A?: number; BC?: number };
    queued?: Partial<Record<WorkflowClass, number>>;
    pools?: PoolView[];
    now?: number;
    org?: OrgState;
  } = {},
): TenantState {
  return {
    now: o.now ?? T0,
    caps: o.caps === null ? null : { ...caps({ mca: 5, burstMca: 5, mcaUrgent: 2 }), ...o.caps },
    running: { A: 0, BC: 0, ...o.running },
    queued: { A: 0, B: 0, C: 0, ...o.queued },
    ...(o.org ? { org: o.org } : {}),
    pools: o.pools ?? [pool()],
    shares: DEFAULT_SHARES,
  };
}

describe("explain: the constraint holding a tenant's queued class", () => {
  const cases: { name: string; s: TenantState; cls: WorkflowClass; code: string; message?: RegExp; fields?: Record<string, unknown> }[] = [
    { name: "nothing queued: no reason", s: state(), cls: "B", code: "none" },
    { name: "caps not synced by a dispatcher", s: state({ caps: null, queued: { B: 1 } }), cls: "B", code: "not_synced" },
    { name: "a paused tenant", s: state({ caps: { paused: true }, queued: { C: 3 } }), cls: "C", code: "paused", message: /paused/ },
    {
      name: "no live worker in its pools",
      s: state({
        caps: { pools: ["eu", "eu-dedicated"] },
        queued: { B: 1 },
        pools: [pool({ pool: "eu", capacity: 0 }), pool({ pool: "eu-dedicated", capacity: 0 })],
      }),
      cls: "B",
      code: "no_worker",
      message: /\(eu, eu-dedicated\)/,
    },
    {
      name: "Class A at mcaUrgent",
      s: state({ running: { A: 2 }, queued: { A: 1 } }),
      cls: "A",
      code: "tenant_urgent_cap",
      message: /^tenant at its mcaUrgent: 2\/2 Class A running$/,
      fields: { running: 2, mcaUrgent: 2 },
    },
    {
      name: "at mca with no burst",
      s: state({ running: { BC: 5 }, queued: { B: 1 } }),
      cls: "B",
      code: "tenant_mca",
      message: /^tenant at its mca: 5\/5 Class B\/C running \(its policy has no burst\)$/,
    },
    {
      name: "at burst.mca while the window is open",
      s: state({
        caps: { burstMca: 8, burstMs: 60_000, cooldownMs: 600_000, burstStart: T0 - 1_000 },
        running: { BC: 8 },
        queued: { C: 1 },
      }),
      cls: "C",
      code: "tenant_mca",
      message: /^tenant at its burst cap: 8\/8 Class B\/C running \(mca 5, burst window open until 2026-01-01T00:00:59\.000Z\)$/,
    },
    {
      name: "at mca, burst used, cooling down",
      s: state({
        caps: { burstMca: 8, burstMs: 60_000, cooldownMs: 600_000, burstStart: T0 - 61_000 },
        running: { BC: 5 },
        queued: { B: 2 },
      }),
      cls: "B",
      code: "tenant_mca",
      message: /burst used, cooldown until 2026-01-01T00:09:59\.000Z$/,
      fields: { cooldownUntil: T0 - 61_000 + 660_000 },
    },
    {
      name: "under mca with a burst available: not held by its cap",
      s: state({ caps: { burstMca: 8, burstMs: 60_000, cooldownMs: 600_000 }, running: { BC: 5 }, queued: { B: 1 } }),
      cls: "B",
      code: "turn",
    },
    {
      name: "Class C at its pool share",
      s: state({
        queued: { C: 76 },
        running: { BC: 5 },
        caps: { mca: 150, burstMca: 150 },
        pools: [pool({ used: 5, usedC: 5, holdersC: [{ tenant: "acme", slots: 5 }] })],
      }),
      cls: "C",
      code: "class_c_share",
      message: /^Class C share 5\/5 of pool default; held by acme \(5\)$/,
      fields: { usedC: 5, maxC: 5 },
    },
    {
      name: "Class B is not held by the Class C share",
      s: state({ queued: { B: 1 }, pools: [pool({ used: 5, usedC: 5 })] }),
      cls: "B",
      code: "turn",
    },
    {
      name: "pool full",
      s: state({ queued: { B: 1 }, pools: [pool({ used: 10 })] }),
      cls: "B",
      code: "pool_full",
      message: /^pool default full: 10\/10 slots in use$/,
    },
    {
      name: "pool full with its prefetch: the prefetch counts, and is shown",
      s: state({ queued: { B: 1 }, pools: [pool({ used: 13, prefetch: 3 })] }),
      cls: "B",
      code: "pool_full",
      message: /^pool default full: 13\/10 \(\+3 prefetch\) slots in use$/,
    },
    {
      name: "a prefetch slot free: Class B waits only its turn",
      s: state({ queued: { B: 1 }, pools: [pool({ used: 11, prefetch: 3 })] }),
      cls: "B",
      code: "turn",
    },
    {
      name: "only the Class A reserve is free",
      s: state({ queued: { C: 1 }, pools: [pool({ used: 9 })] }),
      cls: "C",
      code: "pool_full",
      message: /the 1 free slot is the Class A reserve \(1\)$/,
    },
    { name: "Class A takes the reserve", s: state({ queued: { A: 1 }, pools: [pool({ used: 9 })] }), cls: "A", code: "turn" },
    {
      name: "Class A in a full pool asks Class C to yield",
      s: state({ queued: { A: 1 }, pools: [pool({ used: 10, usedC: 4 })] }),
      cls: "A",
      code: "pool_full",
      message: /asked to yield/,
    },
    {
      name: "eligible: its fair turn behind tenants with lower virtual time",
      s: state({ queued: { B: 1 }, pools: [pool({ used: 3, ready: { B: { size: 4, ahead: 3 } } })] }),
      cls: "B",
      code: "turn",
      message: /3 tenants or orgs ahead of it in Class B/,
      fields: { ahead: 3 },
    },
    {
      name: "Class C behind ready Class B above its minimum",
      s: state({ queued: { C: 1 }, pools: [pool({ used: 2, usedC: 2, ready: { B: { size: 1, ahead: null } } })] }),
      cls: "C",
      code: "turn",
      message: /Class B goes first/,
    },
    {
      name: "several pools: the one closest to starting it",
      s: state({
        caps: { pools: ["a", "b"] },
        queued: { C: 1 },
        pools: [pool({ pool: "a", used: 5, usedC: 5 }), pool({ pool: "b", capacity: 4 })],
      }),
      cls: "C",
      code: "turn",
      fields: { pool: "b" },
    },
    {
      name: "several pools, held in every one: the first pool's reason",
      s: state({
        caps: { pools: ["a", "b"] },
        queued: { C: 1 },
        pools: [pool({ pool: "a", used: 5, usedC: 5 }), pool({ pool: "b", used: 10 })],
      }),
      cls: "C",
      code: "class_c_share",
      fields: { pool: "a" },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const r = explainClass(c.s, c.cls);
      assert.equal(r?.code ?? "none", c.code, r?.message);
      if (c.message) assert.match(r!.message, c.message);
      for (const [k, v] of Object.entries(c.fields ?? {})) assert.deepEqual((r as unknown as Record<string, unknown>)[k], v, k);
    });
});

/** Org "holding" (mca 4, mcaUrgent 1 by default), its tenants holding `running` slots together. */
const holding = (o: { mca?: number; mcaUrgent?: number; A?: number; BC?: number; holders?: OrgState["holders"] } = {}): OrgState => ({
  org: "holding",
  caps: { weight: 1, mca: o.mca ?? 4, mcaUrgent: o.mcaUrgent ?? 1 },
  running: { A: o.A ?? 0, BC: o.BC ?? 0 },
  ...(o.holders ? { holders: o.holders } : {}),
});

describe("explain: a tenant of an org", () => {
  it("org_mca: under its own mca, held because its org's tenants run the org's mca together", () => {
    const r = explainClass(state({ caps: { org: "holding" }, running: { BC: 1 }, queued: { B: 1 }, org: holding({ BC: 4 }) }), "B")!;
    assert.equal(r.code, "org_mca");
    assert.equal(r.message, "org holding at its mca: 4/4 Class B/C running across its tenants, 1 of them this tenant's");
    assert.deepEqual([r.org, r.running, r.mca], ["holding", 4, 4]);
  });

  it("org_urgent_cap: Class A at the org's mcaUrgent, Class B/C of the same tenant not held by it", () => {
    const s = state({ caps: { org: "holding" }, queued: { A: 1, C: 1 }, org: holding({ A: 1, BC: 2 }) });
    const r = explainClass(s, "A")!;
    assert.equal(r.code, "org_urgent_cap");
    assert.equal(r.message, "org holding at its mcaUrgent: 1/1 Class A running across its tenants, 0 of them this tenant's");
    assert.deepEqual([r.running, r.mcaUrgent], [1, 1]);
    assert.equal(explainClass(s, "C")?.code, "turn");
  });

  it("names which of its tenants hold the org's slots when the holders were read (the admin's read)", () => {
    const holders = {
      A: [],
      BC: [
        { tenant: "bank1", slots: 3 },
        { tenant: "bank2", slots: 1 },
      ],
    };
    const r = explainClass(state({ caps: { org: "holding" }, queued: { B: 1 }, org: holding({ BC: 4, holders }) }), "B")!;
    assert.match(r.message, /this tenant's; held by bank1 \(3\), bank2 \(1\)$/);
    assert.deepEqual(r.holders, holders.BC);
  });

  it("its own caps come first: at its own mca, tenant_mca even with the org at its cap", () => {
    const r = explainClass(state({ caps: { org: "holding" }, running: { BC: 5 }, queued: { B: 1 }, org: holding({ BC: 9, mca: 9 }) }), "B");
    assert.equal(r?.code, "tenant_mca");
  });

  it("the org's cap comes before the pool: org_mca in a full pool", () => {
    const r = explainClass(
      state({ caps: { org: "holding" }, queued: { B: 1 }, pools: [pool({ used: 10 })], org: holding({ BC: 4 }) }),
      "B",
    );
    assert.equal(r?.code, "org_mca");
  });

  it("an org without caps in the cell holds its tenants as not_synced", () => {
    const r = explainClass(state({ caps: { org: "holding" }, queued: { B: 1 }, org: { ...holding(), caps: null } }), "B");
    assert.equal(r?.code, "not_synced");
    assert.match(r!.message, /org holding/);
  });

  it("turn behind other flows: flows ahead of its org in the pool's ready set", () => {
    const ready = { B: { size: 3, ahead: 2, inOrg: { size: 1, ahead: 0 } } };
    const r = explainClass(state({ caps: { org: "holding" }, queued: { B: 1 }, pools: [pool({ ready })], org: holding() }), "B")!;
    assert.equal(r.code, "turn");
    assert.match(r.message, /: its org holding behind 2 tenants or orgs in Class B \(0\/10 slots in use\)$/);
    assert.deepEqual([r.org, r.ahead, r.aheadInOrg], ["holding", 2, 0]);
  });

  it("turn behind its org's other tenants: the org is next, they rank before it in the org's set", () => {
    const ready = { B: { size: 3, ahead: 0, inOrg: { size: 2, ahead: 1 } } };
    const r = explainClass(state({ caps: { org: "holding" }, queued: { B: 1 }, pools: [pool({ ready })], org: holding() }), "B")!;
    assert.match(r.message, /: 1 other tenant of org holding ahead of it \(/);
    assert.doesNotMatch(r.message, /behind/);
  });

  it("turn with no ranks known (the tenant's own read): the two turns it takes, no numbers", () => {
    const ready = { B: { size: 3, ahead: null } };
    const r = explainClass(state({ caps: { org: "holding" }, queued: { B: 1 }, pools: [pool({ ready })], org: holding() }), "B")!;
    assert.equal(r.code, "turn");
    assert.match(
      r.message,
      /: its org holding takes its turn among the pool's tenants and orgs, then this tenant among the org's tenants \(/,
    );
  });

  it("an org that does not bound a class (UNBOUNDED caps) holds nothing", () => {
    const org = holding({ mca: 1_000_000_000, mcaUrgent: 1_000_000_000, A: 3, BC: 40 });
    const s = state({ caps: { org: "holding", mca: 50, burstMca: 50, mcaUrgent: 5 }, queued: { A: 1, B: 1 }, org });
    assert.deepEqual([explainClass(s, "A")?.code, explainClass(s, "B")?.code], ["turn", "turn"]);
  });

  it("registers the org codes after the tenant's own caps, before the pool's", () => {
    const i = (c: string) => REASON_CODES.indexOf(c as never);
    assert.ok(i("tenant_mca") < i("org_urgent_cap") && i("org_urgent_cap") < i("org_mca") && i("org_mca") < i("pool_full"));
  });
});

describe("explain: one workflow and the tenant headline", () => {
  const held = explainClass(state({ queued: { C: 3 }, pools: [pool({ used: 5, usedC: 5 })] }), "C")!;

  it("names a down dependency of its type before its class's hold", () => {
    const r = explainWorkflow(held, { deadlineAt: null, down: { dependency: "gw", since: T0 - 5_000, source: "operator" } }, T0, 10_000);
    assert.equal(r.code, "dependency_down");
    assert.match(r.message, /^held back: dependency gw is down since 2025-12-31T23:59:55\.000Z \(operator mark\); the dispatcher parks it/);
  });

  it("says a deadline is about to pass, with what holds it meanwhile", () => {
    const r = explainWorkflow(held, { deadlineAt: T0 + 4_000, down: null }, T0, 10_000);
    assert.equal(r.code, "deadline_soon");
    assert.equal(r.cause?.code, "class_c_share");
    assert.match(r.message, /^deadline passes in 4 s .*; Class C share 5\/5 of pool default$/);
    assert.equal(explainWorkflow(held, { deadlineAt: T0 + 60_000, down: null }, T0, 10_000).code, "class_c_share", "not soon yet");
    assert.match(explainWorkflow(held, { deadlineAt: T0 - 1, down: null }, T0, 10_000).message, /DEADLINE_EXCEEDED/);
  });

  it("keeps paused above everything a workflow has of its own", () => {
    const paused = explainClass(state({ caps: { paused: true }, queued: { B: 1 } }), "B")!;
    assert.equal(
      explainWorkflow(paused, { deadlineAt: null, down: { dependency: "gw", since: null, source: "probe" } }, T0, 10_000).code,
      "paused",
    );
  });

  it("headlines the first hold that is not a turn, and counts queued work per reason", () => {
    const s = state({ queued: { B: 2, C: 76 }, caps: { mca: 150, burstMca: 150 }, pools: [pool({ used: 5, usedC: 5 })] });
    const { held: h, reasons } = explainTenantState(s);
    assert.deepEqual([h.A, h.B?.code, h.C?.code], [null, "turn", "class_c_share"]);
    assert.equal(reasons.length, 2);
    assert.equal(headlineReason(h)?.code, "class_c_share");
    assert.deepEqual(countByReason(s.queued, h), { turn: 2, class_c_share: 76 });
    assert.equal(headlineReason(explainTenantState(state()).held), null, "nothing queued: nothing held");
  });
});

describe("explain: reading the script's state", () => {
  it("parses tp:<t> as tenantCaps.lua does", () => {
    assert.equal(capsFromHash({}), null);
    const c = capsFromHash({
      weight: "2",
      mca: "5",
      burstMca: "8",
      burstMs: "60000",
      cooldownMs: "0",
      mcaUrgent: "1",
      paused: "0",
      pools: "a,b",
      burstStart: "17",
    })!;
    assert.deepEqual([c.mca, c.paused, c.pools, c.burstStart], [5, false, ["a", "b"], 17]);
    assert.equal(capsFromHash({ mca: "1", paused: "1" })!.paused, true);
    assert.equal(c.org, undefined, "no org field: no org");
    assert.equal(capsFromHash({ mca: "1", org: "" })!.org, undefined, 'org "": none');
    assert.equal(capsFromHash({ mca: "1", org: "holding" })!.org, "holding");
  });

  it("parses tp:@<org> as the script reads an org's caps", () => {
    assert.equal(orgCapsFromHash({}), null);
    const h = { weight: "3", mca: "12", burstMca: "12", burstMs: "0", cooldownMs: "0", mcaUrgent: "1000000000", paused: "0", pools: "a" };
    assert.deepEqual(orgCapsFromHash(h), { weight: 3, mca: 12, mcaUrgent: 1_000_000_000 });
  });

  it("caps pool capacity as the script does", () => {
    assert.equal(poolCapacity([4, 6], 0), 10);
    assert.equal(poolCapacity([4, 6], 8), 8);
    assert.equal(poolCapacity([], 8), 0);
  });
});
