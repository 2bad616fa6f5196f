import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ingressQueue } from "../../queues/names.ts";
import { adminRouter } from "../../src/api/admin.ts";
import { backpressureAdminRouter } from "../../src/api/backpressureAdmin.ts";
import { operatorAdminRouter } from "../../src/api/operatorAdmin.ts";
import { BULL_BOARD_CSP, DASHBOARD_CSP } from "../../src/api/securityHeaders.ts";
import { Downstream } from "../../src/dev/downstream/simulator.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * Operator actions need intent, not ambient credentials (issue 14). A browser
 * that has logged into the dashboard or Bull Board re-sends its Basic
 * credentials with any page's request: a cross-site form POST must change
 * nothing on any state-changing admin route, Bull Board's API included. Same-
 * origin JSON with Basic, and Bearer, still act. Drain needs to be told what
 * to drain. Operator names are checked. Pages carry CSP and frame headers.
 * Slow request bodies time out. The simulated downstream's switches refuse
 * cross-site writes too.
 */

type Route = { method: string; path: string };

/** Every route of an express router (or app), depth first. */
function routesOf(handler: unknown, out: Route[] = []): Route[] {
  const h = handler as { stack?: unknown[]; router?: { stack?: unknown[] } };
  for (const layer of (h?.stack ?? h?.router?.stack ?? []) as {
    route?: { path: string | string[]; methods: Record<string, boolean> };
    handle: unknown;
  }[]) {
    if (!layer.route) routesOf(layer.handle, out);
    else
      for (const m of Object.keys(layer.route.methods))
        for (const p of ([] as string[]).concat(layer.route.path)) out.push({ method: m.toUpperCase(), path: p });
  }
  return out;
}

const writes = (routes: Route[]) => routes.filter((r) => !["GET", "HEAD", "OPTIONS"].includes(r.method));

describe("admin writes need intent, not a browser's ambient Basic credentials", () => {
  let api: TestApi;
  let basic: string;
  let parkedId: string;
  let jobId: string;
  let keyId: string;
  const bearer = () => ({ authorization: `Bearer ${api.adminToken}` });
  const basicAs = (user: string) => `Basic ${Buffer.from(`${user}:${api.adminToken}`).toString("base64")}`;
  const cell = () => api.platform.keys.cell("default");

  before(async () => {
    api = await startTestApi({ victim: { tier: "professional" }, bystander: { tier: "free" } });
    basic = basicAs("oncall");
    keyId = (await api.platform.apiKeys.list("victim"))[0]!.keyId;
    // One workflow parked behind a down dependency (dispatched the way the dispatcher does), then
    // queued work in every class that no dispatcher moves.
    const { redis, keys, admission, registry } = api.platform;
    const c = keys.cell("default");
    await redis.hset(c.workflowDeps, "needs-gw", "gw");
    await redis.hset(c.healthOverride("gw"), "state", "down");
    parkedId = (await admission.admitBulk("victim", [{ type: "needs-gw", class: "A" }], "0".repeat(32))).accepted[0]!.id;
    await new (await import("../../src/dispatch/tenantSync.ts")).TenantSync(redis, keys).sync("default", registry.list());
    await (await import("../../queues/lua/heartbeat.ts")).heartbeat(redis, c, "default", "fake", 5, Date.now(), Date.now() + 60_000);
    const { dispatch } = await import("../../queues/lua/dispatch.ts");
    const r = await dispatch(redis, c, "default", Date.now(), {
      maxMoves: 10,
      reserveA: 0.1,
      batchMaxShare: 0.5,
      batchMinShare: 0.05,
      maxRefresh: 100,
      capacityCap: 0,
      recordTtlSec: 60,
    });
    assert.equal(r.parked, 1);
    for (const cls of ["A", "B", "C", "B"])
      assert.equal(
        (await http(api.base, "POST", "/v1/workflows", { key: api.keys.victim, body: { type: "noop", class: cls } })).status,
        202,
      );
    jobId = (await redis.lrange(c.queueKey(ingressQueue("victim", "B"), "wait"), 0, 0))[0]!;
    assert.ok(jobId, "an ingress job to aim Bull Board's job routes at");
    await api.bullBoard.refresh();
  });
  after(() => api?.stop());

  /** What any admin write could change: policy, keys, audit, queued work, parked work, health, Bull queue state. */
  async function snapshot(): Promise<string> {
    const { redis, registry, apiKeys, keys } = api.platform;
    const c = cell();
    const waits: Record<string, string[]> = {};
    for (const cls of ["A", "B", "C"] as const) waits[cls] = await redis.lrange(c.queueKey(ingressQueue("victim", cls), "wait"), 0, -1);
    return JSON.stringify({
      victim: registry.get("victim")?.spec,
      bystander: registry.get("bystander")?.spec,
      keys: (await apiKeys.list("victim")).map((k) => k.keyId),
      audit: await redis.llen(keys.registry.audit),
      waits,
      meta: await redis.hgetall(c.queueKey(ingressQueue("victim", "B"), "meta")),
      queued: await redis.get(c.queued),
      parked: await redis.zrange(c.parked("gw"), 0, -1),
      parkedState: await redis.hget(c.workflow(parkedId), "state"),
      jobState: await redis.hget(c.workflow(jobId), "state"),
      dependencies: (await http(api.base, "GET", "/v1/admin/dependencies", { headers: bearer() })).body,
    });
  }

  /** Every state-changing route under /v1/admin and Bull Board's API, with real targets filled in. */
  function targets(): Route[] {
    const stub = { bodyLimit: "1mb", usage: { sampler: {} } } as never;
    const admin = [adminRouter(stub), backpressureAdminRouter(stub), operatorAdminRouter(stub)]
      .flatMap((r) => writes(routesOf(r)))
      .map((r) => ({ ...r, path: `/v1/admin${r.path}` }));
    const board = writes(routesOf(api.bullBoard.router)).map((r) => ({ ...r, path: `/admin/queues${r.path}` }));
    assert.ok(admin.length >= 12 && board.length >= 20, `${admin.length} admin and ${board.length} Bull Board writes found`);
    const fill: Record<string, string> = {
      tenant: "victim",
      keyId,
      dep: "gw",
      id: parkedId,
      queueName: ingressQueue("victim", "B"),
      queueStatus: "waiting",
      jobId,
      schedulerId: "any",
    };
    return [...admin, ...board].map((r) => ({
      method: r.method,
      path: r.path.replace(/:(\w+)/g, (_m, k: string) => encodeURIComponent(fill[k] ?? "x")),
    }));
  }

  async function send(method: string, path: string, headers: Record<string, string>, body?: string) {
    const res = await fetch(api.base + path, { method, headers, body });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed };
  }

  it("refuses a cross-site form POST with Basic credentials on every state-changing route, and changes nothing", async () => {
    const before = await snapshot();
    const routes = targets();
    const shapes: { name: string; headers: Record<string, string>; body: string }[] = [
      {
        name: "urlencoded form",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://evil.example" },
        body: "all=true&classes=A&state=down&mca=1",
      },
      {
        name: "multipart form",
        headers: { "content-type": "multipart/form-data; boundary=x", origin: "http://evil.example", "sec-fetch-site": "cross-site" },
        body: '--x\r\nContent-Disposition: form-data; name="all"\r\n\r\ntrue\r\n--x--\r\n',
      },
      {
        name: "text/plain JSON (the enctype trick)",
        headers: { "content-type": "text/plain", origin: "http://evil.example" },
        body: '{"all":true,"state":"down","mca":1}',
      },
      {
        name: "empty form body",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://evil.example" },
        body: "",
      },
      {
        name: "JSON from another origin",
        headers: { "content-type": "application/json", origin: "http://evil.example" },
        body: '{"all":true}',
      },
      {
        name: "JSON from a same-site page",
        headers: { "content-type": "application/json", "sec-fetch-site": "same-site" },
        body: '{"all":true}',
      },
      { name: "JSON from an opaque origin", headers: { "content-type": "application/json", origin: "null" }, body: '{"all":true}' },
      {
        name: "same-origin form",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: api.base, "sec-fetch-site": "same-origin" },
        body: "all=true",
      },
    ];
    for (const { method, path } of routes)
      for (const s of shapes) {
        const r = await send(method, path, { ...s.headers, authorization: basic }, s.body);
        assert.equal(r.status, 403, `${s.name}: ${method} ${path} answered ${r.status} ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, "CROSS_SITE_REQUEST");
        assert.match(r.body.error.message, /Bearer/);
      }
    assert.equal(await snapshot(), before, "no policy, key, audit entry, queued or parked workflow, health mark or queue changed");
    assert.equal(api.platform.registry.get("victim")!.policy.paused, false);
  });

  it("refuses any generated non-JSON or cross-site write with Basic credentials (property)", async () => {
    const before = await snapshot();
    const routes = targets();
    const shape = fc
      .record({
        route: fc.constantFrom(...routes),
        type: fc.constantFrom(
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "text/plain",
          "text/plain;charset=UTF-8",
          "",
          "application/json",
          "application/json; charset=utf-8",
          "APPLICATION/JSON",
        ),
        origin: fc.constantFrom(
          undefined,
          "http://evil.example",
          "null",
          api.base,
          api.base.replace(/:\d+$/, ":1"),
          `${api.base.replace("127.0.0.1", "localhost")}`,
        ),
        site: fc.constantFrom(undefined, "cross-site", "same-site", "same-origin", "none"),
        body: fc.oneof(fc.constant('{"all":true}'), fc.constant(""), fc.string({ maxLength: 200 })),
      })
      .filter((s) => {
        // The model of intent: refused unless same-origin (by Sec-Fetch-Site, else Origin) and JSON.
        const json = s.type.split(";")[0]!.trim().toLowerCase() === "application/json";
        const sameSite =
          s.site !== undefined ? s.site === "same-origin" || s.site === "none" : s.origin === undefined || s.origin === api.base;
        return !(json && sameSite);
      });
    await fc.assert(
      fc.asyncProperty(shape, async (s) => {
        const headers: Record<string, string> = { authorization: basic };
        if (s.type) headers["content-type"] = s.type;
        if (s.origin) headers.origin = s.origin;
        if (s.site) headers["sec-fetch-site"] = s.site;
        const r = await send(s.route.method, s.route.path, headers, s.body);
        assert.equal(r.status, 403, `${JSON.stringify(s)}: ${r.status}`);
      }),
      { numRuns: Number(process.env.FAIRLANE_FUZZ_RUNS ?? 400) },
    );
    assert.equal(await snapshot(), before);
  });

  it("lets same-origin JSON with Basic act, names the Basic user in the audit log, and lets Bearer act on any body", async () => {
    const viaFetchMetadata = await send(
      "POST",
      "/v1/admin/tenants/bystander/pause",
      { authorization: basicAs("oncall.alice"), "content-type": "application/json", "sec-fetch-site": "same-origin", origin: api.base },
      "{}",
    );
    assert.equal(viaFetchMetadata.status, 200, JSON.stringify(viaFetchMetadata.body));
    assert.equal(api.platform.registry.get("bystander")!.policy.paused, true);
    const viaOrigin = await send(
      "POST",
      "/v1/admin/tenants/bystander/resume",
      { authorization: basic, "content-type": "application/json; charset=utf-8", origin: api.base },
      "{}",
    );
    assert.equal(viaOrigin.status, 200);
    // No Origin and no Sec-Fetch-Site: no browser (curl -u); JSON is enough.
    const curl = await send(
      "PATCH",
      "/v1/admin/tenants/bystander",
      { authorization: basic, "content-type": "application/json" },
      '{"mca":7}',
    );
    assert.equal(curl.status, 200, JSON.stringify(curl.body));
    // Bearer is never sent by a browser on its own: no body, a form type, even a foreign Origin act.
    const scripted = await send("POST", "/v1/admin/tenants/bystander/pause", { ...bearer(), origin: "http://elsewhere.example" });
    assert.equal(scripted.status, 200);
    const form = await send(
      "POST",
      "/v1/admin/tenants/bystander/resume",
      { ...bearer(), "content-type": "application/x-www-form-urlencoded" },
      "x=1",
    );
    assert.equal(form.status, 200);
    const entries = (await http(api.base, "GET", "/v1/admin/audit?limit=5", { headers: bearer() })).body.entries as {
      operator: string;
      action: string;
      target: string;
    }[];
    assert.deepEqual(
      entries.map((e) => `${e.operator} ${e.action} ${e.target}`),
      [
        "admin tenant.resume bystander",
        "admin tenant.pause bystander",
        "oncall tenant.patch bystander",
        "oncall tenant.resume bystander",
        "oncall.alice tenant.pause bystander",
      ],
    );
    // Reading with Basic needs nothing more (a cross-site page cannot read the answer anyway).
    assert.equal(
      (await send("GET", "/v1/admin/tenants", { authorization: basic, origin: "http://evil.example", "sec-fetch-site": "cross-site" }))
        .status,
      200,
    );
  });

  it("drains nothing on an empty body: drain names its classes or says all", async () => {
    const c = cell();
    const waiting = async () => {
      let n = 0;
      for (const cls of ["A", "B", "C"] as const) n += await api.platform.redis.llen(c.queueKey(ingressQueue("victim", cls), "wait"));
      return n;
    };
    const queued = await waiting();
    assert.ok(queued >= 3, `${queued} queued`);
    for (const body of [undefined, "", "{}", '{"all":false}', '{"classes":[]}', '{"classes":["B"],"all":true}']) {
      const headers: Record<string, string> = { ...bearer() };
      if (body !== undefined) headers["content-type"] = "application/json";
      const r = await send("POST", "/v1/admin/tenants/victim/drain", headers, body);
      assert.equal(r.status, 400, `${body}: ${JSON.stringify(r.body)}`);
      assert.ok(
        r.body.error.details.some((d: { field: string }) => d.field === "classes" || d.field === "all"),
        JSON.stringify(r.body.error),
      );
    }
    const empty = await send("POST", "/v1/admin/tenants/victim/drain", bearer());
    assert.match(empty.body.error.message, /classes.*"all": true/);
    assert.equal(await waiting(), queued, "nothing was drained");
    const onlyC = await send(
      "POST",
      "/v1/admin/tenants/victim/drain",
      { ...bearer(), "content-type": "application/json" },
      '{"classes":["C"]}',
    );
    assert.equal(onlyC.status, 200);
    assert.equal(onlyC.body.cancelled, 1);
    const all = await send(
      "POST",
      "/v1/admin/tenants/victim/drain",
      { authorization: basic, "content-type": "application/json", "sec-fetch-site": "same-origin" },
      '{"all":true}',
    );
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(await waiting(), 0);
    const entry = (await http(api.base, "GET", "/v1/admin/audit?limit=1", { headers: bearer() })).body.entries[0];
    assert.deepEqual([entry.operator, entry.action, entry.details.classes], ["oncall", "tenant.drain", ["A", "B", "C"]]);
  });

  it("checks the operator's name: a bad Basic user name is 401, a bad X-Fairlane-Operator 400, and neither is stored", async () => {
    const auditBefore = await api.platform.redis.llen(api.platform.keys.registry.audit);
    const json = { "content-type": "application/json" };
    for (const user of ["evil\nadmin tenant.pause x", "a".repeat(65), "<img src=x>", "\u202Eadmin", " padded", "tab\tname", "nul\u0000"]) {
      const r = await send("POST", "/v1/admin/tenants/bystander/pause", { ...json, authorization: basicAs(user) }, "{}");
      assert.equal(r.status, 401, JSON.stringify(user));
      assert.match(r.body.error.message, /Basic user name .* 1-64 characters/);
    }
    const latin1 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
    for (const named of ["<b>x</b>", "b".repeat(65), "a/b", "\xff\xfe", "x;y"]) {
      const r = await send("POST", "/v1/admin/tenants/bystander/pause", { ...json, ...bearer(), "x-fairlane-operator": named }, "{}");
      assert.equal(r.status, 400, JSON.stringify(named));
      assert.equal(r.body.error.code, "INVALID_OPERATOR");
      assert.match(r.body.error.message, /X-Fairlane-Operator must be 1-64 characters/);
    }
    assert.equal(await api.platform.redis.llen(api.platform.keys.registry.audit), auditBefore, "no action, no audit entry");
    assert.equal(api.platform.registry.get("bystander")!.policy.paused, false);
    // Names in any script pass, normalized (NFC): "zoe" + combining diaeresis is stored as "zoë".
    assert.equal(
      (await send("POST", "/v1/admin/tenants/bystander/pause", { ...json, authorization: basicAs("zoe\u0308 o'neil") }, "{}")).status,
      200,
    );
    assert.equal(
      (await send("POST", "/v1/admin/tenants/bystander/resume", { ...json, ...bearer(), "x-fairlane-operator": latin1("Łukasz.k") }, "{}"))
        .status,
      200,
    );
    const entries = (await http(api.base, "GET", "/v1/admin/audit?limit=2", { headers: bearer() })).body.entries as { operator: string }[];
    assert.deepEqual(
      entries.map((e) => e.operator),
      ["Łukasz.k", "zo\u00eb o'neil"],
    );
  });

  it("sends CSP, frame and sniffing protection on the dashboard, Bull Board and the API", async () => {
    const expectFrameless = (h: Headers, what: string) => {
      assert.equal(h.get("x-frame-options"), "DENY", what);
      assert.equal(h.get("x-content-type-options"), "nosniff", what);
      assert.equal(h.get("referrer-policy"), "no-referrer", what);
      assert.match(h.get("content-security-policy") ?? "", /frame-ancestors 'none'/, what);
    };
    const dash = await fetch(`${api.base}/dashboard/`, { headers: { authorization: basic } });
    assert.equal(dash.status, 200);
    expectFrameless(dash.headers, "dashboard");
    assert.equal(dash.headers.get("content-security-policy"), DASHBOARD_CSP);
    assert.match(DASHBOARD_CSP, /default-src 'self'/);
    const board = await fetch(`${api.base}/admin/queues`, { headers: { authorization: basic } });
    assert.equal(board.status, 200);
    expectFrameless(board.headers, "Bull Board");
    assert.equal(board.headers.get("content-security-policy"), BULL_BOARD_CSP);
    assert.match(BULL_BOARD_CSP, /default-src 'self'/);
    const html = await board.text();
    assert.doesNotMatch(html, /<link[^>]+href="https?:/, "no third-party stylesheet (Google Fonts) on the page");
    assert.match(html, /static\/css\/main\.[0-9a-f]+\.css/, "its own stylesheet stays");
    expectFrameless((await fetch(`${api.base}/admin/queues/api/queues`, { headers: { authorization: basic } })).headers, "Bull Board API");
    const json = await fetch(`${api.base}/v1/admin/tenants`, { headers: bearer() });
    expectFrameless(json.headers, "admin API");
    assert.match(json.headers.get("content-security-policy")!, /default-src 'none'/);
    const refused = await fetch(`${api.base}/dashboard/`);
    assert.equal(refused.status, 401);
    expectFrameless(refused.headers, "a 401");
  });
});

describe("slow requests time out", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ victim: { tier: "free" } }, { FAIRLANE_REQUEST_TIMEOUT_MS: "1500", FAIRLANE_HEADERS_TIMEOUT_MS: "1000" });
  });
  after(() => api?.stop());

  /** Writes `head`, then one byte every 200 ms; resolves with what the server answered and when it hung up. */
  function dribble(head: string): Promise<{ ms: number; answer: string }> {
    const { port } = new URL(api.base);
    return new Promise((resolve, reject) => {
      const t0 = Date.now();
      let answer = "";
      const socket = connect(Number(port), "127.0.0.1", () => socket.write(head));
      const drip = setInterval(() => socket.writable && socket.write("x"), 200);
      const guard = setTimeout(() => (socket.destroy(), reject(new Error(`still open after 10 s: ${answer}`))), 10_000);
      socket.on("data", (d) => (answer += d));
      socket.on("error", () => undefined); // a reset after the answer is a hang-up too
      socket.on("close", () => {
        clearInterval(drip);
        clearTimeout(guard);
        resolve({ ms: Date.now() - t0, answer });
      });
    });
  }

  it("answers 408 and hangs up on a body dribbled slower than FAIRLANE_REQUEST_TIMEOUT_MS", async () => {
    const r = await dribble(
      `POST /v1/workflows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${api.keys.victim}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"type":"noop",`,
    );
    assert.match(r.answer, /^HTTP\/1\.1 408/);
    assert.ok(r.ms >= 1400 && r.ms < 3500, `closed after ${r.ms} ms`);
  });

  it("hangs up on headers that never end within FAIRLANE_HEADERS_TIMEOUT_MS", async () => {
    const r = await dribble("POST /v1/admin/tenants/victim/pause HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    assert.ok(r.ms >= 900 && r.ms < 3000, `closed after ${r.ms} ms`);
    assert.ok(r.answer === "" || /^HTTP\/1\.1 408/.test(r.answer), r.answer);
    assert.equal((await http(api.base, "GET", "/healthz")).status, 200, "and keeps serving others");
  });
});

describe("the simulated downstream's switches refuse cross-site writes", () => {
  it("ignores a cross-site form or a foreign Origin, and still takes JSON from its callers", async () => {
    const ds = new Downstream({ capacity: 2, latencyMs: { min: 0, max: 0 } });
    const url = await ds.start();
    try {
      const post = (path: string, headers: Record<string, string>, body: string) =>
        fetch(`${url}${path}`, { method: "POST", headers, body }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { code?: string },
        }));
      for (const [headers, body] of [
        [{ "content-type": "text/plain" }, '{"on":true}'],
        [{ "content-type": "application/x-www-form-urlencoded", origin: "http://evil.example" }, "on=true"],
        [{ "content-type": "application/json", origin: "http://evil.example" }, '{"on":true}'],
        [{ "content-type": "application/json", "sec-fetch-site": "cross-site" }, '{"on":true}'],
        [{}, '{"on":true}'],
      ] as [Record<string, string>, string][]) {
        const r = await post("/admin/outage", headers, body);
        assert.equal(r.status, 403, JSON.stringify(headers));
        assert.equal(r.body.code, "CROSS_SITE_REQUEST");
        assert.equal((await post("/admin/failure-rate", headers, '{"p":1}')).status, 403);
      }
      assert.equal((await fetch(`${url}/health`)).status, 200, "no outage was switched on");
      assert.equal(
        (await post("/admin/outage", { "content-type": "application/json" }, '{"on":true}')).status,
        200,
        "tests, bench and scripts post JSON",
      );
      assert.equal((await fetch(`${url}/health`)).status, 503);
      assert.equal(
        (await post("/admin/outage", { "content-type": "application/json", origin: url }, '{"on":false}')).status,
        200,
        "a same-origin page may",
      );
      assert.equal((await fetch(`${url}/admin/stats`)).status, 200);
    } finally {
      await ds.stop();
    }
  });
});
