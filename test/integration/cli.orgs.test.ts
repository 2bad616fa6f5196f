import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { runCli, type CliResult } from "../helpers/cli.ts";
import { testRedisUrl } from "../helpers/redis.ts";
import { spawnRole, type RoleProcess } from "../helpers/roles.ts";

/**
 * `fairlane orgs` and `fairlane org get|put|delete` as real child processes of the `fairlane` bin against a
 * real api on a real Redis, with a real dispatcher and exec worker (separate processes) running `observed`
 * workflows (test/helpers/observedWorkflow.ts) of two banks in one org: the org's cap, not the banks' own,
 * is what holds their work, and the CLI shows it.
 */
describe("fairlane orgs and org against a running platform", () => {
  let api: TestApi;
  let dir: string;
  let roles: RoleProcess[] = [];

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, { FAIRLANE_URL: api.base, FAIRLANE_ADMIN_TOKEN: api.adminToken, FAIRLANE_DATA_DIR: dir, USER: "night-oncall" });
  const admin = (method: string, path: string, body?: unknown) => http(api.base, method, path, { key: api.adminToken, body });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fl-cli-org-"));
    api = await startTestApi({ "bank-a": { tier: "professional" }, "bank-b": { tier: "professional" }, lone: { tier: "professional" } });
    const env = {
      REDIS_URL: await testRedisUrl(),
      FAIRLANE_PREFIX: api.platform.config.FAIRLANE_PREFIX,
      FAIRLANE_HEARTBEAT_TTL_MS: "2000",
      FAIRLANE_SHUTDOWN_GRACE_MS: "1000",
    };
    roles = [spawnRole("exec", { ...env, FAIRLANE_CONCURRENCY: "8" }), spawnRole("dispatcher", env)];
  });
  after(async () => {
    await Promise.all(roles.map((r) => r.stop()));
    await api?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("creates an org from a YAML file, changes only the fields given as flags, and names a bad field", async () => {
    const file = join(dir, "holdco.yaml");
    writeFileSync(file, "# the holding's contract\nmca: 2\nmcaUrgent: 1\ndescription: ten banks, one contract\n");
    const created = await cli(["org", "put", "holdco", "--file", file]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, "holdco: mca 2, mcaUrgent 1, mctc –, weight 1, budget –/month; 0 tenants\n");

    const weighted = await cli(["org", "put", "holdco", "--weight", "3", "--monthly-usd", "5000", "--json"]);
    assert.equal(weighted.code, 0, weighted.stderr);
    assert.deepEqual(JSON.parse(weighted.stdout).policy, {
      weight: 3,
      mca: 2,
      mcaUrgent: 1,
      mctc: null,
      budget: { monthlyUsd: 5000 },
      description: "ten banks, one contract",
    });
    assert.equal((await cli(["org", "put", "holdco", "--mctc", "50"])).code, 0);
    const lifted = await cli(["org", "put", "holdco", "--mctc", "none", "--json"]);
    assert.equal(lifted.code, 0, lifted.stderr);
    assert.deepEqual([JSON.parse(lifted.stdout).policy.mctc, JSON.parse(lifted.stdout).policy.mca], [null, 2], "none lifts only that cap");
    const audit = await admin("GET", "/v1/admin/audit?limit=10");
    const puts = audit.body.entries.filter((e: { action: string; target: string }) => e.action === "org.put" && e.target === "holdco");
    assert.equal(puts.length, 4);
    assert.equal(puts[0].operator, "night-oncall");

    const badName = await cli(["org", "put", "Hold!Co", "--mca", "2"]);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /400 INVALID_REQUEST.*\n\s+org: invalid org name/);
    const badFile = join(dir, "bad.json");
    writeFileSync(badFile, JSON.stringify({ mca: -1, colour: "red" }));
    const bad = await cli(["org", "put", "holdco", "--file", badFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 INVALID_REQUEST/);
    assert.match(bad.stderr, /\n\s+mca: /);
    assert.match(bad.stderr, /\n\s+\(body\): .*colour/);
    const nothing = await cli(["org", "put", "holdco"]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /nothing to write/);
    assert.equal((await cli(["org", "put", "holdco", "--mca", "0"])).code, 1, "a cap flag below 1 is refused before any request");
    assert.equal((await admin("GET", "/v1/admin/orgs/holdco")).body.policy.mca, 2, "nothing changed");
  });

  it("shows an org at its cap while each of its tenants is under its own", { timeout: 60_000 }, async () => {
    for (const bank of ["bank-a", "bank-b"]) {
      const put = await admin("PUT", `/v1/admin/tenants/${bank}`, { tier: "professional", org: "holdco" });
      assert.equal(put.status, 200, JSON.stringify(put.body));
    }
    assert.deepEqual((await admin("GET", "/v1/admin/orgs/holdco")).body.tenants, ["bank-a", "bank-b"]);
    // Work is counted against the org from the dispatcher's first pass that knows the membership (within
    // about a second): before it, the banks would run as lone tenants. Wait for it, as it is written in the cell.
    const cell = api.platform.keys.cell("default");
    for (let i = 0; ; i++) {
      const orgs = await Promise.all(["bank-a", "bank-b"].map((b) => api.platform.redis.hget(cell.tenantCaps(b), "org")));
      if (orgs.every((o) => o === "holdco")) break;
      assert.ok(i < 200, `the dispatcher has not synced the banks' org: ${orgs}`);
      await sleep(50);
    }
    const obs = `obs:{${randomBytes(4).toString("hex")}}`;
    for (const bank of ["bank-a", "bank-b"])
      for (let i = 0; i < 3; i++) {
        const r = await http(api.base, "POST", "/v1/workflows", {
          key: api.keys[bank],
          body: { type: "observed", class: "B", payload: { obs, durationMs: 30_000 } },
        });
        assert.equal(r.status, 202, JSON.stringify(r.body));
      }
    for (let i = 0; ; i++) {
      const live = (await admin("GET", "/v1/admin/orgs/holdco")).body.live;
      if (live.running.BC === 2) break;
      assert.ok(i < 600, `the org's running: ${JSON.stringify(live)}\n${roles.map((r) => r.output()).join("\n")}`);
      await sleep(50);
    }
    await sleep(300); // a dispatcher pass more: the cap holds, nothing else starts

    const table = await cli(["orgs"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ORG\s+STATE\s+WEIGHT\s+RUN B\+C\/MCA\s+RUN A\/MCA-URGENT\s+TENANTS$/m);
    assert.match(table.stdout, /^holdco\s+AT CAP \(MCA\)\s+3\s+2\/2\s+0\/1\s+bank-a, bank-b$/m, table.stdout);
    assert.doesNotMatch(table.stdout, /lone/, "a tenant of no org is no org's");

    const json = JSON.parse((await cli(["orgs", "--json"])).stdout);
    assert.equal(json.orgs.length, 1);
    const [holdco] = json.orgs;
    assert.deepEqual([holdco.live.cell, holdco.live.running, holdco.live.caps], ["default", { A: 0, BC: 2 }, { mca: 2, mcaUrgent: 1 }]);
    assert.equal(holdco.live.byTenant["bank-a"].BC + holdco.live.byTenant["bank-b"].BC, 2);

    const one = await cli(["org", "get", "holdco"]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^description\s+ten banks, one contract$/m);
    assert.match(one.stdout, /^state\s+AT CAP \(MCA\)$/m);
    assert.match(one.stdout, /^running B\+C \/ mca\s+2 \/ 2$/m);
    assert.match(one.stdout, /^cell\s+default$/m);
    assert.match(one.stdout, /^TENANT\s+RUN B\+C\/OWN MCA\s+RUN A\/OWN MCA-URGENT$/m);
    const own = [...one.stdout.matchAll(/^(bank-[ab])\s+(\d)\/10\s+0\/3$/gm)].map((m) => [m[1], Number(m[2])]);
    assert.deepEqual(
      own.map(([t]) => t),
      ["bank-a", "bank-b"],
      one.stdout,
    );
    assert.equal(
      own.reduce((s, [, n]) => s + (n as number), 0),
      2,
      "each bank under its own mca of 10, the two at the org's 2",
    );
    const missing = await cli(["org", "get", "ghost"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 NOT_FOUND: org not found/);
  });

  it("refuses to delete an org while it has tenants, and deletes it once they have left", async () => {
    const refused = await cli(["org", "delete", "holdco"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /409 ORG_HAS_TENANTS: org "holdco" still has tenants \(bank-a, bank-b\)/);
    for (const bank of ["bank-a", "bank-b"]) assert.equal((await admin("PATCH", `/v1/admin/tenants/${bank}`, { org: null })).status, 200);
    const deleted = await cli(["org", "delete", "holdco"]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, "holdco: deleted\n");
    assert.equal((await cli(["orgs"])).stdout, "no orgs\n");
    const again = await cli(["org", "delete", "holdco"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /404 NOT_FOUND/);
  });
});
