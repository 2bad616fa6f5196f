import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { dispatch, type DispatchResult } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { DEFAULT_EXPLAIN } from "../../src/workflows/explain.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * "Why is this tenant's work not running?", against the real dispatch script:
 * each test puts a tenant in its own pool, has the script (dispatch-18.lua,
 * with a fake exec worker's heartbeat for capacity) really hold its work for
 * one reason, then reads GET /v1/workflows/:id (waitingReason, waitingCode),
 * the admin's GET /v1/admin/workflows/:id and GET /v1/admin/tenants/:t/explain.
 * The script gets the share options the api runs with (the defaults here).
 */
describe("waitingReason and the tenant explain, from the dispatcher's own state", () => {
  let api: TestApi;
  const admin = () => ({ authorization: `Bearer ${api.adminToken}` });
  const noBurst = { mca: 0, seconds: 0, cooldownSeconds: 0 };
  const pro = (o: Record<string, unknown>) => ({ tier: "professional" as const, ...o });

  before(async () => {
    api = await startTestApi({
      batch: pro({ mca: 10, pools: ["p-share"] }),
      quiet: pro({ pools: ["p-free"] }),
      capped: pro({ mca: 2, burst: { ...noBurst, mca: 2 }, pools: ["p-mca"] }),
      bursty: pro({ mca: 1, burst: { mca: 3, seconds: 1, cooldownSeconds: 600 }, pools: ["p-burst"] }),
      urgent: pro({ mcaUrgent: 1, pools: ["p-urgent"] }),
      full: pro({ pools: ["p-full"] }),
      ahead: pro({ pools: ["p-pre"] }),
      resting: pro({ paused: true, pools: ["p-paused"] }),
      lonely: pro({ pools: ["p-none"] }),
      deps: pro({ pools: ["p-dep"] }),
      late: pro({ mca: 1, burst: { ...noBurst, mca: 1 }, pools: ["p-late"] }),
    } as never);
    // Orgs: "holding" bounds its tenants together (mca 2, mcaUrgent 1), "group" bounds nothing.
    await api.platform.registry.putOrg("holding", { mca: 2, mcaUrgent: 1 });
    await api.platform.registry.putOrg("group", {});
    const members = {
      bank1: pro({ mca: 5, burst: { ...noBurst, mca: 5 }, mcaUrgent: 2, org: "holding", pools: ["p-org"] }),
      bank2: pro({ mca: 5, burst: { ...noBurst, mca: 5 }, mcaUrgent: 2, org: "holding", pools: ["p-org"] }),
      team1: pro({ org: "group", pools: ["p-turn"] }),
      team2: pro({ org: "group", pools: ["p-turn"] }),
    };
    for (const [t, spec] of Object.entries(members)) {
      await api.platform.registry.put(t, spec);
      api.keys[t] = (await api.platform.apiKeys.create(t)).key;
    }
  });
  after(() => api.stop());

  const cell = () => api.platform.keys.cell("default");
  async function workers(pool: string, slots: number) {
    await heartbeat(api.platform.redis, cell(), pool, `w-${pool}`, slots, Date.now(), Date.now() + 60_000);
  }
  /** The policy sync a dispatcher does: tenants and orgs into the cell. */
  async function sync() {
    const { registry } = api.platform;
    await new TenantSync(api.platform.redis, api.platform.keys).sync("default", registry.list(), registry.orgs());
  }
  /** One real dispatch call for the pool, after the policy sync a dispatcher does first. */
  async function dispatchPool(pool: string, maxMoves = 50, prefetch = 0): Promise<DispatchResult> {
    await sync();
    const s = DEFAULT_EXPLAIN;
    return dispatch(api.platform.redis, cell(), pool, Date.now(), {
      maxMoves,
      reserveA: s.reserveFraction,
      batchMaxShare: s.batchMaxShare,
      batchMinShare: s.batchMinShare,
      maxRefresh: 100,
      capacityCap: 0,
      recordTtlSec: 60,
      prefetch,
    });
  }
  async function admit(tenant: string, items: Record<string, unknown>[]): Promise<string[]> {
    const r = await api.platform.admission.admitBulk(tenant, items, "0".repeat(32));
    assert.deepEqual(r.rejected, []);
    return r.accepted.map((a) => a.id);
  }
  /** The tenant's read and the admin's read agree; returns the tenant's. */
  async function read(tenant: string, id: string) {
    const own = await http(api.base, "GET", `/v1/workflows/${id}`, { key: api.keys[tenant] });
    assert.equal(own.status, 200);
    const adm = await http(api.base, "GET", `/v1/admin/workflows/${id}`, { headers: admin() });
    assert.equal(adm.status, 200);
    assert.deepEqual([adm.body.tenant, adm.body.waitingCode, adm.body.state], [tenant, own.body.waitingCode, own.body.state]);
    return own.body;
  }
  async function explain(tenant: string) {
    const r = await http(api.base, "GET", `/v1/admin/tenants/${tenant}/explain`, { headers: admin() });
    assert.equal(r.status, 200);
    return r.body;
  }

  it("a tenant whose Class C holds its pool share: class_c_share, with who holds the pool", async () => {
    await workers("p-share", 10);
    const ids = await admit(
      "batch",
      Array.from({ length: 6 }, () => ({ type: "nightly", class: "C" })),
    );
    const r = await dispatchPool("p-share");
    assert.equal(r.moved, 5, "capacity 10, batchMaxShare 0.5: 5 Class C start, the 6th is held");
    const states = await Promise.all(ids.map((id) => read("batch", id)));
    const queued = states.filter((w) => w.state === "queued");
    assert.equal(queued.length, 1);
    assert.equal(queued[0].waitingCode, "class_c_share", queued[0].waitingReason);
    // The tenant's own key reads the share, never who holds it (another tenant's name and slots); the admin reads both.
    assert.match(queued[0].waitingReason, /^Class C share 5\/5 of pool p-share$/);
    const adminRead = await http(api.base, "GET", `/v1/admin/workflows/${queued[0].id}`, { headers: admin() });
    assert.match(adminRead.body.waitingReason, /^Class C share 5\/5 of pool p-share; held by batch \(5\)$/);
    for (const w of states.filter((x) => x.state !== "queued")) assert.equal(w.waitingCode, undefined, "running work says nothing");

    const e = await explain("batch");
    assert.deepEqual([e.classes.C.queued, e.classes.C.running, e.classes.C.held.code], [1, 5, "class_c_share"]);
    assert.deepEqual([e.classes.C.held.usedC, e.classes.C.held.maxC, e.classes.C.held.holders], [5, 5, [{ tenant: "batch", slots: 5 }]]);
    assert.deepEqual([e.classes.A.held, e.classes.B.held], [null, null]);
    assert.equal(e.settings.batchMaxShare, 0.5);

    // The usage snapshot (dashboard) and the gauge say the same, once the sampler has read past the dispatch.
    await sleep(600);
    const usage = await http(api.base, "GET", "/v1/admin/usage/batch", { headers: admin() });
    assert.deepEqual(usage.body.tenant.held, { code: "class_c_share", message: adminRead.body.waitingReason });
    assert.deepEqual(usage.body.tenant.waitingBy, { class_c_share: 1 });
    const metrics = await http(api.base, "GET", "/metrics", { headers: admin() });
    assert.match(String(metrics.body), /^fairlane_waiting_workflows\{reason="class_c_share"\} [1-9]/m);
  });

  it("reads the share options the cell's dispatcher published, not this api's configuration", async () => {
    const cell = api.platform.keys.cell("default");
    const [id] = (await admit("batch", [{ type: "nightly", class: "C" }])).slice(-1);
    try {
      // A dispatcher running with batchMaxShare 0.8 gives Class C 8 of the 10 slots: 5 held is no longer the share.
      await api.platform.redis.hset(cell.dispatchSettings, {
        reserveFraction: 0.1,
        batchMaxShare: 0.8,
        batchMinShare: 0.05,
        capacityCap: 0,
      });
      const e = await explain("batch");
      assert.deepEqual([e.settings.batchMaxShare, e.settings.source], [0.8, "dispatcher"]);
      assert.notEqual(e.classes.C.held?.code, "class_c_share", JSON.stringify(e.classes.C.held));
      assert.notEqual((await read("batch", id!)).waitingCode, "class_c_share");
    } finally {
      await api.platform.redis.del(cell.dispatchSettings);
    }
    assert.equal((await explain("batch")).settings.source, "config");
  });

  it("negative control: with the share free, Class C is only waiting its turn, then runs", async () => {
    await workers("p-free", 10);
    const [id] = await admit("quiet", [{ type: "nightly", class: "C" }]);
    await sync();
    const before = await read("quiet", id!);
    assert.equal(before.waitingCode, "turn", before.waitingReason);
    assert.match(before.waitingReason, /^eligible; .*pool p-free/);
    assert.equal((await dispatchPool("p-free")).moved, 1);
    const afterDispatch = await read("quiet", id!);
    assert.deepEqual([afterDispatch.state, afterDispatch.waitingCode], ["running", undefined]);
  });

  it("a tenant at its mca: tenant_mca with running/mca", async () => {
    await workers("p-mca", 10);
    const ids = await admit("capped", [{ type: "t" }, { type: "t" }, { type: "t" }]);
    assert.equal((await dispatchPool("p-mca")).moved, 2);
    const w = await read("capped", ids[2]!);
    assert.equal(w.waitingCode, "tenant_mca");
    assert.equal(w.waitingReason, "tenant at its mca: 2/2 Class B/C running (its policy has no burst)");
    const e = await explain("capped");
    assert.deepEqual([e.classes.B.held.code, e.classes.B.held.running, e.classes.B.held.mca], ["tenant_mca", 2, 2]);
  });

  it("a tenant that used its burst: tenant_mca with the cooldown's end", async () => {
    await workers("p-burst", 10);
    const ids = await admit("bursty", [{ type: "t" }, { type: "t" }, { type: "t" }]);
    assert.equal((await dispatchPool("p-burst", 2)).moved, 2, "the second start opens the 1 s burst window");
    await sleep(1_100);
    assert.equal((await dispatchPool("p-burst")).moved, 0, "window closed: none above mca until the cooldown ends");
    const w = await read("bursty", ids[2]!);
    assert.equal(w.waitingCode, "tenant_mca");
    assert.match(w.waitingReason, /^tenant at its mca: 2\/1 Class B\/C running; burst used, cooldown until \d{4}-\d\d-\d\dT/);
    const e = await explain("bursty");
    assert.equal(e.classes.B.held.burst.state, "cooldown");
    assert.ok(e.classes.B.held.cooldownUntil > Date.now() + 590_000);
  });

  it("Class A at the tenant's mcaUrgent: tenant_urgent_cap", async () => {
    await workers("p-urgent", 10);
    const ids = await admit("urgent", [
      { type: "t", class: "A" },
      { type: "t", class: "A" },
    ]);
    assert.equal((await dispatchPool("p-urgent")).moved, 1);
    const w = await read("urgent", ids[1]!);
    assert.deepEqual([w.waitingCode, w.waitingReason], ["tenant_urgent_cap", "tenant at its mcaUrgent: 1/1 Class A running"]);
    assert.equal((await explain("urgent")).classes.A.held.code, "tenant_urgent_cap");
  });

  it("a tenant of an org under its own mca, the org at its mca: org_mca, with the org's totals and no other tenant's name", async () => {
    await workers("p-org", 10);
    await admit("bank1", [{ type: "t" }, { type: "t" }]);
    assert.equal((await dispatchPool("p-org")).moved, 2, "bank1 under its own mca of 5: both start, the org reaches its mca of 2");
    const [own] = await admit("bank2", [{ type: "t" }]);
    const [sibling] = await admit("bank1", [{ type: "t" }]);
    assert.equal((await dispatchPool("p-org")).moved, 0, "the org's cap holds both of its tenants");

    const w = await read("bank2", own!);
    assert.deepEqual(
      [w.waitingCode, w.waitingReason],
      ["org_mca", "org holding at its mca: 2/2 Class B/C running across its tenants, 0 of them this tenant's"],
    );
    const adminRead = await http(api.base, "GET", `/v1/admin/workflows/${own}`, { headers: admin() });
    assert.equal(
      adminRead.body.waitingReason,
      `${w.waitingReason}; held by bank1 (2)`,
      "the admin reads which tenants hold the org's slots",
    );
    const s = await read("bank1", sibling!);
    assert.deepEqual(
      [s.waitingCode, s.waitingReason],
      ["org_mca", "org holding at its mca: 2/2 Class B/C running across its tenants, 2 of them this tenant's"],
    );

    const e = await explain("bank2");
    const held = e.classes.B.held;
    assert.deepEqual(
      [held.code, held.org, held.running, held.mca, held.holders],
      ["org_mca", "holding", 2, 2, [{ tenant: "bank1", slots: 2 }]],
    );
    assert.deepEqual([e.classes.B.queued, e.classes.B.running], [1, 0]);

    // The dashboard's State column (the usage snapshot) names the org's cap too.
    await sleep(600);
    const usage = await http(api.base, "GET", "/v1/admin/usage/bank2", { headers: admin() });
    assert.equal(usage.body.tenant.held?.code, "org_mca");
  });

  it("Class A of a tenant of an org at the org's mcaUrgent: org_urgent_cap", async () => {
    await workers("p-org", 10);
    await admit("bank1", [{ type: "t", class: "A" }]);
    assert.equal((await dispatchPool("p-org")).moved, 1, "the org's mcaUrgent is 1");
    const [id] = await admit("bank2", [{ type: "t", class: "A" }]);
    assert.equal((await dispatchPool("p-org")).moved, 0);
    const w = await read("bank2", id!);
    assert.deepEqual(
      [w.waitingCode, w.waitingReason],
      ["org_urgent_cap", "org holding at its mcaUrgent: 1/1 Class A running across its tenants, 0 of them this tenant's"],
    );
    const held = (await explain("bank2")).classes.A.held;
    assert.deepEqual([held.code, held.running, held.mcaUrgent, held.holders], ["org_urgent_cap", 1, 1, [{ tenant: "bank1", slots: 1 }]]);
  });

  it("tenants of an org take turns in the org's ready set: turn says who is ahead, to the admin only", async () => {
    await workers("p-turn", 10);
    const ids = { team1: (await admit("team1", [{ type: "t" }]))[0]!, team2: (await admit("team2", [{ type: "t" }]))[0]! };
    assert.equal(
      (await dispatchPool("p-turn", 0)).moved,
      0,
      "no moves: the refresh puts both in the org's ready set, the org in the pool's",
    );
    const held = { team1: (await explain("team1")).classes.B.held, team2: (await explain("team2")).classes.B.held };
    for (const h of Object.values(held)) assert.deepEqual([h.code, h.org, h.ahead], ["turn", "group", 0], h.message);
    assert.deepEqual([held.team1.aheadInOrg, held.team2.aheadInOrg].sort(), [0, 1], "one of the two is first in the org's set");
    const second = held.team1.aheadInOrg === 1 ? "team1" : "team2";
    assert.match(held[second].message, /^eligible; waiting its fair turn in pool p-turn: 1 other tenant of org group ahead of it/);
    const adminRead = await http(api.base, "GET", `/v1/admin/workflows/${ids[second]}`, { headers: admin() });
    assert.match(adminRead.body.waitingReason, /1 other tenant of org group ahead of it/);
    const own = await read(second, ids[second]);
    assert.equal(own.waitingCode, "turn");
    assert.match(
      own.waitingReason,
      /^eligible; waiting its fair turn in pool p-turn: its org group takes its turn among the pool's tenants and orgs/,
    );
    assert.doesNotMatch(own.waitingReason, /ahead of it|team/, "the tenant's own read counts and names no other tenant");
    assert.equal((await dispatchPool("p-turn")).moved, 2);
  });

  it("a full pool: pool_full, naming the Class A reserve when that is all that is free", async () => {
    await workers("p-full", 2);
    const ids = await admit("full", [{ type: "t" }, { type: "t" }]);
    assert.equal((await dispatchPool("p-full")).moved, 1, "capacity 2: 1 general slot, 1 reserved for Class A");
    const w = await read("full", ids[1]!);
    assert.equal(w.waitingCode, "pool_full");
    assert.equal(w.waitingReason, "pool p-full full for Class B/C: 1/2 slots in use, the 1 free slot is the Class A reserve (1)");
    await admit("full", [{ type: "t", class: "A" }]);
    assert.equal((await dispatchPool("p-full")).moved, 1, "Class A takes the reserve");
    const full = await read("full", ids[1]!);
    assert.deepEqual([full.waitingCode, full.waitingReason], ["pool_full", "pool p-full full: 2/2 slots in use"]);
    const e = await explain("full");
    assert.deepEqual(
      [e.classes.B.held.code, e.classes.B.held.used, e.classes.B.held.capacity, e.classes.B.held.reserveA],
      ["pool_full", 2, 2, 1],
    );
  });

  it("a pool with a prefetch: the slots beyond capacity the dispatcher gave its last call are counted and shown", async () => {
    await workers("p-pre", 2);
    const ids = await admit("ahead", [{ type: "t" }, { type: "t" }, { type: "t" }]);
    assert.equal((await dispatchPool("p-pre", 50, 1)).moved, 2, "capacity 2 + prefetch 1, of which 1 reserved for Class A");
    const w = await read("ahead", ids[2]!);
    assert.deepEqual(
      [w.waitingCode, w.waitingReason],
      ["pool_full", "pool p-pre full for Class B/C: 2/2 (+1 prefetch) slots in use, the 1 free slot is the Class A reserve (1)"],
    );
    assert.equal((await dispatchPool("p-pre", 50, 0)).moved, 0);
    assert.equal(
      (await read("ahead", ids[2]!)).waitingReason,
      "pool p-pre full: 2/2 slots in use",
      "the next call's prefetch, 0, is what it says",
    );
  });

  it("a paused tenant: paused", async () => {
    await workers("p-paused", 10);
    const [id] = await admit("resting", [{ type: "t" }]);
    assert.equal((await dispatchPool("p-paused")).moved, 0);
    const w = await read("resting", id!);
    assert.equal(w.waitingCode, "paused");
    assert.equal((await explain("resting")).classes.B.held.code, "paused");
  });

  it("no live exec worker in the tenant's pools: no_worker", async () => {
    const [id] = await admit("lonely", [{ type: "t" }]);
    assert.equal((await dispatchPool("p-none")).capacity, 0);
    const w = await read("lonely", id!);
    assert.equal(w.waitingCode, "no_worker");
    assert.match(w.waitingReason, /\(p-none\)/);
  });

  it("a tenant no dispatcher has synced yet: not_synced", async () => {
    assert.equal(
      (await http(api.base, "PUT", "/v1/admin/tenants/fresh", { headers: admin(), body: { tier: "professional", pools: ["p-fresh"] } }))
        .status,
      201,
    );
    api.keys.fresh = (await api.platform.apiKeys.create("fresh")).key;
    const [id] = await admit("fresh", [{ type: "t" }]);
    const w = await read("fresh", id!);
    assert.equal(w.waitingCode, "not_synced", w.waitingReason);
  });

  it("a dependency down: held back while queued, then parked by the dispatcher, since when", async () => {
    await workers("p-dep", 10);
    await api.platform.redis.hset(cell().workflowDeps, "needs-gw2", "gw2");
    assert.equal((await http(api.base, "PUT", "/v1/admin/dependencies/gw2", { headers: admin(), body: { state: "down" } })).status, 200);
    const [id] = await admit("deps", [{ type: "needs-gw2" }]);
    await sync();
    const queued = await read("deps", id!);
    assert.equal(queued.waitingCode, "dependency_down");
    assert.match(queued.waitingReason, /^held back: dependency gw2 is down since .*\(operator mark\); the dispatcher parks it/);
    const e1 = await explain("deps");
    assert.ok(e1.reasons.some((r: { code: string; dependency?: string }) => r.code === "dependency_down" && r.dependency === "gw2"));

    assert.equal((await dispatchPool("p-dep")).parked, 1);
    const parked = await read("deps", id!);
    assert.deepEqual(
      [parked.state, parked.waitingCode, parked.parkReason],
      ["parked", "dependency_down", "held back at dispatch: gw2 is down"],
    );
    assert.ok(Math.abs(Date.parse(parked.parkedSince) - Date.now()) < 10_000);
    assert.match(parked.waitingReason, /^parked since .*: held back at dispatch: gw2 is down; gw2 is down now/);
    const e2 = await explain("deps");
    const r = e2.reasons.find((x: { code: string }) => x.code === "dependency_down");
    assert.deepEqual([r.dependency, r.parked, r.heldBack], ["gw2", 1, true]);
  });

  it("a deadline about to pass while held: deadline_soon, with what holds it", async () => {
    await workers("p-late", 10);
    await admit("late", [{ type: "t" }]);
    assert.equal((await dispatchPool("p-late")).moved, 1);
    const [id] = await admit("late", [{ type: "t", deadlineAt: new Date(Date.now() + 5_000).toISOString() }]);
    assert.equal((await dispatchPool("p-late")).moved, 0);
    const w = await read("late", id!);
    assert.equal(w.waitingCode, "deadline_soon");
    assert.match(w.waitingReason, /^deadline passes in [1-5] s \(.*\) unless it starts; tenant at its mca: 1\/1 Class B\/C running/);
    const e = await explain("late");
    assert.equal(e.classes.B.held.code, "tenant_mca");
    assert.ok(
      e.reasons.some((r: { code: string; cause?: { code: string } }) => r.code === "deadline_soon" && r.cause?.code === "tenant_mca"),
    );
  });

  it("answers 400 for a bad id and 404 for an unknown tenant or workflow", async () => {
    assert.equal((await http(api.base, "GET", "/v1/admin/tenants/Bad!/explain", { headers: admin() })).status, 400);
    assert.equal((await http(api.base, "GET", "/v1/admin/tenants/ghost/explain", { headers: admin() })).status, 404);
    assert.equal((await http(api.base, "GET", "/v1/admin/workflows/nope", { headers: admin() })).status, 400);
    assert.equal((await http(api.base, "GET", "/v1/admin/workflows/wf_AAAAAAAAAAAAAAAAAAAA", { headers: admin() })).status, 404);
    assert.equal((await http(api.base, "GET", "/v1/admin/tenants/batch/explain", { key: api.keys.batch })).status, 401);
    assert.equal(
      (await http(api.base, "GET", "/v1/admin/workflows?tenant=batch", { headers: admin() })).status,
      200,
      "the list is still the list",
    );
  });
});
