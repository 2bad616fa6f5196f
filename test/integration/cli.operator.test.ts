import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { REPO_ROOT } from "../../src/lib/config.ts";
import { runListIds } from "../helpers/runList.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * The on-call CLI as a real child process (node + tsx, like `npm run fairlane`)
 * against a real api on a real Redis: tables by default, --json for scripts,
 * API errors as one line naming the field with exit code 1, and every write
 * in the audit log under the operator's name.
 */
function cli(api: TestApi, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/index.ts", ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, FAIRLANE_URL: api.base, FAIRLANE_ADMIN_TOKEN: api.adminToken, USER: "night-oncall", ...env },
        timeout: 30_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("fairlane on-call CLI against a running api", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional" }, lab: { tier: "free", mca: 2, burst: { mca: 2 } } });
    for (let i = 0; i < 3; i++) await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop", class: "C" } });
    await new Promise((r) => setTimeout(r, 1_100)); // usage is at most half a sampler tick old
  });
  after(() => api.stop());

  const audit = async () =>
    (await http(api.base, "GET", "/v1/admin/audit?limit=50", { headers: { authorization: `Bearer ${api.adminToken}` } })).body.entries as {
      action: string;
      target: string;
      operator: string;
    }[];

  it("lists tenants with live usage as a table, and as JSON with --json", async () => {
    const table = await cli(api, ["tenants"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^pool \d+\/\d+ slots/m);
    assert.match(table.stdout, /TENANT\s+STATE\s+RUN\/MCA/);
    assert.match(table.stdout, /^clinic\s+ok\s+0\/10\s.*\s3\s+0\s+–$/m, table.stdout);
    const json = await cli(api, ["tenants", "--json", "--sort", "tenant"]);
    const body = JSON.parse(json.stdout);
    assert.deepEqual(
      body.tenants.map((t: { tenant: string }) => t.tenant),
      ["clinic", "lab"],
    );
    assert.equal(body.tenants[0].queued.C, 3);
    const bad = await cli(api, ["tenants", "--sort", "nonsense"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 INVALID_REQUEST.*\n\s+sort:/);
  });

  it("shows one tenant, and says so when it does not exist", async () => {
    const one = await cli(api, ["tenant", "lab"]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /running B\+C \/ mca\s+0 \/ 2/);
    const missing = await cli(api, ["tenant", "nobody"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 NOT_FOUND/);
  });

  it("changes a budget live, refuses an invalid change naming the field, and audits who did it", async () => {
    const set = await cli(api, ["set", "clinic", "--mca", "12", "--mctc", "60", "--per-workflow-usd", "0.75"]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /clinic: mca 12 .*mctc 60 .*\$0\.75\/workflow/);
    assert.equal(api.platform.registry.get("clinic")!.policy.mca, 12);
    assert.equal(api.platform.registry.get("clinic")!.policy.budget.perWorkflowUsd, 0.75);
    assert.equal(api.platform.registry.get("clinic")!.policy.budget.monthlyUsd, 2000, "the rest of the budget is kept");
    const invalid = await cli(api, ["set", "lab", "--mca", "5"]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /burst\.mca: must be >= mca/);
    assert.equal(api.platform.registry.get("lab")!.policy.mca, 2, "unchanged");
    const nothing = await cli(api, ["set", "lab"]);
    assert.equal(nothing.code, 2);
    const badArg = await cli(api, ["set", "lab", "--mca", "-3"]);
    assert.notEqual(badArg.code, 0);
    assert.match(badArg.stderr, /positive integer/);
    const e = (await audit()).find((x) => x.action === "tenant.patch" && x.target === "clinic");
    assert.equal(e?.operator, "night-oncall");
  });

  it("pauses and resumes a tenant", async () => {
    assert.match((await cli(api, ["pause", "lab"])).stdout, /lab: paused/);
    assert.equal(api.platform.registry.get("lab")!.policy.paused, true);
    const json = JSON.parse((await cli(api, ["resume", "lab", "--json"])).stdout);
    assert.deepEqual(json, { tenant: "lab", paused: false });
    const actions = (await audit()).map((x) => `${x.action} ${x.target}`);
    assert.ok(actions.includes("tenant.pause lab") && actions.includes("tenant.resume lab"));
  });

  it("drains a tenant's ingress only with --yes, ending each workflow cancelled", async () => {
    const refused = await cli(api, ["drain", "clinic"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--yes/);
    const done = await cli(api, ["drain", "clinic", "--yes", "--json"]);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout), { tenant: "clinic", cancelled: 3, skipped: 0 });
    const cell = api.platform.keys.cell("default");
    assert.equal(Number(await api.platform.redis.get(cell.queued)), 0, "the queued counter is back to zero");
    assert.equal(await api.platform.redis.llen(cell.queueKey("ingress.clinic.C", "wait")), 0);
  });

  it("erases a tenant's ended workflows only with --yes: the drained ones go, their records with them", async () => {
    const cell = api.platform.keys.cell("default");
    const ids = await runListIds(api.platform.redis, cell, "clinic");
    assert.equal(ids.length, 3, "the three workflows the drain above cancelled");
    const refused = await cli(api, ["erase", "clinic", "--before", new Date().toISOString()]);
    assert.equal(refused.code, 2);
    assert.equal(await api.platform.redis.exists(...ids.map((id) => cell.workflow(id))), 3, "nothing erased without --yes");
    const done = await cli(api, ["erase", "clinic", "--before", new Date().toISOString(), "--yes"]);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /clinic: 3 ended workflows erased \(0 already expired\); kept, not ended: 0 queued/);
    assert.equal(await api.platform.redis.exists(...ids.map((id) => cell.workflow(id))), 0);
    const future = await cli(api, ["erase", "clinic", "--before", String(Date.now() + 3_600_000), "--yes"]);
    assert.notEqual(future.code, 0);
    assert.match(future.stderr, /future/);
    // The erasure is in the tenant's own audit trail; the workflows' transitions stay (no data in them).
    const audit = await cli(api, ["audit", "clinic", "--limit", "1000"]);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /admin:tenant\.erase\s+operator:\S+/);
    assert.equal(audit.stdout.match(/ ended /g)?.length, 3, "the three drained workflows ended cancelled");
  });

  it("lists, requeues and fails parked workflows", async () => {
    const list = await cli(api, ["parked", "list", "--tenant", "clinic"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /no parked workflows/);
    const requeue = await cli(api, ["parked", "requeue", "--tenant", "clinic", "--json"]);
    assert.deepEqual(JSON.parse(requeue.stdout), { tenant: "clinic", requeued: 0, skipped: 0 });
    const one = await cli(api, ["parked", "requeue", "wf_AAAAAAAAAAAAAAAAAAAA"]);
    assert.equal(one.code, 1);
    assert.match(one.stderr, /404/);
    assert.equal((await cli(api, ["parked", "fail", "--tenant", "clinic"])).code, 2, "failing needs --yes");
    assert.equal((await cli(api, ["parked", "fail", "--tenant", "clinic", "--yes"])).code, 0);
  });

  it("marks a dependency down and up, and clears the mark", async () => {
    assert.match((await cli(api, ["dependency", "down", "fhir-gateway"])).stdout, /fhir-gateway: marked down; now down/);
    const list = await cli(api, ["dependency", "list"]);
    assert.match(list.stdout, /^fhir-gateway\s+down\s+operator/m);
    assert.match((await cli(api, ["dependency", "up", "fhir-gateway"])).stdout, /marked healthy; now healthy/);
    assert.match((await cli(api, ["dependency", "clear", "fhir-gateway"])).stdout, /mark cleared; now missing/);
  });

  it("prints the capacity report, and refuses a bad window", async () => {
    const report = await cli(api, ["capacity", "--window", "1h"]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, /capacity report, window 1h/);
    assert.match(report.stdout, /^clinic\s+12 \(not enough data\)\s+60 \(not enough data\)/m, "seconds of data: no raise or lower");
    const json = JSON.parse((await cli(api, ["capacity", "--json"])).stdout);
    assert.equal(json.window, "24h");
    assert.ok(json.tenants.every((t: { evidence: { samples: number } }) => typeof t.evidence.samples === "number"));
    const bad = await cli(api, ["capacity", "--window", "2y"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /window/);
  });

  it("refuses to run without an admin token, and a tenant key is not one", async () => {
    // A data folder with no admin-token file in it: a developer's own .fairlane is not looked in.
    const none = await cli(api, ["tenants"], { FAIRLANE_ADMIN_TOKEN: "", FAIRLANE_DATA_DIR: "/nonexistent/fairlane-data" });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /admin token is required/);
    const tenantKey = await cli(api, ["tenants", "--token", api.keys.clinic!]);
    assert.equal(tenantKey.code, 1);
    assert.match(tenantKey.stderr, /401 UNAUTHORIZED/);
  });
});
