import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ingressQueue } from "../../queues/names.ts";
import { deadlineListings } from "../helpers/deadlineIndex.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/** What Redis really holds for a tenant's class: the ingress wait list, read directly. */
async function ingressDepth(api: TestApi, tenant: string, cls: "A" | "B" | "C"): Promise<number> {
  const cell = api.platform.keys.cell("default");
  return api.platform.redis.llen(cell.queueKey(ingressQueue(tenant, cls), "wait"));
}

async function totalIngress(api: TestApi, tenant: string): Promise<number> {
  let n = 0;
  for (const c of ["A", "B", "C"] as const) n += await ingressDepth(api, tenant, c);
  return n;
}

describe("producer API", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({
      clinic: { tier: "professional" },
      other: { tier: "enterprise" },
      tiny: { tier: "free", maxQueueDepth: 3 },
      nourgent: { tier: "professional", mcaUrgent: 0 },
      lean: { tier: "free", maxQueueBytes: 1_000 },
    });
  });
  after(() => api.stop());

  it("accepts a workflow into its tenant's class queue and reports it", async () => {
    const deadlineAt = new Date(Date.now() + 10_000).toISOString();
    const r = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.clinic,
      body: { type: "prior-auth", class: "A", payload: { member: "M-1" }, deadlineAt },
    });
    assert.equal(r.status, 202);
    assert.match(r.body.id, /^wf_/);
    assert.deepEqual([r.body.tenant, r.body.class, r.body.state, r.body.deadlineAt], ["clinic", "A", "queued", deadlineAt]);
    assert.equal(await ingressDepth(api, "clinic", "A"), 1);

    const job = await api.platform.redis.hget(api.platform.keys.cell("default").jobKey(ingressQueue("clinic", "A"), r.body.id), "data");
    // The job carries the payload as a plain BullMQ job would; the rest is in the record, the policy in the registry.
    assert.deepEqual(JSON.parse(job!), { member: "M-1" });

    const got = await http(api.base, "GET", `/v1/workflows/${r.body.id}`, { key: api.keys.clinic });
    assert.equal(got.status, 200);
    assert.deepEqual(
      [got.body.id, got.body.tenant, got.body.type, got.body.class, got.body.state, got.body.attempts, got.body.error],
      [r.body.id, "clinic", "prior-auth", "A", "queued", 0, null],
    );
    for (const f of ["enqueuedAt", "dispatchedAt", "startedAt", "finishedAt", "deadlineAt", "result"]) assert.ok(f in got.body, f);
  });

  it("defaults to Class B with the tier's run budget as deadline", async () => {
    const before = Date.now();
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "eligibility-check" } });
    assert.equal(r.status, 202);
    assert.equal(r.body.class, "B");
    const budget = Date.parse(r.body.deadlineAt) - before;
    assert.ok(budget >= 120_000 && budget < 125_000, `professional budget is 120 s, got ${budget}`);
  });

  it("takes the trace id from a traceparent header", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const r = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.clinic,
      body: { type: "noop" },
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    const rec = await api.platform.redis.hget(api.platform.keys.cell("default").workflow(r.body.id), "traceparent");
    assert.equal(rec?.slice(3, 35), traceId);
  });

  it("returns the first workflow for a repeated idempotency key with the same request, never a second one", async () => {
    const body = { type: "prior-auth", class: "C", idempotencyKey: "batch-7/row-1", payload: { n: 1, tags: ["x", "y"] } };
    const depth0 = await ingressDepth(api, "clinic", "C");
    const first = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body });
    // The same request: object keys in another order are the same request.
    const again = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.clinic,
      raw: '{"payload":{"tags":["x","y"],"n":1},"idempotencyKey":"batch-7/row-1","class":"C","type":"prior-auth"}',
    });
    assert.equal(first.status, 202);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.equal(again.body.id, first.body.id);
    assert.equal(await ingressDepth(api, "clinic", "C"), depth0 + 1);
    // The same key from another tenant is that tenant's own.
    const other = await http(api.base, "POST", "/v1/workflows", { key: api.keys.other, body });
    assert.equal(other.status, 202);
    assert.notEqual(other.body.id, first.body.id);
  });

  it("refuses an idempotency key reused for a different request with 409 IDEMPOTENCY_KEY_REUSED, enqueuing nothing", async () => {
    const body = {
      type: "prior-auth",
      idempotencyKey: "claim-88",
      payload: { n: 1 },
      deadlineAt: new Date(Date.now() + 60_000).toISOString(),
    };
    const first = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body });
    assert.equal(first.status, 202);
    const depth = await totalIngress(api, "clinic");
    const differs: [string, Record<string, unknown>][] = [
      ["payload", { payload: { n: 2 } }],
      ["type", { type: "eligibility-check" }],
      ["class", { class: "A" }],
      ["deadlineAt", { deadlineAt: new Date(Date.now() + 30_000).toISOString() }],
    ];
    for (const [what, change] of differs) {
      const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { ...body, ...change } });
      assert.equal(r.status, 409, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, "IDEMPOTENCY_KEY_REUSED");
      assert.equal(r.body.error.details.id, first.body.id, "it names the workflow the key belongs to");
      assert.equal(r.headers.get("idempotent-replayed"), null);
    }
    // Class B said outright and the same deadline written with another zone are the same request.
    const offset = body.deadlineAt.replace("Z", "+00:00");
    const same = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { ...body, class: "B", deadlineAt: offset } });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.id, first.body.id);
    // In a bulk request, the reuse is that item's error.
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.clinic,
      body: { workflows: [body, { ...body, payload: { n: 3 } }] },
    });
    assert.equal(bulk.status, 202);
    assert.deepEqual(
      bulk.body.accepted.map((a: { index: number; id: string; duplicate?: boolean }) => [a.index, a.id, a.duplicate]),
      [[0, first.body.id, true]],
    );
    assert.deepEqual(
      bulk.body.rejected.map((x: { index: number; error: { code: string } }) => [x.index, x.error.code]),
      [[1, "IDEMPOTENCY_KEY_REUSED"]],
    );
    assert.equal(await totalIngress(api, "clinic"), depth, "nothing was enqueued");
  });

  it("still replays a key stored before requests were hashed, whatever the body", async () => {
    const first = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.clinic,
      body: { type: "noop", idempotencyKey: "legacy-1" },
    });
    const { createHash } = await import("node:crypto");
    const idem = api.platform.keys.cell("default").idempotency("clinic", createHash("sha256").update("legacy-1").digest("hex"));
    assert.match((await api.platform.redis.get(idem))!, new RegExp(`^${first.body.id} [0-9a-f]{64}$`));
    await api.platform.redis.set(idem, first.body.id, "KEEPTTL");
    const again = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.clinic,
      body: { type: "noop", idempotencyKey: "legacy-1", payload: { other: true } },
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
  });

  it("refuses Class A for a tenant whose mcaUrgent is 0, naming the policy field; its other classes flow", async () => {
    const depth = await totalIngress(api, "nourgent");
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.nourgent, body: { type: "noop", class: "A" } });
    assert.equal(r.status, 422);
    assert.equal(r.body.error.code, "CLASS_NOT_ALLOWED");
    assert.match(r.body.error.message, /mcaUrgent is 0/);
    assert.deepEqual(r.body.error.details, { field: "class", policy: "mcaUrgent", mcaUrgent: 0 });
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.nourgent,
      body: {
        workflows: [
          { type: "noop", class: "A" },
          { type: "noop", class: "B" },
        ],
      },
    });
    assert.deepEqual(
      bulk.body.rejected.map((x: { index: number; error: { code: string } }) => [x.index, x.error.code]),
      [[0, "CLASS_NOT_ALLOWED"]],
    );
    assert.deepEqual(
      bulk.body.accepted.map((a: { index: number }) => a.index),
      [1],
    );
    assert.equal(await totalIngress(api, "nourgent"), depth + 1);
    assert.equal(await ingressDepth(api, "nourgent", "A"), 0);
    // A tenant with Class A slots of its own is not affected.
    assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.keys.other, body: { type: "noop", class: "A" } })).status, 202);
  });

  it("bulk-enqueues, rejecting only the bad items", async () => {
    const depth0 = await totalIngress(api, "other");
    const r = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.other,
      body: {
        workflows: [
          { type: "prior-auth", class: "C" },
          { type: "prior-auth", class: "D" },
          { type: "prior-auth", class: "B", payload: "not an object" },
          { type: "eligibility-check", class: "A" },
          "nonsense",
        ],
      },
    });
    assert.equal(r.status, 202);
    assert.deepEqual(
      r.body.accepted.map((a: { index: number }) => a.index),
      [0, 3],
    );
    assert.deepEqual(
      r.body.rejected.map((x: { index: number }) => x.index),
      [1, 2, 4],
    );
    assert.match(r.body.rejected[0].error.message, /class/);
    assert.match(r.body.rejected[1].error.message, /payload/);
    assert.equal(await totalIngress(api, "other"), depth0 + 2);
  });

  it("cancels a queued workflow and takes it out of its queue", async () => {
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.other, body: { type: "noop", class: "B" } });
    const depth = await ingressDepth(api, "other", "B");
    const cell = api.platform.keys.cell("default");
    const deadlineAt = Number(await api.platform.redis.hget(cell.workflow(r.body.id), "deadlineAt"));
    assert.equal(await deadlineListings(api.platform.redis, cell, r.body.id, deadlineAt), 1, "indexed for the deadline sweep while queued");
    const wrongTenant = await http(api.base, "DELETE", `/v1/workflows/${r.body.id}`, { key: api.keys.clinic });
    assert.equal(wrongTenant.status, 404);
    const del = await http(api.base, "DELETE", `/v1/workflows/${r.body.id}`, { key: api.keys.other });
    assert.equal(del.status, 200);
    assert.equal(del.body.state, "cancelled");
    assert.equal(del.body.error.code, "CANCELLED");
    assert.equal(await ingressDepth(api, "other", "B"), depth - 1);
    // An ended record expires like any other (the soak found cancelled ones kept forever).
    const ttl = await api.platform.redis.ttl(cell.workflow(r.body.id));
    assert.ok(ttl > 0 && ttl <= api.platform.config.FAIRLANE_RECORD_TTL_SEC, `record TTL ${ttl}`);
    const again = await http(api.base, "DELETE", `/v1/workflows/${r.body.id}`, { key: api.keys.other });
    assert.equal(again.status, 409);
  });

  it("answers another tenant's id exactly like an unknown id", async () => {
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop" } });
    const foreign = await http(api.base, "GET", `/v1/workflows/${r.body.id}`, { key: api.keys.other });
    const unknown = await http(api.base, "GET", `/v1/workflows/wf_AAAAAAAAAAAAAAAAAAAA`, { key: api.keys.other });
    const garbage = await http(api.base, "GET", `/v1/workflows/..%2F..%2Fetc`, { key: api.keys.other });
    assert.equal(foreign.status, 404);
    assert.deepEqual(foreign.body, unknown.body);
    assert.deepEqual(garbage.body, unknown.body);
  });

  describe("bad input changes nothing", () => {
    const cases: [string, { raw?: string; body?: unknown; headers?: Record<string, string> }, number, RegExp][] = [
      ["malformed JSON", { raw: '{"type": "noop",' }, 400, /malformed JSON/],
      ["a JSON array", { body: [1, 2] }, 400, /expected object/i],
      ["a wrong type", { body: { type: 42 } }, 400, /type/],
      ["an unknown class", { body: { type: "noop", class: "D" } }, 400, /class/],
      ["an unknown field", { body: { type: "noop", tenant: "other" } }, 400, /tenant/],
      ["a past deadline", { body: { type: "noop", deadlineAt: "2001-01-01T00:00:00Z" } }, 400, /deadlineAt: is already in the past/],
      ["a deadline that is not a time", { body: { type: "noop", deadlineAt: "tomorrow" } }, 400, /deadlineAt/],
      ["no content type", { raw: '{"type":"noop"}', headers: { "content-type": "text/plain" } }, 400, /Content-Type: application\/json/],
      ["an oversize body", { raw: JSON.stringify({ type: "noop", payload: { x: "y".repeat(1_100_000) } }) }, 413, /larger than/],
      ["an oversize payload", { body: { type: "noop", payload: { x: "y".repeat(300_000) } } }, 400, /payload: larger than/],
      [
        "a payload nested 65 levels deep",
        { raw: `{"type":"noop","payload":${'{"a":'.repeat(65)}1${"}".repeat(66)}` },
        400,
        /payload(\.a){64}: nests deeper than 64 levels/,
      ],
      [
        "a payload nested 20,000 levels deep (it crashed JSON.stringify: a 500)",
        { raw: `{"type":"noop","payload":{"x":${"[".repeat(20_000)}${"]".repeat(20_000)}}}` },
        400,
        /payload\.x(\.0){63}: nests deeper than 64 levels/,
      ],
      [
        "a __proto__ key in the payload (it would be dropped)",
        { raw: '{"type":"noop","payload":{"ok":1,"__proto__":{"admin":true}}}' },
        400,
        /payload\.__proto__: the key "__proto__" is not allowed/,
      ],
      ["a nested __proto__ key", { raw: '{"type":"noop","payload":{"a":[{"__proto__":1}]}}' }, 400, /payload\.a\.0\.__proto__/],
      [
        "a number JSON cannot hold (1e400 would become null)",
        { raw: '{"type":"noop","payload":{"score":1e400}}' },
        400,
        /payload\.score: is not a finite number/,
      ],
      [
        "a negative number JSON cannot hold",
        { raw: '{"type":"noop","payload":{"a":[1,-1e999]}}' },
        400,
        /payload\.a\.1: is not a finite number/,
      ],
    ];
    for (const [name, req, status, message] of cases) {
      it(`refuses ${name} with ${status}`, async () => {
        const depth = await totalIngress(api, "clinic");
        const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, ...req });
        assert.equal(r.status, status, JSON.stringify(r.body));
        assert.equal(r.body.error.code, status === 413 ? "PAYLOAD_TOO_LARGE" : "INVALID_REQUEST");
        assert.match(r.body.error.message, message);
        assert.equal(await totalIngress(api, "clinic"), depth);
      });
    }

    it("names the field in details", async () => {
      const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop", class: "Z" } });
      assert.deepEqual(
        r.body.error.details.map((d: { field: string }) => d.field),
        ["class"],
      );
      const bad = await http(api.base, "POST", "/v1/workflows", {
        key: api.keys.clinic,
        raw: '{"type":"noop","payload":{"x":1e400,"y":{"__proto__":2}}}',
      });
      assert.deepEqual(
        bad.body.error.details.map((d: { field: string }) => d.field),
        ["payload.x", "payload.y.__proto__"],
      );
    });

    it("accepts a payload exactly 64 levels deep and keys named constructor and prototype, storing them as sent", async () => {
      const payload = JSON.parse(`${'{"a":'.repeat(61)}{"constructor":{"prototype":{"toString":1}}}${"}".repeat(61)}`);
      const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop", payload } });
      assert.equal(r.status, 202, JSON.stringify(r.body).slice(0, 300));
      const job = await api.platform.redis.hget(api.platform.keys.cell("default").jobKey(ingressQueue("clinic", "B"), r.body.id), "data");
      assert.deepEqual(JSON.parse(job!), payload, "round-trips unchanged");
    });

    it("rejects only the too-deep, __proto__ and non-finite items of a bulk request, each with its field", async () => {
      const depth = await totalIngress(api, "clinic");
      const deep = `{"type":"noop","payload":${'{"a":'.repeat(5_000)}1${"}".repeat(5_001)}`;
      const raw = `{"workflows":[{"type":"noop"},${deep},{"type":"noop","payload":{"__proto__":{}}},{"type":"noop","payload":{"n":1e400}},{"type":"noop","class":"C"}]}`;
      const r = await http(api.base, "POST", "/v1/workflows/bulk", { key: api.keys.clinic, raw });
      assert.equal(r.status, 202, JSON.stringify(r.body).slice(0, 300));
      assert.deepEqual(
        r.body.accepted.map((a: { index: number }) => a.index),
        [0, 4],
      );
      const rejected = r.body.rejected.map((x: { index: number; error: { code: string; details: { field: string }[] } }) => [
        x.index,
        x.error.code,
        x.error.details[0]!.field,
      ]);
      assert.deepEqual(rejected, [
        [1, "INVALID_REQUEST", `payload${".a".repeat(64)}`],
        [2, "INVALID_REQUEST", "payload.__proto__"],
        [3, "INVALID_REQUEST", "payload.n"],
      ]);
      assert.equal(await totalIngress(api, "clinic"), depth + 2);
    });

    it("refuses requests without a valid key with 401", async () => {
      for (const headers of [
        {} as Record<string, string>,
        { authorization: `Bearer flk_000000000000_${"x".repeat(32)}` },
        { authorization: "Basic Zm9vOmJhcg==" },
      ]) {
        const r = await http(api.base, "POST", "/v1/workflows", { body: { type: "noop" }, headers });
        assert.equal(r.status, 401);
        assert.equal(r.body.error.code, "UNAUTHORIZED");
      }
      const admin = await http(api.base, "GET", "/v1/workflows/wf_AAAAAAAAAAAAAAAAAAAA", { key: api.adminToken });
      assert.equal(admin.status, 401, "the admin token is not a tenant key");
    });

    it("refuses a bulk request over 1,000 items or with no items", async () => {
      const depth = await totalIngress(api, "clinic");
      const many = Array.from({ length: 1001 }, () => ({ type: "noop" }));
      const big = await http(api.base, "POST", "/v1/workflows/bulk", { key: api.keys.clinic, body: { workflows: many } });
      const none = await http(api.base, "POST", "/v1/workflows/bulk", { key: api.keys.clinic, body: { workflows: [] } });
      assert.equal(big.status, 400);
      assert.match(big.body.error.message, /at most 1000/);
      assert.equal(none.status, 400);
      assert.equal(await totalIngress(api, "clinic"), depth);
    });
  });

  it("answers 429 BACKPRESSURE with Retry-After at the tenant's maxQueueDepth and enqueues nothing", async () => {
    for (let i = 0; i < 3; i++)
      assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.keys.tiny, body: { type: "noop" } })).status, 202);
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.tiny, body: { type: "noop" } });
    assert.equal(r.status, 429);
    assert.equal(r.body.error.code, "BACKPRESSURE");
    assert.equal(r.headers.get("retry-after"), "5");
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", { key: api.keys.tiny, body: { workflows: [{ type: "noop" }] } });
    assert.equal(bulk.status, 429);
    assert.equal(await totalIngress(api, "tiny"), 3);
    // Another tenant is not affected.
    assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.keys.other, body: { type: "noop" } })).status, 202);
  });

  it("answers 429 BACKPRESSURE with Retry-After at the tenant's maxQueueBytes, and 400 for a payload larger than all of it", async () => {
    const payload = { blob: "x".repeat(390) }; // 401 bytes of JSON
    for (let i = 0; i < 2; i++)
      assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.keys.lean, body: { type: "noop", payload } })).status, 202);
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.lean, body: { type: "noop", payload } });
    assert.equal(r.status, 429, JSON.stringify(r.body));
    assert.equal(r.body.error.code, "BACKPRESSURE");
    assert.match(r.body.error.message, /802 payload bytes queued; 401 more would pass its maxQueueBytes of 1000/);
    assert.equal(r.headers.get("retry-after"), "5");
    assert.deepEqual(r.body.error.details, { retryAfterSec: 5 });
    // What still fits is taken: a small payload within the bytes left.
    assert.equal(
      (await http(api.base, "POST", "/v1/workflows", { key: api.keys.lean, body: { type: "noop", payload: { n: 1 } } })).status,
      202,
    );
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.lean,
      body: { workflows: [{ type: "noop", payload }] },
    });
    assert.equal(bulk.status, 429);
    assert.equal(bulk.headers.get("retry-after"), "5");
    const huge = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.lean,
      body: { type: "noop", payload: { blob: "x".repeat(2_000) } },
    });
    assert.equal(huge.status, 400);
    assert.match(huge.body.error.message, /payload: larger than the tenant's maxQueueBytes \(1000 bytes\)/);
    assert.equal(await totalIngress(api, "lean"), 3);
    assert.equal(Number(await api.platform.redis.get(api.platform.keys.cell("default").queuedBytes("lean"))), 802 + 7);
    // Cancelling gives the bytes back.
    const first = (
      await api.platform.redis.lrange(api.platform.keys.cell("default").queueKey(ingressQueue("lean", "B"), "wait"), -1, -1)
    )[0]!;
    assert.equal((await http(api.base, "DELETE", `/v1/workflows/${first}`, { key: api.keys.lean })).status, 200);
    assert.equal(Number(await api.platform.redis.get(api.platform.keys.cell("default").queuedBytes("lean"))), 401 + 7);
    assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.keys.lean, body: { type: "noop", payload } })).status, 202);
  });

  it("lets an operator set maxQueueBytes like maxQueueDepth, with a tier default, taking effect at once", async () => {
    const admin = { authorization: `Bearer ${api.adminToken}` };
    const shown = await http(api.base, "GET", "/v1/admin/tenants/clinic", { headers: admin });
    assert.equal(shown.body.policy.maxQueueBytes, 256 * 1024 * 1024, "the professional tier's default");
    for (const bad of [0, -1, 1.5, "1mb"]) {
      const r = await http(api.base, "PUT", "/v1/admin/tenants/capped", { headers: admin, body: { tier: "free", maxQueueBytes: bad } });
      assert.equal(r.status, 400, `${bad}`);
      assert.ok(
        r.body.error.details.some((d: { field: string }) => d.field === "maxQueueBytes"),
        JSON.stringify(r.body),
      );
    }
    const put = await http(api.base, "PUT", "/v1/admin/tenants/capped", { headers: admin, body: { tier: "free", maxQueueBytes: 20 } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.policy.maxQueueBytes, 20);
    const key = (await http(api.base, "POST", "/v1/admin/tenants/capped/keys", { headers: admin, body: {} })).body.key;
    const payload = { s: "123456" }; // 12 bytes
    assert.equal((await http(api.base, "POST", "/v1/workflows", { key, body: { type: "noop", payload } })).status, 202);
    assert.equal((await http(api.base, "POST", "/v1/workflows", { key, body: { type: "noop", payload } })).status, 429);
  });

  it("never logs payloads or API keys", async () => {
    await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.clinic,
      body: { type: "noop", payload: { patientName: "PHI-SENTINEL-NAME" } },
    });
    await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, raw: '{"payload":{"ssn":"PHI-SENTINEL-SSN"' });
    const text = api.logs.join("");
    assert.ok(text.includes("/v1/workflows"), "requests are logged");
    assert.ok(!text.includes("PHI-SENTINEL"), "no payload in logs");
    assert.ok(!text.includes(api.keys.clinic!), "no API key in logs");
  });
});

describe("global safety valve", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ a: { tier: "enterprise" }, b: { tier: "enterprise" } }, { FAIRLANE_MAX_QUEUED_TOTAL: "4" });
  });
  after(() => api.stop());

  it("answers 429 to every tenant once the platform's queued total is reached, enqueuing nothing", async () => {
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.a,
      body: { workflows: Array.from({ length: 6 }, () => ({ type: "noop" })) },
    });
    assert.equal(bulk.status, 202);
    assert.equal(bulk.body.accepted.length, 4);
    assert.deepEqual(
      bulk.body.rejected.map((r: { error: { code: string } }) => r.error.code),
      ["BACKPRESSURE", "BACKPRESSURE"],
    );
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.b, body: { type: "noop" } });
    assert.equal(r.status, 429);
    assert.match(r.body.error.message, /safety valve/);
    assert.ok(Number(r.headers.get("retry-after")) > 0);
    assert.equal(await totalIngress(api, "a"), 4);
    assert.equal(await totalIngress(api, "b"), 0);
  });
});

describe("cost budget at admission", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ spender: { tier: "free", budget: { monthlyUsd: 1 } }, saver: { tier: "free", budget: { monthlyUsd: 1 } } });
  });
  after(() => api.stop());

  it("refuses new workflows once the tenant's monthly budget is spent, and only that tenant's", async () => {
    const { TenantBudget } = await import("../../src/runtime/budget.ts");
    const budget = new TenantBudget(api.platform.redis, api.platform.keys.cell("default").budgetPrefix, api.platform.clock);
    assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.keys.spender, body: { type: "noop" } })).status, 202);
    const retried = { type: "noop", idempotencyKey: "spender-retry-1" };
    const first = await http(api.base, "POST", "/v1/workflows", { key: api.keys.spender, body: retried });
    assert.equal(first.status, 202);
    await budget.record("spender", 1.5);
    const depth = await totalIngress(api, "spender");
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.spender, body: { type: "noop" } });
    assert.equal(r.status, 402);
    assert.equal(r.body.error.code, "BUDGET_EXCEEDED");
    assert.equal(await totalIngress(api, "spender"), depth);
    const replay = await http(api.base, "POST", "/v1/workflows", { key: api.keys.spender, body: retried });
    assert.equal(replay.status, 200, "a retry of a request admitted before the month was spent gets its workflow back");
    assert.equal(replay.body.id, first.body.id);
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.spender,
      body: { workflows: [{ type: "noop" }, { type: "noop" }] },
    });
    assert.equal(bulk.status, 402, JSON.stringify(bulk.body));
    assert.equal(await totalIngress(api, "spender"), depth);
    assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.keys.saver, body: { type: "noop" } })).status, 202);
  });
});
