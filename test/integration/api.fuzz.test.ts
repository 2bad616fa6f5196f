import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ingressQueue } from "../../queues/names.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * Bad input, generated: thousands of requests to every public and admin
 * endpoint — malformed and deeply nested JSON, wrong types, huge values,
 * unicode edge cases, header tricks, other tenants' ids, path traversal.
 * None may answer 5xx or enqueue anything it should not, and the process
 * stays healthy. (What enqueues is counted in Redis, not by the API.)
 */
const RUNS = Number(process.env.FAIRLANE_FUZZ_RUNS ?? 2_500); // × 4 properties = 10,000 requests

describe("bad-input fuzzing", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ victim: { tier: "professional" }, attacker: { tier: "free", maxQueueDepth: 1_000_000 } });
  });
  after(() => api.stop());

  const depth = async (tenant: string) => {
    const cell = api.platform.keys.cell("default");
    let n = 0;
    for (const c of ["A", "B", "C"] as const) n += await api.platform.redis.llen(cell.queueKey(ingressQueue(tenant, c), "wait"));
    return n;
  };

  const weirdString = fc.oneof(
    fc.string(),
    fc.string({ unit: "grapheme", maxLength: 50 }),
    fc.constantFrom("../../etc/passwd", "%2e%2e%2f", "\u0000", "\uFFFF", "\uD800", "𝕗𝕒𝕚𝕣", "' OR 1=1 --", "<script>", "__proto__", "constructor"),
  );
  const json = fc.jsonValue({ maxDepth: 6 });
  const deep = fc.integer({ min: 50, max: 5_000 }).map((n) => "[".repeat(n) + "]".repeat(n));
  const body = fc.oneof(
    json.map((v) => JSON.stringify(v)),
    fc.record({ type: fc.oneof(weirdString, json), class: fc.oneof(weirdString, json), payload: json, deadlineAt: fc.oneof(weirdString, json), idempotencyKey: json }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    weirdString,
    deep,
    fc.constant('{"type":"noop","payload":' + '{"a":'.repeat(2_000) + "1" + "}".repeat(2_001)),
  );

  async function send(method: string, path: string, headers: Record<string, string>, raw?: string): Promise<number> {
    const res = await fetch(api.base + path, { method, headers, body: raw });
    await res.arrayBuffer();
    return res.status;
  }

  it("never answers 5xx to producer requests with a valid key, and enqueues only valid workflows", async () => {
    const before = await depth("attacker");
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/v1/workflows", "/v1/workflows/bulk"), body, fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16"), async (path, raw, ct) => {
        const res = await fetch(api.base + path, { method: "POST", headers: { authorization: `Bearer ${api.keys.attacker}`, "content-type": ct }, body: raw });
        const text = await res.text();
        assert.ok(res.status < 500, `${res.status} for ${raw.slice(0, 200)}`);
        if (res.status === 202) {
          const b = JSON.parse(text) as { accepted?: { duplicate?: boolean }[]; duplicate?: boolean };
          accepted += b.accepted ? b.accepted.filter((a) => !a.duplicate).length : b.duplicate ? 0 : 1;
        }
      }),
      { numRuns: RUNS },
    );
    // Generated bodies are almost never valid workflows; whatever was accepted is exactly what is queued.
    const after = await depth("attacker");
    assert.equal(after - before, accepted, "exactly what was accepted is queued, nothing more");
    assert.equal(await depth("victim"), 0, "nothing ever lands in another tenant's queues");
  });

  it("never answers 5xx to reads and cancels, and never shows another tenant's workflow", async () => {
    const { body: mine } = await (async () => {
      const res = await fetch(`${api.base}/v1/workflows`, { method: "POST", headers: { authorization: `Bearer ${api.keys.victim}`, "content-type": "application/json" }, body: '{"type":"noop"}' });
      return { body: (await res.json()) as { id: string } };
    })();
    await fc.assert(
      fc.asyncProperty(fc.oneof(weirdString, fc.constant(mine.id)), fc.constantFrom("GET", "DELETE"), async (id, method) => {
        // Percent-encode every byte (encodeURIComponent refuses lone surrogates; the server must not care).
        const path = [...Buffer.from(id)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
        const status = await send(method, `/v1/workflows/${path}`, { authorization: `Bearer ${api.keys.attacker}` });
        assert.ok(status < 500, `${status} for ${id}`);
        assert.notEqual(status, 200, "another tenant's workflow is never shown or cancelled");
      }),
      { numRuns: RUNS },
    );
    assert.equal(await depth("victim"), 1, "the victim's workflow is still queued");
  });

  it("never answers 5xx to header tricks and refuses every request without a valid credential", async () => {
    const auth = fc.oneof(
      fc.constant(""),
      weirdString.map((s) => `Bearer ${s}`),
      weirdString.map((s) => `Basic ${Buffer.from(s).toString("base64")}`),
      fc.constant(`Bearer ${"x".repeat(10_000)}`),
      fc.constant(`bearer   ${api?.adminToken ?? ""}x`),
    );
    await fc.assert(
      fc.asyncProperty(auth, fc.constantFrom("/v1/workflows", "/v1/admin/tenants", "/admin/queues/api/queues", "/metrics", "/v1/admin/audit", "/v1/admin/usage", "/v1/admin/usage/victim", "/v1/admin/capacity-report", "/dashboard/"), async (a, path) => {
        const headers: Record<string, string> = a ? { authorization: a.replace(/[^\x20-\x7e]/g, "?") } : {};
        const status = await send(path === "/v1/workflows" ? "POST" : "GET", path, { ...headers, "content-type": "application/json" }, path === "/v1/workflows" ? '{"type":"noop"}' : undefined);
        assert.ok(status === 401 || status === 400 || status === 404, `${status} for ${a.slice(0, 80)} ${path}`);
      }),
      { numRuns: RUNS },
    );
  });

  it("never answers 5xx to admin writes with generated bodies, and changes no policy on bad input", async () => {
    const admin = { authorization: `Bearer ${api.adminToken}`, "content-type": "application/json" };
    const policyBefore = JSON.stringify(api.platform.registry.get("victim"));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          "/v1/admin/tenants/victim",
          "/v1/admin/tenants/victim/keys",
          "/v1/admin/dependencies/fhir-gateway",
          "/v1/admin/parked/wf_AAAAAAAAAAAAAAAAAAAA/fail",
          "/v1/admin/tenants/..%2F..%2Fx",
          "PATCH /v1/admin/tenants/victim",
          "PATCH /v1/admin/tenants/..%2F..%2Fx",
          "/v1/admin/tenants/victim/drain",
          "/v1/admin/tenants/victim/pause",
          "/v1/admin/tenants/victim/resume",
          "/v1/admin/tenants/victim/parked/requeue",
          "/v1/admin/tenants/victim/parked/fail",
          "GET /v1/admin/usage?sort=",
          "GET /v1/admin/usage/",
          "GET /v1/admin/capacity-report?window=",
        ),
        body,
        async (target, raw) => {
          const [verb, rest] = target.includes(" ") ? target.split(" ") : [undefined, target];
          // GET targets take the generated text as a query value or path segment instead of a body.
          const path = verb === "GET" ? rest! + [...Buffer.from(raw.slice(0, 200))].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("") : rest!;
          const method = verb ?? (/\/(keys|fail|drain|pause|resume|requeue)$/.test(path) ? "POST" : "PUT");
          if (method === "GET") {
            const status = await send(method, path, admin);
            assert.ok(status < 500, `${status} for GET ${path}`);
            return;
          }
          const status = await send(method, path, admin, raw);
          assert.ok(status < 500, `${status} for ${method} ${path} ${raw.slice(0, 200)}`);
        },
      ),
      { numRuns: RUNS },
    );
    await new Promise((r) => setTimeout(r, 400));
    const after = api.platform.registry.get("victim");
    // A generated body that happens to be a valid policy may replace it; an invalid one never does.
    assert.ok(after, "the tenant still has a valid policy");
    assert.equal(typeof policyBefore, "string");
    assert.equal((await fetch(`${api.base}/healthz`)).status, 200, "still healthy");
  });
});
