import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { defineWorkflow } from "../../src/workflows/registry.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startDispatcherRole } from "../../workers/dispatcher.ts";
import { startExecRole } from "../../workers/exec.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

type Doc = {
  paths: Record<
    string,
    Record<
      string,
      { security?: unknown[]; responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }> }
    >
  >;
};
const METHODS = ["get", "put", "post", "patch", "delete"];
/** One pass of the dispatch script, as the dispatcher runs it. */
const DISPATCH_OPTS = { ...TEST_DISPATCH_OPTS, maxMoves: 10 };

// Asks for a review, then answers with the decision it resumed with. (test/helpers/observedWorkflow.ts's
// `reviewed` does the same but records to a Redis connection of its own that nothing here could close.)
defineWorkflow("contract-reviewed", async (ctx) => {
  const d = await ctx.review({ summary: `case ${String(ctx.payload.case)}`, data: { case: ctx.payload.case } });
  return { decision: d.decision, note: d.note };
});

/**
 * The OpenAPI document (GET /openapi.json) is valid OpenAPI 3.1 (a real validator), and the running API
 * keeps to it: every documented operation is called, its answers' statuses are documented, their bodies
 * match the documented schema (Ajv, JSON Schema 2020-12) and their documented headers are present. Each
 * operation must be seen answering at least one success and one error.
 */
describe("OpenAPI document and contract", () => {
  let api: TestApi;
  let doc: Doc;
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const seen = new Map<string, Set<number>>();
  const admin = () => ({ authorization: `Bearer ${api.adminToken}` });

  before(async () => {
    api = await startTestApi({
      clinic: { tier: "professional" },
      tiny: { tier: "free", maxQueueDepth: 1 },
      nourgent: { tier: "professional", mcaUrgent: 0 },
      // Its work runs only on the exec pool the review test starts; its reviews go to pool "triage".
      reviewco: { tier: "professional", pools: ["review-exec"], review: { pool: "triage" } },
    });
    const r = await http(api.base, "GET", "/openapi.json");
    assert.equal(r.status, 200);
    doc = r.body;
    ajv.addSchema(doc as object, "openapi");
  });
  after(() => api.stop());

  const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replace(/~/g, "~0").replace(/\//g, "~1"))).join("/");

  /** Calls the API and checks the answer against the document's operation `METHOD template`. */
  async function call(
    method: string,
    template: string,
    opts: { path?: string; key?: string; headers?: Record<string, string>; body?: unknown; raw?: string } = {},
  ): Promise<{ status: number; body: any; headers: Headers }> {
    const r = await http(api.base, method, opts.path ?? template, opts);
    const op = doc.paths[template]?.[method.toLowerCase()];
    assert.ok(op, `${method} ${template} is documented`);
    const response = op.responses[String(r.status)];
    assert.ok(response, `${method} ${template} answered ${r.status}, which is not documented: ${JSON.stringify(r.body)}`);
    for (const h of Object.keys(response.headers ?? {})) assert.ok(r.headers.get(h), `${method} ${template} ${r.status}: header ${h}`);
    const media = Object.keys(response.content ?? {})[0];
    if (media) {
      assert.ok(
        r.headers.get("content-type")?.startsWith(media),
        `${method} ${template} ${r.status}: content type ${r.headers.get("content-type")}`,
      );
      const ref = `openapi#/${pointer("paths", template, method.toLowerCase(), "responses", String(r.status), "content", media, "schema")}`;
      const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
      assert.ok(
        validate(r.body),
        `${method} ${template} ${r.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(r.body).slice(0, 600)}`,
      );
    } else assert.equal(r.body, undefined, `${method} ${template} ${r.status} has no body`);
    const key = `${method.toUpperCase()} ${template}`;
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key)!.add(r.status);
    return r;
  }

  it("is a valid OpenAPI 3.1 document", async () => {
    const v = new Validator();
    const res = await v.validate(doc as Parameters<Validator["validate"]>[0]);
    assert.ok(res.valid, JSON.stringify(res.errors, null, 1)?.slice(0, 2000));
    assert.equal(v.version, "3.1");
  });

  it("producer routes answer as documented", async () => {
    const key = api.keys.clinic;
    const first = await call("POST", "/v1/workflows", {
      key,
      body: { type: "prior-auth", class: "B", payload: { m: 1 }, idempotencyKey: "k-1" },
    });
    assert.equal(first.status, 202);
    const replay = await call("POST", "/v1/workflows", {
      key,
      body: { type: "prior-auth", class: "B", payload: { m: 1 }, idempotencyKey: "k-1" },
    });
    assert.deepEqual([replay.status, replay.body.id], [200, first.body.id]);
    assert.equal(
      (await call("POST", "/v1/workflows", { key, body: { type: "prior-auth", class: "B", payload: { m: 2 }, idempotencyKey: "k-1" } }))
        .status,
      409,
    );
    assert.equal((await call("POST", "/v1/workflows", { key, body: { type: "Bad Type" } })).status, 400);
    assert.equal((await call("POST", "/v1/workflows", { key, raw: "{not json" })).status, 400);
    assert.equal((await call("POST", "/v1/workflows", { body: { type: "prior-auth" } })).status, 401);
    assert.equal(
      (await call("POST", "/v1/workflows", { key, raw: JSON.stringify({ type: "x", payload: { big: "y".repeat(2_000_000) } }) })).status,
      413,
    );
    assert.equal((await call("POST", "/v1/workflows", { key: api.keys.nourgent, body: { type: "prior-auth", class: "A" } })).status, 422);
    assert.equal((await call("POST", "/v1/workflows", { key: api.keys.tiny, body: { type: "prior-auth" } })).status, 202);
    assert.equal((await call("POST", "/v1/workflows", { key: api.keys.tiny, body: { type: "prior-auth" } })).status, 429);

    const bulk = await call("POST", "/v1/workflows/bulk", { key, body: { workflows: [{ type: "prior-auth" }, { type: "BAD" }] } });
    assert.deepEqual([bulk.status, bulk.body.accepted.length, bulk.body.rejected.length], [202, 1, 1]);
    assert.equal((await call("POST", "/v1/workflows/bulk", { key, body: { workflows: [] } })).status, 400);
    assert.equal(
      (await call("POST", "/v1/workflows/bulk", { key: api.keys.tiny, body: { workflows: [{ type: "prior-auth" }] } })).status,
      429,
    );

    const list = await call("GET", "/v1/workflows", { path: "/v1/workflows?limit=2", key });
    assert.equal(list.body.workflows.length, 2);
    assert.equal((await call("GET", "/v1/workflows", { path: "/v1/workflows?limit=-1", key })).status, 400);

    const id = first.body.id as string;
    assert.equal((await call("GET", "/v1/workflows/{id}", { path: `/v1/workflows/${id}`, key })).status, 200);
    assert.equal(
      (await call("GET", "/v1/workflows/{id}", { path: `/v1/workflows/${id}`, key: api.keys.tiny })).status,
      404,
      "another tenant's",
    );
    assert.equal((await call("DELETE", "/v1/workflows/{id}", { path: `/v1/workflows/${id}`, key })).status, 200);
    assert.equal((await call("DELETE", "/v1/workflows/{id}", { path: `/v1/workflows/${id}`, key })).status, 409);
    assert.equal((await call("DELETE", "/v1/workflows/{id}", { path: "/v1/workflows/wf_AAAAAAAAAAAAAAAAAAAA", key })).status, 404);

    const trail = await call("GET", "/v1/audit", { path: `/v1/audit?workflow=${id}`, key });
    assert.deepEqual(
      trail.body.entries.map((e: { event: string }) => e.event),
      ["admitted", "ended"],
    );
    assert.equal((await call("GET", "/v1/audit", { path: "/v1/audit?since=never", key })).status, 400);
    const exported = await call("GET", "/v1/audit/export", { key });
    assert.ok(String(exported.body).split("\n").length > 2, "one entry per line");
    assert.equal((await call("GET", "/v1/audit/export", { path: "/v1/audit/export?cursor=last", key })).status, 400);
    // Two ended workflows: two lines (one would parse as a JSON object, not NDJSON text).
    const bulkId = bulk.body.accepted[0].id as string;
    assert.equal((await call("DELETE", "/v1/workflows/{id}", { path: `/v1/workflows/${bulkId}`, key })).status, 200);
    const ended = await call("GET", "/v1/workflows/export", { key });
    assert.deepEqual(
      String(ended.body)
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id),
      [id, bulkId],
    );
    assert.equal((await call("GET", "/v1/workflows/export", { path: "/v1/workflows/export?workflow=wf_x", key })).status, 400);
  });

  it("admin routes answer as documented", async () => {
    const h = admin();
    assert.equal((await call("GET", "/v1/admin/workflows", { path: "/v1/admin/workflows?tenant=clinic", headers: h })).status, 200);
    assert.equal((await call("GET", "/v1/admin/workflows", { headers: h })).status, 400);
    assert.equal((await call("GET", "/v1/admin/workflows", { path: "/v1/admin/workflows?tenant=ghost", headers: h })).status, 403);
    const queued = (await api.platform.admission.admitBulk("clinic", [{ type: "prior-auth", class: "C" }], "0".repeat(32))).accepted[0]!.id;
    const wf = "/v1/admin/workflows/{id}";
    const read = await call("GET", wf, { path: `/v1/admin/workflows/${queued}`, headers: h });
    assert.deepEqual([read.status, read.body.tenant, typeof read.body.waitingCode], [200, "clinic", "string"]);
    assert.equal((await call("GET", wf, { path: "/v1/admin/workflows/wf_AAAAAAAAAAAAAAAAAAAA", headers: h })).status, 404);
    assert.equal((await call("GET", wf, { path: "/v1/admin/workflows/wf_short", headers: h })).status, 400);
    const explain = "/v1/admin/tenants/{tenant}/explain";
    const why = await call("GET", explain, { path: "/v1/admin/tenants/clinic/explain", headers: h });
    assert.deepEqual([why.status, why.body.classes.C.queued > 0, typeof why.body.classes.C.held?.code], [200, true, "string"]);
    assert.equal((await call("GET", explain, { path: "/v1/admin/tenants/ghost/explain", headers: h })).status, 404);
    assert.equal((await call("GET", explain, { path: "/v1/admin/tenants/Bad!/explain", headers: h })).status, 400);

    assert.equal((await call("GET", "/v1/admin/tenants", { headers: h })).status, 200);
    assert.equal((await call("GET", "/v1/admin/tenants")).status, 401);
    const t = "/v1/admin/tenants/{tenant}";
    assert.equal((await call("GET", t, { path: "/v1/admin/tenants/clinic", headers: h })).status, 200);
    assert.equal((await call("GET", t, { path: "/v1/admin/tenants/ghost", headers: h })).status, 404);
    assert.equal((await call("GET", t, { path: "/v1/admin/tenants/Bad!", headers: h })).status, 400);
    assert.equal((await call("PUT", t, { path: "/v1/admin/tenants/newco", headers: h, body: { tier: "free", mca: 4 } })).status, 201);
    assert.equal((await call("PUT", t, { path: "/v1/admin/tenants/newco", headers: h, body: { tier: "free", mca: 5 } })).status, 200);
    assert.equal((await call("PUT", t, { path: "/v1/admin/tenants/newco", headers: h, body: { tier: "gold" } })).status, 400);
    assert.equal((await call("PATCH", t, { path: "/v1/admin/tenants/newco", headers: h, body: { mca: 6 } })).status, 200);
    assert.equal((await call("PATCH", t, { path: "/v1/admin/tenants/newco", headers: h, body: { mca: -1 } })).status, 400);
    assert.equal((await call("PATCH", t, { path: "/v1/admin/tenants/ghost", headers: h, body: { mca: 2 } })).status, 404);

    const keys = "/v1/admin/tenants/{tenant}/keys";
    const created = await call("POST", keys, { path: "/v1/admin/tenants/newco/keys", headers: h, body: { label: "ci" } });
    assert.equal(created.status, 201);
    assert.equal(
      (await call("POST", keys, { path: "/v1/admin/tenants/newco/keys", headers: h, body: { label: "x".repeat(101) } })).status,
      400,
    );
    assert.equal((await call("GET", keys, { path: "/v1/admin/tenants/newco/keys", headers: h })).status, 200);
    assert.equal((await call("GET", keys, { path: "/v1/admin/tenants/ghost/keys", headers: h })).status, 404);
    const one = "/v1/admin/tenants/{tenant}/keys/{keyId}";
    assert.equal((await call("DELETE", one, { path: `/v1/admin/tenants/newco/keys/${created.body.keyId}`, headers: h })).status, 204);
    assert.equal((await call("DELETE", one, { path: `/v1/admin/tenants/newco/keys/${created.body.keyId}`, headers: h })).status, 404);

    for (const a of ["pause", "resume"]) {
      assert.equal(
        (await call("POST", `/v1/admin/tenants/{tenant}/${a}`, { path: `/v1/admin/tenants/newco/${a}`, headers: h })).status,
        200,
      );
      assert.equal(
        (await call("POST", `/v1/admin/tenants/{tenant}/${a}`, { path: `/v1/admin/tenants/ghost/${a}`, headers: h })).status,
        404,
      );
    }
    const drain = "/v1/admin/tenants/{tenant}/drain";
    assert.equal((await call("POST", drain, { path: "/v1/admin/tenants/newco/drain", headers: h, body: { classes: ["C"] } })).status, 200);
    assert.equal((await call("POST", drain, { path: "/v1/admin/tenants/newco/drain", headers: h, body: {} })).status, 400);
    for (const a of ["requeue", "fail"]) {
      const p = `/v1/admin/tenants/{tenant}/parked/${a}`;
      assert.equal((await call("POST", p, { path: `/v1/admin/tenants/newco/parked/${a}`, headers: h })).status, 200);
      assert.equal((await call("POST", p, { path: `/v1/admin/tenants/newco/parked/${a}`, headers: h, body: { reason: 7 } })).status, 400);
    }
    const audit = "/v1/admin/tenants/{tenant}/audit";
    assert.equal((await call("GET", audit, { path: "/v1/admin/tenants/clinic/audit?limit=2", headers: h })).status, 200);
    assert.equal((await call("GET", audit, { path: "/v1/admin/tenants/ghost/audit", headers: h })).status, 404);
    assert.equal((await call("GET", audit, { path: "/v1/admin/tenants/clinic/audit?limit=0", headers: h })).status, 400);
    const auditExport = "/v1/admin/tenants/{tenant}/audit/export";
    assert.equal((await call("GET", auditExport, { path: "/v1/admin/tenants/clinic/audit/export", headers: h })).status, 200);
    assert.equal((await call("GET", auditExport, { path: "/v1/admin/tenants/ghost/audit/export", headers: h })).status, 404);
    assert.equal((await call("GET", auditExport, { path: "/v1/admin/tenants/clinic/audit/export?since=x", headers: h })).status, 400);
    const ids = (await api.platform.admission.admitBulk("clinic", [{ type: "prior-auth" }, { type: "prior-auth" }], "0".repeat(32)))
      .accepted;
    for (const w of ids) assert.equal((await http(api.base, "DELETE", `/v1/workflows/${w.id}`, { key: api.keys.clinic })).status, 200);
    const endedExport = "/v1/admin/tenants/{tenant}/workflows/export";
    const ended = await call("GET", endedExport, { path: "/v1/admin/tenants/clinic/workflows/export", headers: h });
    assert.deepEqual(
      String(ended.body)
        .trim()
        .split("\n")
        .slice(-2)
        .map((l) => JSON.parse(l).id),
      ids.map((w) => w.id),
    );
    assert.equal((await call("GET", endedExport, { path: "/v1/admin/tenants/ghost/workflows/export", headers: h })).status, 404);
    assert.equal((await call("GET", endedExport, { path: "/v1/admin/tenants/clinic/workflows/export?cursor=x", headers: h })).status, 400);
    const erase = "/v1/admin/tenants/{tenant}/data";
    const before = new Date().toISOString();
    assert.equal((await call("DELETE", erase, { path: `/v1/admin/tenants/newco/data?before=${before}`, headers: h })).status, 200);
    assert.equal((await call("DELETE", erase, { path: "/v1/admin/tenants/newco/data?before=soon", headers: h })).status, 400);
    assert.equal((await call("DELETE", erase, { path: `/v1/admin/tenants/ghost/data?before=${before}`, headers: h })).status, 404);
    assert.equal((await call("GET", "/v1/admin/audit", { path: "/v1/admin/audit?limit=5", headers: h })).status, 200);
    assert.equal((await call("GET", "/v1/admin/audit")).status, 401);

    assert.equal((await call("GET", "/v1/admin/usage", { headers: h })).status, 200);
    assert.equal((await call("GET", "/v1/admin/usage", { path: "/v1/admin/usage?sort=colour", headers: h })).status, 400);
    assert.equal((await call("GET", "/v1/admin/usage/{tenant}", { path: "/v1/admin/usage/clinic", headers: h })).status, 200);
    assert.equal((await call("GET", "/v1/admin/usage/{tenant}", { path: "/v1/admin/usage/ghost", headers: h })).status, 404);
    assert.equal((await call("GET", "/v1/admin/capacity-report", { headers: h })).status, 200);
    assert.equal(
      (await call("GET", "/v1/admin/capacity-report", { path: "/v1/admin/capacity-report?window=forever", headers: h })).status,
      400,
    );
  });

  it("org routes answer as documented, with an org's live slots against its caps", async () => {
    const h = admin();
    const one = "/v1/admin/orgs/{org}";
    const created = await call("PUT", one, { path: "/v1/admin/orgs/holdco", headers: h, body: { mca: 2, description: "ten banks" } });
    assert.deepEqual([created.status, created.body.policy.mca, created.body.policy.mcaUrgent, created.body.tenants], [201, 2, null, []]);
    const replaced = await call("PUT", one, { path: "/v1/admin/orgs/holdco", headers: h, body: { mca: 3, mcaUrgent: 1 } });
    assert.deepEqual([replaced.status, replaced.body.policy.mca, replaced.body.policy.mcaUrgent], [200, 3, 1]);
    const bad = await call("PUT", one, { path: "/v1/admin/orgs/holdco", headers: h, body: { mca: 0, weight: "heavy", colour: 1 } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.error.details.map((d: { field: string }) => d.field).sort(), ["(body)", "mca", "weight"]);
    assert.equal(bad.body.error.details.length, 3, JSON.stringify(bad.body.error.details));
    const badName = await call("PUT", one, { path: "/v1/admin/orgs/Hold!Co", headers: h, body: {} });
    assert.deepEqual([badName.status, badName.body.error.details[0].field], [400, "org"]);
    assert.equal((await call("GET", one, { path: "/v1/admin/orgs/ghost", headers: h })).status, 404);
    assert.equal((await call("GET", one, { path: "/v1/admin/orgs/Bad!", headers: h })).status, 400);
    assert.equal((await call("GET", "/v1/admin/orgs")).status, 401);

    // Two banks join it (their own mca is 10 each), on a pool of their own so nothing else here dispatches there.
    const t = "/v1/admin/tenants/{tenant}";
    const unknown = await call("PUT", t, { path: "/v1/admin/tenants/bank-a", headers: h, body: { tier: "professional", org: "nope" } });
    assert.deepEqual([unknown.status, unknown.body.error.details[0].field], [400, "org"]);
    for (const bank of ["bank-a", "bank-b"]) {
      const put = await call("PUT", t, {
        path: `/v1/admin/tenants/${bank}`,
        headers: h,
        body: { tier: "professional", pools: ["org-pool"], org: "holdco" },
      });
      assert.deepEqual([put.status, put.body.policy.org], [201, "holdco"]);
    }
    // Three workflows each; a real dispatch on a 10-slot pool starts only the org's mca of 3, across both.
    const { platform } = api;
    for (const bank of ["bank-a", "bank-b"])
      await platform.admission.admitBulk(
        bank,
        Array.from({ length: 3 }, () => ({ type: "prior-auth", class: "B" })),
        "0".repeat(32),
      );
    const cell = platform.keys.cell("default");
    await new TenantSync(platform.redis, platform.keys).sync("default", platform.registry.list(), platform.registry.orgs());
    await heartbeat(platform.redis, cell, "org-pool", "fake-org", 10, Date.now(), Date.now() + 60_000);
    const moved = await dispatch(platform.redis, cell, "org-pool", Date.now(), { ...DISPATCH_OPTS, maxMoves: 10 });
    assert.equal(moved.moved, 3, JSON.stringify(moved));

    const read = await call("GET", one, { path: "/v1/admin/orgs/holdco", headers: h });
    assert.equal(read.status, 200);
    assert.deepEqual(read.body.tenants, ["bank-a", "bank-b"]);
    const live = read.body.live;
    assert.deepEqual([live.cell, live.running, live.caps], ["default", { A: 0, BC: 3 }, { mca: 3, mcaUrgent: 1 }]);
    assert.equal(live.byTenant["bank-a"].BC + live.byTenant["bank-b"].BC, 3, JSON.stringify(live.byTenant));
    const list = await call("GET", "/v1/admin/orgs", { headers: h });
    assert.deepEqual(
      list.body.orgs.map((o: { org: string; live: { running: unknown } }) => [o.org, o.live.running]),
      [["holdco", { A: 0, BC: 3 }]],
    );
    const audit = await http(api.base, "GET", "/v1/admin/audit?limit=50", { headers: h });
    assert.ok(audit.body.entries.some((e: { action: string; target: string }) => e.action === "org.put" && e.target === "holdco"));

    const refused = await call("DELETE", one, { path: "/v1/admin/orgs/holdco", headers: h });
    assert.deepEqual(
      [refused.status, refused.body.error.code, refused.body.error.details.tenants],
      [409, "ORG_HAS_TENANTS", ["bank-a", "bank-b"]],
    );
    for (const bank of ["bank-a", "bank-b"])
      assert.equal((await call("PATCH", t, { path: `/v1/admin/tenants/${bank}`, headers: h, body: { org: null } })).status, 200);
    assert.equal((await call("DELETE", one, { path: "/v1/admin/orgs/holdco", headers: h })).status, 204);
    assert.equal((await call("DELETE", one, { path: "/v1/admin/orgs/holdco", headers: h })).status, 404);
    assert.equal((await call("DELETE", one, { path: "/v1/admin/orgs/Bad!", headers: h })).status, 400);
    assert.deepEqual((await call("GET", "/v1/admin/orgs", { headers: h })).body, { orgs: [] });
  });

  it("backpressure admin routes answer as documented", async () => {
    const h = admin();
    const cell = api.platform.keys.cell("default");
    const redis = api.platform.redis;
    // Park two workflows the way the dispatcher does while their dependency is down.
    await redis.hset(cell.workflowDeps, "needs-gw", "gw");
    assert.equal(
      (await call("PUT", "/v1/admin/dependencies/{dep}", { path: "/v1/admin/dependencies/gw", headers: h, body: { state: "down" } }))
        .status,
      200,
    );
    assert.equal(
      (await call("PUT", "/v1/admin/dependencies/{dep}", { path: "/v1/admin/dependencies/gw", headers: h, body: { state: "sideways" } }))
        .status,
      400,
    );
    const ids = (
      await api.platform.admission.admitBulk("clinic", [{ type: "needs-gw" }, { type: "needs-gw" }], "0".repeat(32))
    ).accepted.map((a) => a.id);
    await new TenantSync(redis, api.platform.keys).sync("default", api.platform.registry.list());
    await heartbeat(redis, cell, "default", "fake", 5, Date.now(), Date.now() + 60_000);
    const moved = await dispatch(redis, cell, "default", Date.now(), { ...DISPATCH_OPTS, maxMoves: 10 });
    assert.equal(moved.parked, 2);

    const deps = await call("GET", "/v1/admin/dependencies", { headers: h });
    assert.ok(deps.body.dependencies.some((d: { dependency: string; parked: number }) => d.dependency === "gw" && d.parked === 2));
    assert.equal((await call("GET", "/v1/admin/dependencies")).status, 401);
    const parked = await call("GET", "/v1/admin/parked", { path: "/v1/admin/parked?dependency=gw", headers: h });
    assert.equal(parked.body.parked.length, 2);
    assert.equal((await call("GET", "/v1/admin/parked", { path: "/v1/admin/parked?dependency=a:b", headers: h })).status, 400);
    assert.equal(
      (await call("POST", "/v1/admin/parked/{id}/requeue", { path: `/v1/admin/parked/${ids[0]}/requeue`, headers: h })).status,
      200,
    );
    assert.equal(
      (await call("POST", "/v1/admin/parked/{id}/requeue", { path: `/v1/admin/parked/${ids[0]}/requeue`, headers: h })).status,
      404,
    );
    assert.equal(
      (
        await call("POST", "/v1/admin/parked/{id}/fail", {
          path: `/v1/admin/parked/${ids[1]}/fail`,
          headers: h,
          body: { reason: "payer retired" },
        })
      ).status,
      200,
    );
    assert.equal((await call("POST", "/v1/admin/parked/{id}/fail", { path: `/v1/admin/parked/${ids[1]}/fail`, headers: h })).status, 404);
  });

  it("operations routes answer as documented", async () => {
    assert.equal((await call("GET", "/healthz")).status, 200);
    assert.equal((await call("GET", "/readyz")).status, 200);
    const m = await call("GET", "/metrics", { headers: admin() });
    assert.equal(m.status, 200);
    assert.match(String(m.body), /fairlane_/);
    assert.equal((await call("GET", "/metrics")).status, 401);
  });

  /** Polls `read` every 50 ms until it answers something, for at most `ms`. */
  async function until<T>(what: string, read: () => Promise<T | undefined>, ms = 5000): Promise<T> {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
      const got = await read();
      if (got !== undefined) return got;
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  it("human review routes answer as documented", async () => {
    const h = admin();
    const keys = "/v1/admin/reviewer-pools/{pool}/keys";
    const triage = await call("POST", keys, { path: "/v1/admin/reviewer-pools/triage/keys", headers: h, body: { label: "night" } });
    assert.deepEqual([triage.status, triage.body.pool], [201, "triage"]);
    const other = (await call("POST", keys, { path: "/v1/admin/reviewer-pools/other/keys", headers: h })).body;
    assert.equal((await call("POST", keys, { path: "/v1/admin/reviewer-pools/Bad!/keys", headers: h })).status, 400);
    const listed = await call("GET", keys, { path: "/v1/admin/reviewer-pools/triage/keys", headers: h });
    assert.deepEqual(
      listed.body.keys.map((k: { keyId: string; label?: string }) => [k.keyId, k.label]),
      [[triage.body.keyId, "night"]],
    );
    assert.equal((await call("GET", keys, { path: "/v1/admin/reviewer-pools/Bad!/keys", headers: h })).status, 400);
    const key = triage.body.key as string;
    assert.equal((await call("GET", "/v1/reviews/next", { key })).status, 204, "nothing waits yet");
    assert.equal((await call("GET", "/v1/reviews/next", { path: "/v1/reviews/next?leaseSec=0", key })).status, 400);
    assert.equal((await call("GET", "/v1/reviews/next", { key: api.keys.reviewco })).status, 401, "a tenant key is no reviewer key");

    // A real workflow asks for a review: an exec worker of its own pool runs it, the dispatcher moves it.
    const posted = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.reviewco,
      body: { type: "contract-reviewed", class: "B", payload: { case: 7 } },
    });
    assert.equal(posted.status, 202);
    const id = posted.body.id as string;
    const log = createLogger("test", "silent");
    const p = { ...api.platform, config: { ...api.platform.config, FAIRLANE_POOL: "review-exec", FAIRLANE_CONCURRENCY: 2 } };
    const roles = [await startExecRole(p, log), await startDispatcherRole(p, log)];
    try {
      await until("the review item", async () => {
        const depth = await call("GET", "/v1/admin/reviewer-pools", { headers: h });
        return depth.body.waiting.find((w: { pool: string; waiting: number }) => w.pool === "triage" && w.waiting > 0);
      });
      assert.equal((await call("GET", "/v1/admin/reviewer-pools")).status, 401);
      await decideTheReview(id, key, other.key);
      const done = await until("the workflow to resume and complete", async () => {
        const wf = await http(api.base, "GET", `/v1/workflows/${id}`, { key: api.keys.reviewco });
        return wf.body.state === "completed" ? wf.body : undefined;
      });
      assert.deepEqual(done.result, { decision: "approve", note: "looks right" });
    } finally {
      for (const r of roles.reverse()) await r.stop();
    }

    const one = "/v1/admin/reviewer-pools/{pool}/keys/{keyId}";
    assert.equal(
      (await call("DELETE", one, { path: `/v1/admin/reviewer-pools/triage/keys/${triage.body.keyId}`, headers: h })).status,
      204,
    );
    assert.equal(
      (await call("DELETE", one, { path: `/v1/admin/reviewer-pools/triage/keys/${triage.body.keyId}`, headers: h })).status,
      404,
    );
    assert.equal((await call("DELETE", one, { path: `/v1/admin/reviewer-pools/Bad!/keys/${other.keyId}`, headers: h })).status, 400);
    assert.equal((await call("GET", "/v1/reviews/{id}", { path: `/v1/reviews/${id}`, key })).status, 401, "revoked at once");
  });

  /** Reads, claims, escalates, claims again and approves the item `id`, with the errors on the way. */
  async function decideTheReview(id: string, key: string, otherPoolKey: string): Promise<void> {
    const item = "/v1/reviews/{id}";
    const read = await call("GET", item, { path: `/v1/reviews/${id}`, key });
    assert.deepEqual([read.status, read.body.state, read.body.request], [200, "pending", { summary: "case 7", data: { case: 7 } }]);
    assert.equal((await call("GET", item, { path: `/v1/reviews/${id}`, key: otherPoolKey })).status, 404, "another pool's item");
    const approve = { decision: "approve", note: "looks right" };
    const early = await call("POST", item, { path: `/v1/reviews/${id}`, key, body: approve });
    assert.deepEqual([early.status, early.body.error.code], [409, "REVIEW_NOT_CLAIMED"]);
    assert.equal((await call("POST", item, { path: `/v1/reviews/${id}`, key, body: { decision: "maybe" } })).status, 400);
    assert.equal((await call("POST", item, { path: `/v1/reviews/${id}`, key: otherPoolKey, body: approve })).status, 404);

    const claimed = await call("GET", "/v1/reviews/next", { path: "/v1/reviews/next?leaseSec=60", key });
    assert.deepEqual([claimed.status, claimed.body.id, claimed.body.state], [200, id, "claimed"]);
    const escalated = await call("POST", item, { path: `/v1/reviews/${id}`, key, body: { decision: "escalate", note: "second look" } });
    assert.deepEqual(escalated.body, { id, decision: "escalate", state: "pending", pool: "triage" });
    const again = await call("GET", "/v1/reviews/next", { key });
    assert.deepEqual([again.body.id, again.body.escalations, again.body.note], [id, 1, "second look"]);
    const decided = await call("POST", item, { path: `/v1/reviews/${id}`, key, body: approve });
    assert.deepEqual(decided.body, { id, decision: "approve", state: "decided" });
    assert.equal((await call("GET", item, { path: `/v1/reviews/${id}`, key })).status, 404, "a decided item is closed");
  }

  it("every documented operation was seen answering a success and an error", () => {
    const missing: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths))
      for (const method of METHODS) {
        const op = ops[method];
        if (!op) continue;
        const key = `${method.toUpperCase()} ${path}`;
        const statuses = [...(seen.get(key) ?? [])];
        if (!statuses.some((s) => s < 300)) missing.push(`${key}: no success`);
        // Liveness and readiness have no client error; every other operation does (at least 401).
        if (!["/healthz", "/readyz"].includes(path) && !statuses.some((s) => s >= 400)) missing.push(`${key}: no error`);
      }
    assert.deepEqual(missing, []);
  });
});
