import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { http } from "../helpers/api.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";
import { spawnRole, type RoleProcess } from "../helpers/roles.ts";
import { assertPromtoolClean, promtoolCheckMetrics as promtool } from "../helpers/promtool.ts";

/**
 * Every role as a real process on a real Redis, real traffic through the api
 * over HTTP, and each role's /metrics scraped over loopback: parsed by
 * Prometheus' own parser (promtool), counting what happened, and refusing
 * anyone without a metrics or admin credential.
 */
async function listeningPort(role: RoleProcess, msg: string): Promise<number> {
  for (let i = 0; i < 400; i++) {
    for (const line of role.output().split("\n")) {
      if (!line.includes(`"msg":"${msg}"`)) continue;
      const port = (JSON.parse(line) as { port?: number }).port;
      if (port) return port;
    }
    if (role.child.exitCode !== null) throw new Error(`role exited: ${role.output().slice(-2000)}`);
    await sleep(50);
  }
  throw new Error(`no "${msg}" line: ${role.output().slice(-2000)}`);
}

/** The value of one sample line, e.g. `fairlane_dispatched_total{pool="default"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("/metrics from every role", () => {
  let d: Deployment;
  let api: RoleProcess;
  let base = "";
  const ports: Record<string, number> = {};
  const adminToken = randomBytes(18).toString("hex");
  const metricsToken = randomBytes(18).toString("hex");
  let clinicKey = "";
  const scraped: Record<string, string> = {};

  before(async () => {
    d = await deployment({ clinic: { tier: "professional" }, hospital: { tier: "enterprise" } }, { FAIRLANE_METRICS_TOKEN: metricsToken });
    clinicKey = (await d.p.apiKeys.create("clinic")).key;
    const withPort = { FAIRLANE_METRICS_PORT: "0", LOG_LEVEL: "info" };
    const roles = {
      exec: d.start("exec", { ...withPort, FAIRLANE_CONCURRENCY: "4" }),
      dispatcher: d.start("dispatcher", withPort),
      health: d.start("health", {
        ...withPort,
        FAIRLANE_HEALTH_INTERVAL_MS: "200",
        FAIRLANE_HEALTH_PROBES: '[{"dep":"fhir-gateway","kind":"tcp","host":"127.0.0.1","port":1}]',
      }),
      recovery: d.start("recovery", withPort),
    };
    api = spawnRole("api", { ...d.env, FAIRLANE_ADMIN_TOKEN: adminToken, PORT: "0", LOG_LEVEL: "info" });
    for (const [name, role] of Object.entries(roles)) ports[name] = await listeningPort(role, "metrics listening");
    base = `http://127.0.0.1:${await listeningPort(api, "api listening")}`;
    await d.waitCapacity(4);

    // Traffic: 2 workflows per class, one invalid request, then wait for all to finish.
    const ids = new Map<string, string>();
    for (const cls of ["A", "A", "B", "B", "C", "C"]) {
      const r = await http(base, "POST", "/v1/workflows", {
        key: clinicKey,
        body: { type: "noop", class: cls, payload: { durationMs: 20 } },
      });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      ids.set(r.body.id, "clinic");
    }
    assert.equal((await http(base, "POST", "/v1/workflows", { key: clinicKey, body: { class: "A" } })).status, 400);
    await d.waitEnded(ids, 30_000);
    await sleep(300); // let the health role probe a few times
    for (const name of Object.keys(ports)) {
      const r = await fetch(`http://127.0.0.1:${ports[name]}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
      assert.equal(r.status, 200, name);
      scraped[name] = await r.text();
    }
    const r = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    scraped.api = await r.text();
  });
  after(async () => {
    await api?.stop();
    await d?.close();
  });

  it("serves text every role's scrape that Prometheus' own parser accepts", (t) => {
    for (const [role, text] of Object.entries(scraped)) {
      assert.ok(text.includes("# TYPE fairlane_"), `${role} serves Fairlane metrics`);
      const check = promtool(text);
      if (!check) return t.skip("promtool not installed (apt-get install prometheus)");
      assertPromtoolClean(check.status, `${role}:\n${check.output}`);
    }
  });

  it("counts what happened, in the role where it happened", () => {
    assert.equal(sample(scraped.api!, 'fairlane_admissions_total{tenant="clinic",class="A",outcome="accepted"}'), 2);
    assert.equal(sample(scraped.api!, 'fairlane_admissions_total{tenant="clinic",class="none",outcome="invalid"}'), 1);
    assert.equal(sample(scraped.dispatcher!, 'fairlane_dispatched_total{pool="default"}'), 6);
    assert.ok(sample(scraped.dispatcher!, "fairlane_dispatch_seconds_count")! >= 1);
    for (const cls of ["A", "B", "C"]) {
      assert.equal(sample(scraped.exec!, `fairlane_workflow_runs_total{tenant="clinic",class="${cls}",outcome="completed"}`), 2, cls);
      assert.equal(sample(scraped.exec!, `fairlane_enqueue_to_start_seconds_count{class="${cls}"}`), 2, cls);
      assert.equal(sample(scraped.exec!, `fairlane_enqueue_to_start_by_tenant_seconds_count{tenant="clinic",class="${cls}"}`), 2, cls);
    }
    assert.equal(sample(scraped.exec!, 'fairlane_pool_wait_seconds_count{tenant="clinic"}'), 6);
    assert.equal(sample(scraped.exec!, "fairlane_orphaned_tool_calls_total"), 0);
    assert.equal(
      sample(scraped.health!, 'fairlane_dependency_state{dependency="fhir-gateway"}'),
      0,
      "a dependency nobody listens for is down",
    );
    // The api seeded the example tenants too; all are under the cap (100), so each has its own label.
    assert.equal(sample(scraped.exec!, "fairlane_metrics_labelled_tenants"), d.p.registry.list().length);
  });

  it("refuses /metrics without admin or metrics credentials; a tenant API key is neither", async () => {
    const get = (url: string, authorization?: string) =>
      fetch(url, { headers: authorization ? { authorization } : {} }).then((r) => r.status);
    const basic = (secret: string) => `Basic ${Buffer.from(`prometheus:${secret}`).toString("base64")}`;
    assert.equal(await get(`${base}/metrics`), 401);
    assert.equal(await get(`${base}/metrics`, `Bearer ${clinicKey}`), 401);
    assert.equal(await get(`${base}/metrics`, basic(clinicKey)), 401);
    assert.equal(await get(`${base}/metrics`, `Bearer ${metricsToken}`), 200);
    assert.equal(await get(`${base}/metrics`, basic(adminToken)), 200);
    assert.equal(await get(`${base}/v1/admin/tenants`, `Bearer ${metricsToken}`), 401, "the metrics token opens nothing else");
    const exec = `http://127.0.0.1:${ports.exec}/metrics`;
    assert.equal(await get(exec), 401);
    assert.equal(await get(exec, `Bearer ${clinicKey}`), 401);
    assert.equal(await get(exec, basic(metricsToken)), 200);
  });

  it("a role asked to serve metrics nobody could read refuses to start", async () => {
    const { FAIRLANE_METRICS_TOKEN: _token, ...env } = d.env;
    const role = spawnRole("dispatcher", { ...env, FAIRLANE_METRICS_PORT: "0" });
    const code = await new Promise<number | null>((r) => role.child.once("exit", r));
    assert.equal(code, 1);
    assert.match(role.output(), /FAIRLANE_METRICS_PORT is set but no credential/);
  });
});
