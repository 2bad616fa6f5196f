import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { runCli, type CliResult } from "../helpers/cli.ts";
import { testRedisUrl } from "../helpers/redis.ts";
import { spawnRole, type RoleProcess } from "../helpers/roles.ts";

/**
 * `fairlane workflows ...`, `fairlane why` and admin-token discovery as real child
 * processes of the `fairlane` bin (bin/fairlane.js, as `npx fairlane` runs it) against a
 * real api on a real Redis, with a real dispatcher and exec worker running the work.
 * Every run gets an empty data folder unless the test gives one, so a developer's own
 * .fairlane/admin-token never leaks in.
 */

describe("fairlane workflows and why against a running platform", () => {
  let api: TestApi;
  let roles: RoleProcess[] = [];
  let empty: string;

  const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    runCli(args, {
      FAIRLANE_URL: api.base,
      FAIRLANE_ADMIN_TOKEN: "",
      FAIRLANE_API_KEY: "",
      FAIRLANE_DATA_DIR: empty,
      USER: "night-oncall",
      ...env,
    });
  const admin = () => ({ FAIRLANE_ADMIN_TOKEN: api.adminToken });
  const key = (tenant: string) => ({ FAIRLANE_API_KEY: api.keys[tenant]! });
  const enqueue = async (tenant: string, body: Record<string, unknown>) => {
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys[tenant], body });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.id as string;
  };

  before(async () => {
    empty = mkdtempSync(join(tmpdir(), "fl-cli-wf-"));
    api = await startTestApi({ clinic: { tier: "professional" }, lab: { tier: "free", mca: 2, burst: { mca: 2 } } });
    const env = {
      REDIS_URL: await testRedisUrl(),
      FAIRLANE_PREFIX: api.platform.config.FAIRLANE_PREFIX,
      FAIRLANE_HEARTBEAT_TTL_MS: "2000",
      FAIRLANE_SHUTDOWN_GRACE_MS: "1000",
    };
    roles = [spawnRole("exec", { ...env, FAIRLANE_CONCURRENCY: "4" }), spawnRole("dispatcher", env)];
  });
  after(async () => {
    await Promise.all(roles.map((r) => r.stop()));
    await api.stop();
    rmSync(empty, { recursive: true, force: true });
  });

  it("waits for a workflow: exit 0 when it completes, 3 with its error code when it fails, 5 when it outlasts --timeout", {
    timeout: 60_000,
  }, async () => {
    const ok = await enqueue("clinic", { type: "noop", class: "B", payload: { durationMs: 200 } });
    const done = await cli(["workflows", "wait", ok, "--timeout", "30s"], key("clinic"));
    assert.equal(done.code, 0, done.stderr + roles.map((r) => r.output()).join("\n"));
    assert.match(done.stdout, new RegExp(`^${ok}: completed \\(took `));

    const deadlineAt = new Date(Date.now() + 2_000).toISOString();
    const late = await enqueue("clinic", { type: "noop", class: "B", deadlineAt, payload: { durationMs: 60_000 } });
    const failed = await cli(["workflows", "wait", late, "--timeout", "30s", "--json"], key("clinic"));
    assert.equal(failed.code, 3, failed.stderr);
    assert.match(failed.stderr, new RegExp(`${late}: failed DEADLINE_EXCEEDED`));
    assert.equal(JSON.parse(failed.stdout).state, "failed");

    const slow = await enqueue("clinic", { type: "noop", class: "B", payload: { durationMs: 60_000 } });
    const gaveUp = await cli(["workflows", "wait", slow, "--timeout", "1s"], key("clinic"));
    assert.equal(gaveUp.code, 5, gaveUp.stderr);
    assert.match(gaveUp.stderr, /WAIT_TIMEOUT: still (queued|running)/);

    // The admin token waits on any tenant's workflow through the admin read.
    const cancel = await cli(["workflows", "cancel", slow], key("clinic"));
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, new RegExp(`${slow}: (cancelled|cancel requested)`));
    const cancelled = await cli(["workflows", "wait", slow, "--timeout", "20s"], admin());
    assert.equal(cancelled.code, 4, cancelled.stderr);
    assert.match(cancelled.stderr, /cancelled/);
  });

  it("lists a tenant's workflows a page at a time, filtered, and never another tenant's", { timeout: 60_000 }, async () => {
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push(await enqueue("lab", { type: "eligibility-check", class: "C", payload: { i } }));
    const other = await enqueue("clinic", { type: "noop", class: "A" });
    const one = JSON.parse((await cli(["workflows", "list", "--limit", "2", "--type", "eligibility-check", "--json"], key("lab"))).stdout);
    assert.equal(one.workflows.length, 2);
    assert.ok(one.nextCursor, "a next page");
    const next = JSON.parse(
      (await cli(["workflows", "list", "--limit", "2", "--type", "eligibility-check", "--cursor", one.nextCursor, "--json"], key("lab")))
        .stdout,
    );
    assert.equal(next.workflows.length, 2);
    assert.equal(new Set([...one.workflows, ...next.workflows].map((w: { id: string }) => w.id)).size, 4, "no repeats across pages");
    const all = JSON.parse((await cli(["workflows", "list", "--all", "--limit", "2", "--json"], key("lab"))).stdout);
    assert.deepEqual(all.workflows.map((w: { id: string }) => w.id).sort(), [...mine].sort(), "every page, and only lab's");
    assert.equal(all.nextCursor, null);
    const classA = JSON.parse((await cli(["workflows", "list", "--class", "A", "--json"], key("lab"))).stdout);
    assert.deepEqual(classA.workflows, [], "lab has no Class A work; clinic's is not lab's");

    const table = await cli(["workflows", "list", "--limit", "3"], key("lab"));
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+TYPE\s+CLASS\s+STATE\s+ENQUEUED/);
    assert.match(table.stdout, /^more: --cursor \S+ \(or --all\)$/m);

    // Another tenant's workflow is not found with lab's key, and is with the admin token.
    const foreign = await cli(["workflows", "get", other], key("lab"));
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /404 NOT_FOUND/);
    const got = await cli(["workflows", "get", other], admin());
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /^tenant\s+clinic$/m);
    assert.match(got.stdout, /^type \/ class\s+noop \/ A$/m);

    // The admin lists any tenant's, and must say whose.
    const noTenant = await cli(["workflows", "list"], admin());
    assert.equal(noTenant.code, 1);
    assert.match(noTenant.stderr, /--tenant/);
    const byAdmin = JSON.parse((await cli(["workflows", "list", "--tenant", "lab", "--all", "--json"], admin())).stdout);
    assert.deepEqual(byAdmin.workflows.map((w: { id: string }) => w.id).sort(), [...mine].sort());
    const bad = await cli(["workflows", "list", "--state", "sleeping"], key("lab"));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Allowed choices are queued, running/);
  });

  it("why <tenant> and why <workflow-id> name the constraint holding queued work", { timeout: 60_000 }, async () => {
    assert.equal((await cli(["pause", "lab"], admin())).code, 0);
    // The dispatcher must have synced the pause into the cell before the work arrives, or it may start it.
    const caps = api.platform.keys.cell("default").tenantCaps("lab");
    for (let i = 0; i < 100 && (await api.platform.redis.hget(caps, "paused")) !== "1"; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await api.platform.redis.hget(caps, "paused"), "1", "the dispatcher synced the pause");
    const held = await enqueue("lab", { type: "noop", class: "B" });
    const tenant = await cli(["why", "lab"], admin());
    assert.equal(tenant.code, 0, tenant.stderr);
    assert.match(tenant.stdout.split("\n")[0]!, /^lab: \d+ queued, HELD by paused \(class B\)/);
    assert.match(tenant.stdout, /^ {2}B\s+1 queued, 0 running\s+paused: the tenant is paused/m);
    const json = JSON.parse((await cli(["why", "lab", "--json"], admin())).stdout);
    assert.equal(json.classes.B.held.code, "paused");

    const wf = await cli(["why", held], admin());
    assert.equal(wf.code, 0, wf.stderr);
    assert.match(wf.stdout, new RegExp(`^${held} \\(lab, class B, noop\\): QUEUED for .*, held by\\n {2}paused: the tenant is paused`));
    assert.equal((await cli(["resume", "lab"], admin())).code, 0);
    assert.equal((await cli(["workflows", "wait", held, "--timeout", "20s"], key("lab"))).code, 0);
    assert.match((await cli(["why", held], admin())).stdout, /: COMPLETED .* ago: nothing holds it/);

    const unknown = await cli(["why", "nobody"], admin());
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /404/);
  });

  it("finds the admin token in a local data folder, says where with --verbose, and never prints it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "fl-cli-data-"));
    try {
      writeFileSync(join(dataDir, "admin-token"), `${api.adminToken}\n`, { mode: 0o600 });
      const r = await cli(["tenants", "--verbose"], { FAIRLANE_DATA_DIR: dataDir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`admin token from ${join(dataDir, "admin-token")}`));
      assert.ok(!(r.stdout + r.stderr).includes(api.adminToken), "the token is never printed");

      const none = await cli(["tenants"]);
      assert.equal(none.code, 1);
      assert.match(none.stderr, new RegExp(`admin token is required.*looked in ${join(empty, "admin-token")}`));

      const remote = await cli(["tenants", "--url", "http://fairlane.example.invalid:3000"], { FAIRLANE_DATA_DIR: dataDir });
      assert.equal(remote.code, 1);
      assert.match(remote.stderr, /is not this machine, so no local data folder was read/);

      writeFileSync(join(dataDir, "admin-token"), "a-token-of-another-platform\n");
      const stale = await cli(["tenants"], { FAIRLANE_DATA_DIR: dataDir });
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, new RegExp(`401 UNAUTHORIZED: .*the admin token came from ${join(dataDir, "admin-token")}`));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("the capacity report on a few seconds of data says 'not enough data' and recommends nothing", async () => {
    const r = await cli(["capacity"], admin());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /minimum evidence 20h\nNOT ENOUGH DATA for 2 of 2 tenants/);
    assert.match(r.stdout, /^clinic\s+\d+ \(not enough data\)\s+\d+ \(not enough data\)/m);
    const json = JSON.parse((await cli(["capacity", "--json"], admin())).stdout);
    assert.equal(json.enoughData, false);
    assert.ok(
      json.tenants.every((t: { mca: { action: string }; mctc: { action: string } }) => t.mca.action === "keep" && t.mctc.action === "keep"),
    );
  });
});
