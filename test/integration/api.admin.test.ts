import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

describe("admin API", () => {
  let api: TestApi;
  const admin = () => ({ authorization: `Bearer ${api.adminToken}` });
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional" } });
  });
  after(() => api.stop());

  it("refuses every admin surface without admin credentials, including with a tenant key", async () => {
    for (const [method, path] of [
      ["GET", "/v1/admin/tenants"],
      ["PUT", "/v1/admin/tenants/x"],
      ["POST", "/v1/admin/tenants/clinic/keys"],
      ["GET", "/v1/admin/audit"],
      ["GET", "/admin/queues"],
      ["GET", "/admin/queues/api/queues"],
      ["GET", "/metrics"],
    ] as const) {
      for (const headers of [
        {} as Record<string, string>,
        { authorization: `Bearer ${api.keys.clinic}` },
        { authorization: `Basic ${Buffer.from("admin:wrong").toString("base64")}` },
      ]) {
        const r = await http(api.base, method, path, { headers });
        assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(headers)}`);
      }
    }
  });

  it("lists and reads tenants with their resolved policy", async () => {
    const list = await http(api.base, "GET", "/v1/admin/tenants", { headers: admin() });
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.tenants.map((t: { tenant: string }) => t.tenant),
      ["clinic"],
    );
    const one = await http(api.base, "GET", "/v1/admin/tenants/clinic", { headers: admin() });
    assert.equal(one.body.policy.mca, 10);
    assert.equal(one.body.spec.tier, "professional");
    assert.equal((await http(api.base, "GET", "/v1/admin/tenants/nobody", { headers: admin() })).status, 404);
  });

  it("creates and replaces a policy, and refuses an invalid one naming the field", async () => {
    const created = await http(api.base, "PUT", "/v1/admin/tenants/lab", { headers: admin(), body: { tier: "free", mca: 2 } });
    assert.equal(created.status, 201);
    assert.equal(created.body.policy.mca, 2);
    const replaced = await http(api.base, "PUT", "/v1/admin/tenants/lab", { headers: admin(), body: { tier: "free", mca: 3 } });
    assert.equal(replaced.status, 200);
    const bad = await http(api.base, "PUT", "/v1/admin/tenants/lab", {
      headers: admin(),
      body: { tier: "free", mca: 5, burst: { mca: 1 } },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /burst\.mca: must be >= mca/);
    assert.equal((await http(api.base, "GET", "/v1/admin/tenants/lab", { headers: admin() })).body.policy.mca, 3, "unchanged");
    const badId = await http(api.base, "PUT", "/v1/admin/tenants/Not%20Valid", { headers: admin(), body: { tier: "free" } });
    assert.equal(badId.status, 400);
    const malformed = await http(api.base, "PUT", "/v1/admin/tenants/lab", { headers: admin(), raw: "{tier:" });
    assert.equal(malformed.status, 400);
  });

  it("issues a key once, and a revoked key answers 401 within a second", async () => {
    await http(api.base, "PUT", "/v1/admin/tenants/keyed", { headers: admin(), body: { tier: "free" } });
    const k = await http(api.base, "POST", "/v1/admin/tenants/keyed/keys", { headers: admin(), body: { label: "batch" } });
    assert.equal(k.status, 201);
    assert.match(k.body.key, /^flk_/);
    const listed = await http(api.base, "GET", "/v1/admin/tenants/keyed/keys", { headers: admin() });
    assert.deepEqual(
      listed.body.keys.map((x: { keyId: string }) => x.keyId),
      [k.body.keyId],
    );
    assert.ok(!JSON.stringify(listed.body).includes(k.body.key), "the key itself is never shown again");
    const ok = await http(api.base, "POST", "/v1/workflows", { key: k.body.key, body: { type: "noop" } });
    assert.equal(ok.status, 202);
    const del = await http(api.base, "DELETE", `/v1/admin/tenants/keyed/keys/${k.body.keyId}`, { headers: admin() });
    assert.equal(del.status, 204);
    await sleep(1000);
    const revoked = await http(api.base, "POST", "/v1/workflows", { key: k.body.key, body: { type: "noop" } });
    assert.equal(revoked.status, 401);
    const stored = await api.platform.redis.hgetall(api.platform.keys.registry.apiKeys);
    assert.ok(!JSON.stringify(stored).includes(k.body.key), "keys are stored hashed");
  });

  it("records who did what in the audit log", async () => {
    await http(api.base, "PUT", "/v1/admin/tenants/audited", {
      headers: { ...admin(), "x-fairlane-operator": "oncall.alice" },
      body: { tier: "free" },
    });
    const log = await http(api.base, "GET", "/v1/admin/audit?limit=5", { headers: admin() });
    const entry = log.body.entries.find((e: { target: string }) => e.target === "audited");
    assert.equal(entry.operator, "oncall.alice");
    assert.equal(entry.action, "tenant.create");
    assert.ok(Date.parse(entry.at) > 0);
  });

  it("shows Bull Board with each ingress queue after an enqueue (Basic auth for browsers)", async () => {
    await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop", class: "A" } });
    await api.bullBoard.refresh();
    const basic = `Basic ${Buffer.from(`alice:${api.adminToken}`).toString("base64")}`;
    const page = await http(api.base, "GET", "/admin/queues", { headers: { authorization: basic } });
    assert.equal(page.status, 200);
    assert.match(String(page.body), /<html/i);
    const queues = await http(api.base, "GET", "/admin/queues/api/queues", { headers: { authorization: basic } });
    const names = queues.body.queues.map((q: { name: string }) => q.name);
    assert.ok(names.includes("ingress.clinic.A"), names.join());
    assert.ok(names.includes("exec.default") && names.includes("parked"), names.join());
    const clinicA = queues.body.queues.find((q: { name: string }) => q.name === "ingress.clinic.A");
    assert.equal(clinicA.counts.waiting, 1);
    // Script-fed queues have no BullMQ worker by design: "not applicable" (null, no "No workers" warning)
    // and a description saying why; the exec queue's missing worker is real (false: the warning shows).
    const byName = (n: string) => queues.body.queues.find((q: { name: string }) => q.name === n);
    assert.deepEqual([clinicA.hasWorkers, byName("parked").hasWorkers, byName("exec.default").hasWorkers], [null, null, false]);
    assert.match(clinicA.description, /no BullMQ worker consumes it, by design/);
  });

  it("serves Prometheus metrics to admins", async () => {
    const r = await http(api.base, "GET", "/metrics", { headers: admin() });
    assert.equal(r.status, 200);
    assert.match(String(r.body), /# HELP fairlane_tool_calls_total/);
    assert.match(String(r.body), /# TYPE fairlane_tool_gate_wait_seconds histogram/);
  });

  it("answers readiness only while Redis answers", async () => {
    const r = await http(api.base, "GET", "/readyz");
    assert.equal(r.status, 200);
    assert.equal((await http(api.base, "GET", "/healthz")).status, 200);
  });
});

describe("admin API: backpressure controls", () => {
  let api: TestApi;
  const admin = () => ({ authorization: `Bearer ${api.adminToken}` });
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional" } });
  });
  after(() => api.stop());

  it("marks a dependency down and up by hand, lists it, and audits who did it", async () => {
    const down = await http(api.base, "PUT", "/v1/admin/dependencies/fhir-gateway", {
      headers: { ...admin(), "x-fairlane-operator": "oncall.bob" },
      body: { state: "down" },
    });
    assert.equal(down.status, 200);
    assert.equal(down.body.health.state, "down");
    assert.equal(down.body.health.source, "operator");
    const list = await http(api.base, "GET", "/v1/admin/dependencies", { headers: admin() });
    const gw = list.body.dependencies.find((x: { dependency: string }) => x.dependency === "fhir-gateway");
    assert.deepEqual([gw.healthy, gw.parked], [false, 0]);
    const cleared = await http(api.base, "PUT", "/v1/admin/dependencies/fhir-gateway", { headers: admin(), body: { state: null } });
    assert.equal(cleared.status, 200);
    const bad = await http(api.base, "PUT", "/v1/admin/dependencies/x:override", { headers: admin(), body: { state: "down" } });
    assert.equal(bad.status, 400);
    const audit = await http(api.base, "GET", "/v1/admin/audit?limit=5", { headers: admin() });
    assert.ok(
      audit.body.entries.some((e: { operator: string; action: string }) => e.operator === "oncall.bob" && e.action === "dependency.mark"),
    );
  });

  it("lists parked workflows and lets an operator requeue or fail one", async () => {
    const cell = api.platform.keys.cell("default");
    // Park two workflows the way the dispatcher does while their dependency is down.
    await api.platform.redis.hset(cell.workflowDeps, "needs-gw", "gw");
    await api.platform.redis.hset(cell.healthOverride("gw"), "state", "down");
    const ids = (
      await api.platform.admission.admitBulk("clinic", [{ type: "needs-gw" }, { type: "needs-gw" }], "0".repeat(32))
    ).accepted.map((a) => a.id);
    await new (await import("../../src/dispatch/tenantSync.ts")).TenantSync(api.platform.redis, api.platform.keys).sync(
      "default",
      api.platform.registry.list(),
    );
    await (await import("../../queues/lua/heartbeat.ts")).heartbeat(
      api.platform.redis,
      cell,
      "default",
      "fake",
      5,
      Date.now(),
      Date.now() + 60_000,
    );
    const { dispatch } = await import("../../queues/lua/dispatch.ts");
    const r = await dispatch(api.platform.redis, cell, "default", Date.now(), {
      maxMoves: 10,
      reserveA: 0.1,
      batchMaxShare: 0.5,
      batchMinShare: 0.05,
      maxRefresh: 100,
      capacityCap: 0,
      recordTtlSec: 60,
    });
    assert.equal(r.parked, 2);
    const list = await http(api.base, "GET", "/v1/admin/parked?dependency=gw&tenant=clinic", { headers: admin() });
    assert.deepEqual(list.body.parked.map((p: { id: string }) => p.id).sort(), [...ids].sort());
    assert.equal((await http(api.base, "POST", `/v1/admin/parked/${ids[0]}/requeue`, { headers: admin() })).body.outcome, "requeued");
    assert.equal(
      (await http(api.base, "POST", `/v1/admin/parked/${ids[1]}/fail`, { headers: admin(), body: { reason: "payer retired" } })).body
        .outcome,
      "failed",
    );
    assert.equal((await http(api.base, "POST", `/v1/admin/parked/${ids[1]}/fail`, { headers: admin() })).status, 404, "no longer parked");
    const failed = await http(api.base, "GET", `/v1/workflows/${ids[1]}`, { key: api.keys.clinic });
    assert.equal(failed.body.error.code, "FAILED_BY_OPERATOR");
    assert.match(failed.body.error.message, /payer retired/);
    assert.equal((await http(api.base, "GET", `/v1/workflows/${ids[0]}`, { key: api.keys.clinic })).body.state, "queued");
  });
});
