import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ingressQueue } from "../../queues/names.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * Bad input, generated: thousands of requests to every public and admin
 * endpoint — malformed and deeply nested JSON, wrong types, huge values,
 * unicode edge cases, header tricks, other tenants' ids, path traversal,
 * payloads nested past the depth limit, `__proto__` keys, numbers JSON
 * cannot hold. None may answer 5xx or enqueue anything it should not, an
 * accepted payload is stored exactly as sent, and the process stays
 * healthy. (What enqueues is counted in Redis, not by the API.)
 */
const RUNS = Number(process.env.FAIRLANE_FUZZ_RUNS ?? 2_500); // × 4 properties + RUNS / 2 payload shapes × 2 requests = 12,500 requests

/**
 * A payload written as JSON text (so it can hold what JSON.stringify never
 * writes: 1e400, a `__proto__` key, 20,000 levels), with what admission must
 * say about it: refuse it (too deep, `__proto__`, not finite) or store it as sent.
 */
interface Shaped {
  text: string;
  depth: number;
  bad: boolean;
}
/** fast-check's jsonValue can make an own `__proto__` key too (seed 738406376 made `{"__proto__":null}`). */
const hasProtoKey = (v: unknown): boolean =>
  typeof v === "object" && v !== null && (Object.keys(v).includes("__proto__") || Object.values(v).some(hasProtoKey));
const leaf: fc.Arbitrary<Shaped> = fc.oneof(
  fc
    .jsonValue({ maxDepth: 1 })
    .map((v) => ({ text: JSON.stringify(v), depth: typeof v === "object" && v !== null ? 1 : 0, bad: hasProtoKey(v) })),
  fc
    .constantFrom("1e308", "-1e308", "5e-324", "123456789012345678901234567890", "1E+2", "0.1e-400")
    .map((t) => ({ text: t, depth: 0, bad: false })),
  fc.constantFrom("1e400", "-1e400", "1e99999", "-2E+999").map((t) => ({ text: t, depth: 0, bad: true })),
);
const keyName = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom("constructor", "prototype", "toString", "hasOwnProperty", "__defineGetter__", "__proto__ ", "__PROTO__", "valueOf"),
  fc.constant("__proto__"),
);
const shapedObject = (child: fc.Arbitrary<Shaped>) =>
  // Unique keys: with a repeated one JSON.parse keeps the last, and the verdict would be about a value it dropped.
  fc.uniqueArray(fc.tuple(keyName, child), { maxLength: 4, selector: ([k]) => k }).map((entries) => ({
    text: `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v.text}`).join(",")}}`,
    depth: 1 + Math.max(0, ...entries.map(([, v]) => v.depth)),
    bad: entries.some(([k, v]) => k === "__proto__" || v.bad),
  }));
const { shaped } = fc.letrec<{ shaped: Shaped; node: Shaped }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    shapedObject(tie("node")),
    fc.array(tie("node"), { maxLength: 4 }).map((items) => ({
      text: `[${items.map((v) => v.text).join(",")}]`,
      depth: 1 + Math.max(0, ...items.map((v) => v.depth)),
      bad: items.some((v) => v.bad),
    })),
    // A chain of arrays or objects around the limit or far past it.
    fc
      .tuple(fc.oneof(fc.integer({ min: 55, max: 70 }), fc.integer({ min: 1_000, max: 20_000 })), fc.boolean(), tie("node"))
      .map(([n, arrays, inner]) => ({
        text: arrays ? "[".repeat(n) + inner.text + "]".repeat(n) : '{"d":'.repeat(n) + inner.text + "}".repeat(n),
        depth: n + inner.depth,
        bad: inner.bad,
      })),
  ),
  shaped: shapedObject(tie("node")),
}));
const MAX_DEPTH = 64;

describe("bad-input fuzzing", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({
      victim: { tier: "professional" },
      attacker: { tier: "free", maxQueueDepth: 1_000_000, maxQueueBytes: 1_000_000_000 },
      shaper: { tier: "free", maxQueueDepth: 1_000_000, maxQueueBytes: 1_000_000_000 },
    });
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
    fc.constantFrom(
      ".",
      "..",
      "../../etc/passwd",
      "%2e%2e%2f",
      "\u0000",
      "\uFFFF",
      "\uD800",
      "𝕗𝕒𝕚𝕣",
      "' OR 1=1 --",
      "<script>",
      "__proto__",
      "constructor",
    ),
  );
  const json = fc.jsonValue({ maxDepth: 6 });
  const deep = fc.integer({ min: 50, max: 5_000 }).map((n) => "[".repeat(n) + "]".repeat(n));
  const body = fc.oneof(
    json.map((v) => JSON.stringify(v)),
    fc
      .record(
        {
          type: fc.oneof(weirdString, json),
          class: fc.oneof(weirdString, json),
          payload: json,
          deadlineAt: fc.oneof(weirdString, json),
          idempotencyKey: json,
        },
        { requiredKeys: [] },
      )
      .map((v) => JSON.stringify(v)),
    weirdString,
    deep,
    fc.constant(`{"type":"noop","payload":${'{"a":'.repeat(2_000)}1${"}".repeat(2_001)}`),
    shaped.map((p) => `{"type":"noop","payload":${p.text}}`),
    fc
      .array(shaped, { minLength: 1, maxLength: 3 })
      .map((ps) => `{"workflows":[${ps.map((p) => `{"type":"noop","payload":${p.text}}`).join(",")}]}`),
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
      fc.asyncProperty(
        fc.constantFrom("/v1/workflows", "/v1/workflows/bulk"),
        body,
        fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16"),
        async (path, raw, ct) => {
          const res = await fetch(api.base + path, {
            method: "POST",
            headers: { authorization: `Bearer ${api.keys.attacker}`, "content-type": ct },
            body: raw,
          });
          const text = await res.text();
          assert.ok(res.status < 500, `${res.status} for ${raw.slice(0, 200)}`);
          if (res.status === 202) {
            const b = JSON.parse(text) as { accepted?: { duplicate?: boolean }[]; duplicate?: boolean };
            accepted += b.accepted ? b.accepted.filter((a) => !a.duplicate).length : b.duplicate ? 0 : 1;
          }
        },
      ),
      { numRuns: RUNS },
    );
    // Generated bodies are almost never valid workflows; whatever was accepted is exactly what is queued.
    const after = await depth("attacker");
    assert.equal(after - before, accepted, "exactly what was accepted is queued, nothing more");
    assert.equal(await depth("victim"), 0, "nothing ever lands in another tenant's queues");
  });

  it("refuses payloads too deep, with __proto__ keys or non-finite numbers, naming the field; stores every other payload exactly as sent", async () => {
    const cell = api.platform.keys.cell("default");
    await fc.assert(
      fc.asyncProperty(shaped, fc.nat(3), async (p, good) => {
        const expectBad = p.bad || p.depth > MAX_DEPTH;
        const before = await depth("shaper");
        const one = await fetch(`${api.base}/v1/workflows`, {
          method: "POST",
          headers: { authorization: `Bearer ${api.keys.shaper}`, "content-type": "application/json" },
          body: `{"type":"noop","payload":${p.text}}`,
        });
        const body = (await one.json()) as { id?: string; error?: { code: string; details: { field: string }[] } };
        assert.ok(one.status < 500, `${one.status} for ${p.text.slice(0, 200)}`);
        if (expectBad) {
          assert.equal(one.status, 400, `${one.status} for ${p.text.slice(0, 200)}`);
          assert.equal(body.error!.code, "INVALID_REQUEST");
          assert.ok(
            body.error!.details.every((d) => d.field.startsWith("payload")),
            JSON.stringify(body.error!.details).slice(0, 300),
          );
          assert.equal(await depth("shaper"), before, "a refused workflow enqueues nothing");
        } else {
          assert.equal(one.status, 202, `${one.status} ${JSON.stringify(body).slice(0, 300)} for ${p.text.slice(0, 200)}`);
          const data = await api.platform.redis.hget(cell.jobKey(ingressQueue("shaper", "B"), body.id!), "data");
          assert.deepEqual(JSON.parse(data!), JSON.parse(p.text), "stored exactly as sent");
          assert.equal(await depth("shaper"), before + 1);
        }
        // In a bulk request the same payload is that item's own verdict, between good items.
        const items = [...Array.from({ length: good }, () => '{"type":"noop"}'), `{"type":"noop","payload":${p.text}}`, '{"type":"noop"}'];
        const bulk = await fetch(`${api.base}/v1/workflows/bulk`, {
          method: "POST",
          headers: { authorization: `Bearer ${api.keys.shaper}`, "content-type": "application/json" },
          body: `{"workflows":[${items.join(",")}]}`,
        });
        const result = (await bulk.json()) as { accepted: { index: number }[]; rejected: { index: number; error: { code: string } }[] };
        assert.equal(bulk.status, 202);
        assert.deepEqual(
          result.rejected.map((r) => [r.index, r.error.code]),
          expectBad ? [[good, "INVALID_REQUEST"]] : [],
        );
        assert.equal(result.accepted.length, items.length - (expectBad ? 1 : 0));
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
    assert.equal(await depth("victim"), 0, "nothing ever lands in another tenant's queues");
  });

  it("never answers 5xx to reads and cancels, and never shows another tenant's workflow", async () => {
    const { body: mine } = await (async () => {
      const res = await fetch(`${api.base}/v1/workflows`, {
        method: "POST",
        headers: { authorization: `Bearer ${api.keys.victim}`, "content-type": "application/json" },
        body: '{"type":"noop"}',
      });
      return { body: (await res.json()) as { id: string } };
    })();
    await fc.assert(
      fc.asyncProperty(fc.oneof(weirdString, fc.constant(mine.id)), fc.constantFrom("GET", "DELETE"), async (id, method) => {
        // Percent-encode every byte (encodeURIComponent refuses lone surrogates; the server must not care).
        const path = [...Buffer.from(id)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
        const res = await fetch(`${api.base}/v1/workflows/${path}`, { method, headers: { authorization: `Bearer ${api.keys.attacker}` } });
        const text = await res.text();
        assert.ok(res.status < 500, `${res.status} for ${id}`);
        // An empty id is GET /v1/workflows/, and so is "." ("%2e" is a dot segment the URL parser removes):
        // the attacker's own run list, which must not hold the victim's.
        if ((id === "" || id === ".") && method === "GET")
          assert.ok(res.status === 200 && !text.includes(mine.id), "only the caller's own workflows are listed");
        else assert.notEqual(res.status, 200, "another tenant's workflow is never shown or cancelled");
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
      fc.asyncProperty(
        auth,
        fc.constantFrom(
          "/v1/workflows",
          "/v1/admin/tenants",
          "/admin/queues/api/queues",
          "/metrics",
          "/v1/admin/audit",
          "/v1/admin/usage",
          "/v1/admin/usage/victim",
          "/v1/admin/capacity-report",
          "/dashboard/",
        ),
        async (a, path) => {
          const headers: Record<string, string> = a ? { authorization: a.replace(/[^\x20-\x7e]/g, "?") } : {};
          const status = await send(
            path === "/v1/workflows" ? "POST" : "GET",
            path,
            { ...headers, "content-type": "application/json" },
            path === "/v1/workflows" ? '{"type":"noop"}' : undefined,
          );
          assert.ok(status === 401 || status === 400 || status === 404, `${status} for ${a.slice(0, 80)} ${path}`);
        },
      ),
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
          const path =
            verb === "GET" ? rest! + [...Buffer.from(raw.slice(0, 200))].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("") : rest!;
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
