import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { acquirePermit } from "../../queues/lua/permits.ts";
import { LatencyTally } from "../../queues/latencyTally.ts";
import { bucketStart } from "../../src/usage/usageBuckets.ts";
import { UsageReader } from "../../src/usage/usageSnapshot.ts";
import { DEFAULT_SHARES } from "../../src/dispatch/policy/shares.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * The operator endpoints (src/api/operatorAdmin.ts) on a real Redis: admin
 * auth on every one, usage events recorded by the Lua scripts where they
 * happen and read back as rates and percentiles, partial policy changes,
 * drain, bad input answered 400 naming the field, and the snapshot's cost at
 * 1,000 tenants.
 */
describe("operator admin API", () => {
  let api: TestApi;
  const admin = () => ({ authorization: `Bearer ${api.adminToken}` });
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional" }, lab: { tier: "free", mca: 2, burst: { mca: 2 } } });
  });
  after(() => api.stop());

  it("refuses every operator endpoint and the dashboard without admin credentials", async () => {
    for (const [method, path] of [
      ["GET", "/v1/admin/usage"],
      ["GET", "/v1/admin/usage/clinic"],
      ["PATCH", "/v1/admin/tenants/clinic"],
      ["POST", "/v1/admin/tenants/clinic/pause"],
      ["POST", "/v1/admin/tenants/clinic/drain"],
      ["POST", "/v1/admin/tenants/clinic/parked/requeue"],
      ["GET", "/v1/admin/capacity-report"],
      ["GET", "/dashboard/"],
      ["GET", "/dashboard/app.js"],
    ] as const) {
      for (const headers of [
        {} as Record<string, string>,
        { authorization: `Bearer ${api.keys.clinic}` },
        { authorization: `Basic ${Buffer.from(`admin:${api.keys.clinic}`).toString("base64")}` },
      ]) {
        const r = await http(api.base, method, path, { headers, body: method === "GET" ? undefined : {} });
        assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(headers)}`);
      }
    }
    assert.equal(api.platform.registry.get("clinic")!.policy.paused, false, "nothing changed");
  });

  it("counts THROTTLED, permits and enqueue->start latency in Redis, and serves them as rates and percentiles", async () => {
    const { redis, keys } = api.platform;
    const cell = keys.cell("default");
    const now = Date.now();
    const limits = { mctc: 1, mctcBatch: 1, depth: 0 };
    const a = { batch: false, now, leaseUntil: now + 15_000, waitUntil: now + 1_000, limits };
    assert.equal((await acquirePermit(redis, cell, "clinic", { ...a, id: "p1", waitStartedAt: now - 40 })).kind, "acquired");
    assert.equal((await acquirePermit(redis, cell, "clinic", { ...a, id: "p2" })).kind, "full");
    // A workflow enqueued 100 ms ago holds a slot and starts now, counted as an exec process counts it (queues/latencyTally.ts).
    await redis.hset(cell.workflow("wf_latency"), { state: "running", tenant: "clinic", class: "B", enqueuedAt: String(now - 100) });
    await redis.hset(cell.slots, "wf_latency", `clinic|B|default|${now}`);
    const tally = new LatencyTally();
    tally.count(cell, "clinic", now - 100, now);
    await tally.flush(redis);
    const bucket = await redis.hgetall(cell.usageEvents(bucketStart(now)));
    assert.deepEqual(bucket, { "clinic|acq": "1", "clinic|gw": "40", "clinic|thr": "1", "clinic|l7": "1" });
    assert.ok((await redis.ttl(cell.usageEvents(bucketStart(now)))) > 1000, "buckets expire");

    await new Promise((r) => setTimeout(r, 600));
    const u = await http(api.base, "GET", "/v1/admin/usage?sort=throttled", { headers: admin() });
    assert.equal(u.status, 200);
    const clinic = u.body.tenants[0];
    assert.equal(clinic.tenant, "clinic");
    assert.ok(clinic.throttledPerMin > 0);
    assert.equal(clinic.tools.avgWaitMs, 40);
    assert.equal(clinic.tools.inFlight, 1);
    assert.equal(clinic.running.B, 1);
    assert.equal(clinic.latency.samples, 1);
    assert.ok(clinic.latency.p99 > 64 && clinic.latency.p99 <= 128, String(clinic.latency.p99));
    assert.equal(typeof u.body.platform.fairness.windowMs, "number");
    const one = await http(api.base, "GET", "/v1/admin/usage/clinic", { headers: admin() });
    assert.equal(one.body.tenant.tenant, "clinic");
    assert.ok(one.body.history.t.length >= 1);
    // Only queues that ever held a job are linked (Bull Board knows no other): none yet, then B once it has.
    assert.deepEqual(one.body.queues, []);
    const queued = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop", class: "B" } });
    assert.deepEqual((await http(api.base, "GET", "/v1/admin/usage/clinic", { headers: admin() })).body.queues, ["ingress.clinic.B"]);
    assert.equal((await http(api.base, "DELETE", `/v1/workflows/${queued.body.id}`, { key: api.keys.clinic })).status, 200);
    assert.ok(!JSON.stringify(one.body).includes("payload"), "no payloads");
    await redis.del(cell.slots);
  });

  it("changes part of a policy live, pauses and resumes, and audits every write", async () => {
    const r = await http(api.base, "PATCH", "/v1/admin/tenants/clinic", {
      headers: { ...admin(), "x-fairlane-operator": "alice" },
      body: { mca: 12, budget: { perWorkflowUsd: 1 } },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.policy.mca, 12);
    assert.deepEqual(r.body.policy.budget, { perWorkflowUsd: 1, monthlyUsd: 2000 });
    assert.equal((await http(api.base, "POST", "/v1/admin/tenants/clinic/pause", { headers: admin() })).body.paused, true);
    assert.equal((await http(api.base, "POST", "/v1/admin/tenants/clinic/resume", { headers: admin() })).body.paused, false);
    const entries = (await http(api.base, "GET", "/v1/admin/audit?limit=5", { headers: admin() })).body.entries;
    assert.deepEqual(
      entries.slice(0, 3).map((e: { action: string }) => e.action),
      ["tenant.resume", "tenant.pause", "tenant.patch"],
    );
    assert.equal(entries[2].operator, "alice");
    assert.deepEqual(entries[2].details, { changes: { mca: 12, budget: { perWorkflowUsd: 1 } } });
  });

  it("answers bad input 400 naming the field, unknown tenants 404, and changes nothing", async () => {
    const before = JSON.stringify(api.platform.registry.get("lab"));
    const cases: [string, string, unknown, RegExp][] = [
      ["PATCH", "/v1/admin/tenants/lab", { mca: "ten" }, /mca/],
      ["PATCH", "/v1/admin/tenants/lab", { mca: 5 }, /burst\.mca: must be >= mca/],
      ["PATCH", "/v1/admin/tenants/lab", { unknownField: 1 }, /unknownField|Unrecognized/],
      ["PATCH", "/v1/admin/tenants/lab", [], /JSON object/],
      ["PATCH", "/v1/admin/tenants/lab", {}, /no field/],
      ["POST", "/v1/admin/tenants/lab/drain", { classes: ["D"] }, /classes/],
      ["POST", "/v1/admin/tenants/lab/parked/fail", { reason: 7 }, /reason/],
      ["GET", "/v1/admin/usage?sort=bogus", undefined, /sort/],
      ["GET", "/v1/admin/usage?limit=0", undefined, /limit/],
      ["GET", "/v1/admin/capacity-report?window=forever", undefined, /window/],
    ];
    for (const [method, path, body, re] of cases) {
      const r = await http(api.base, method, path, { headers: admin(), body });
      assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.match(JSON.stringify(r.body.error), re);
    }
    for (const path of ["/v1/admin/usage/nobody", "/v1/admin/tenants/nobody/pause"]) {
      const r = await http(api.base, path.includes("pause") ? "POST" : "GET", path, { headers: admin() });
      assert.equal(r.status, 404, path);
    }
    assert.equal((await http(api.base, "PATCH", "/v1/admin/tenants/Bad%20Id", { headers: admin(), body: { mca: 1 } })).status, 400);
    assert.equal(JSON.stringify(api.platform.registry.get("lab")), before);
  });

  it("drains a tenant's queued ingress through the cancel path, and no one else's", async () => {
    for (let i = 0; i < 5; i++)
      await http(api.base, "POST", "/v1/workflows", { key: api.keys.lab, body: { type: "noop", class: i % 2 ? "B" : "C" } });
    const other = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop" } });
    const onlyC = await http(api.base, "POST", "/v1/admin/tenants/lab/drain", { headers: admin(), body: { classes: ["C"] } });
    assert.deepEqual(onlyC.body, { tenant: "lab", cancelled: 3, skipped: 0 });
    const rest = await http(api.base, "POST", "/v1/admin/tenants/lab/drain", { headers: admin(), body: { all: true } });
    assert.deepEqual(rest.body, { tenant: "lab", cancelled: 2, skipped: 0 });
    const cell = api.platform.keys.cell("default");
    assert.equal(Number(await api.platform.redis.get(cell.queued)), 1, "only the other tenant's workflow is still queued");
    assert.equal((await http(api.base, "GET", `/v1/workflows/${other.body.id}`, { key: api.keys.clinic })).body.state, "queued");
    const audit = (await http(api.base, "GET", "/v1/admin/audit?limit=1", { headers: admin() })).body.entries[0];
    assert.equal(audit.action, "tenant.drain");
  });

  it("reads a snapshot of 1,000 tenants in one pipelined pass, fast", async () => {
    const { redis, keys, registry } = api.platform;
    const specs = new Map<string, PolicySpec>();
    for (let i = 0; i < 1000; i++) specs.set(`scale-${String(i).padStart(4, "0")}`, { tier: i % 3 ? "free" : "professional" });
    await registry.seed(specs, true);
    const cell = keys.cell("default");
    const p = redis.pipeline();
    for (let i = 0; i < 1000; i += 3) {
      const t = `scale-${String(i).padStart(4, "0")}`;
      p.hset(cell.slots, `wf_s${i}`, `${t}|B|default|0`)
        .lpush(cell.queueKey(`ingress.${t}.C`, "wait"), `wf_q${i}`)
        .zadd(cell.gate(t).held, Date.now() + 60_000, `p${i}`);
    }
    await p.exec();
    const reader = new UsageReader(redis, keys, DEFAULT_SHARES);
    const times: number[] = [];
    let tenants = 0;
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      const s = await reader.read(registry.list(), Date.now());
      times.push(performance.now() - t0);
      tenants = s.tenants.length;
      assert.equal(s.tenants.find((x) => x.tenant === "scale-0003")?.running.B, 1);
    }
    times.sort((a, b) => a - b);
    console.log(
      JSON.stringify({ snapshotTenants: tenants, medianMs: Math.round(times[3]! * 10) / 10, maxMs: Math.round(times[6]! * 10) / 10 }),
    );
    assert.ok(tenants >= 1000);
    assert.ok(times[3]! < 1000, `median ${times[3]} ms`);
  });
});
