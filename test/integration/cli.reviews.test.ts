import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { runCli, type CliResult } from "../helpers/cli.ts";
import { testRedisUrl } from "../helpers/redis.ts";
import { spawnRole, type RoleProcess } from "../helpers/roles.ts";

/**
 * `fairlane reviews` and `fairlane reviewer-key ...` as real child processes of the `fairlane` bin
 * against a real api on a real Redis, with a real dispatcher and exec worker running `reviewed` workflows
 * (test/helpers/observedWorkflow.ts: they call ctx.review) until they wait for a reviewer: real review
 * items, not seeded keys. A key the
 * CLI creates claims its own pool's items and no other's, and stops working the moment it is revoked.
 */
describe("fairlane reviews and reviewer-key against a running platform", () => {
  let api: TestApi;
  let empty: string;
  let roles: RoleProcess[] = [];
  const ids: Record<string, string[]> = { clinic: [], lab: [] };
  let keyId = "";
  let key = "";

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, { FAIRLANE_URL: api.base, FAIRLANE_ADMIN_TOKEN: api.adminToken, FAIRLANE_DATA_DIR: empty, USER: "night-oncall" });
  const reviewer = (path: string, k = key) => http(api.base, "GET", path, { key: k });
  const depth = async () => (await http(api.base, "GET", "/v1/admin/reviewer-pools", { key: api.adminToken })).body;

  before(async () => {
    empty = mkdtempSync(join(tmpdir(), "fl-cli-rev-"));
    api = await startTestApi({ clinic: { tier: "professional", review: { pool: "prior-auth" } }, lab: { tier: "professional" } });
    const env = {
      REDIS_URL: await testRedisUrl(),
      FAIRLANE_PREFIX: api.platform.config.FAIRLANE_PREFIX,
      FAIRLANE_HEARTBEAT_TTL_MS: "2000",
      FAIRLANE_SHUTDOWN_GRACE_MS: "1000",
    };
    roles = [spawnRole("exec", { ...env, FAIRLANE_CONCURRENCY: "4" }), spawnRole("dispatcher", env)];
    const obs = `obs:{${randomBytes(4).toString("hex")}}`;
    for (const [tenant, cls] of [
      ["clinic", "A"],
      ["clinic", "A"],
      ["clinic", "B"],
      ["lab", "C"],
    ] as const) {
      const r = await http(api.base, "POST", "/v1/workflows", {
        key: api.keys[tenant],
        body: { type: "reviewed", class: cls, payload: { obs, case: `${tenant}-${ids[tenant]!.length}` } },
      });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      ids[tenant]!.push(r.body.id);
    }
    for (let i = 0; ; i++) {
      const d = await depth();
      if (d.waiting.reduce((s: number, w: { waiting: number }) => s + w.waiting, 0) === 4) break;
      assert.ok(i < 600, `review items waiting: ${JSON.stringify(d)}\n${roles.map((r) => r.output()).join("\n")}`);
      await sleep(50);
    }
  });
  after(async () => {
    await Promise.all(roles.map((r) => r.stop()));
    await api?.stop();
    rmSync(empty, { recursive: true, force: true });
  });

  it("shows the items waiting per pool, tenant and class, and claimed per pool, as a table and as JSON", async () => {
    const table = await cli(["reviews"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^POOL\s+TENANT\s+CLASS\s+WAITING$/m);
    assert.match(table.stdout, /^prior-auth\s+clinic\s+A\s+2$/m, table.stdout);
    assert.match(table.stdout, /^prior-auth\s+clinic\s+B\s+1$/m);
    assert.match(table.stdout, /^shared\s+lab\s+C\s+1$/m);
    assert.match(table.stdout, /^POOL\s+WAITING\s+CLAIMED$/m);
    assert.match(table.stdout, /^prior-auth\s+3\s+0$/m);
    assert.match(table.stdout, /^shared\s+1\s+0$/m);

    const json = await cli(["reviews", "--json", "--pool", "prior-auth"]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      waiting: [
        { pool: "prior-auth", tenant: "clinic", cls: "A", waiting: 2 },
        { pool: "prior-auth", tenant: "clinic", cls: "B", waiting: 1 },
      ],
      claimed: { "prior-auth": 0 },
    });
  });

  it("creates a reviewer key that claims its own pool's items only, and the depth shows the claim", async () => {
    const created = await cli(["reviewer-key", "create", "prior-auth", "--label", "night desk"]);
    assert.equal(created.code, 0, created.stderr);
    key = created.stdout.trim();
    assert.match(key, /^flr_[0-9a-f]{12}_\S+$/, "the key alone on stdout");
    keyId = key.split("_")[1]!;
    assert.match(created.stderr, new RegExp(`reviewer key ${keyId} for pool prior-auth; it is shown only now`));

    const claimed = await reviewer("/v1/reviews/next");
    assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
    assert.equal(claimed.body.pool, "prior-auth");
    assert.equal(claimed.body.class, "A", "Class A first");
    assert.ok(ids.clinic!.includes(claimed.body.id));
    assert.equal((await reviewer(`/v1/reviews/${ids.lab![0]}`)).status, 404, "the shared pool's item is not this key's");

    const claimedDepth = await cli(["reviews"]);
    assert.match(claimedDepth.stdout, /^prior-auth\s+clinic\s+A\s+1$/m, claimedDepth.stdout);
    assert.match(claimedDepth.stdout, /^prior-auth\s+2\s+1$/m);
    const audit = await http(api.base, "GET", "/v1/admin/audit?limit=20", { key: api.adminToken });
    const entry = audit.body.entries.find((e: { action: string }) => e.action === "reviewer-key.create");
    assert.equal(entry?.target, "prior-auth");
    assert.equal(entry?.operator, "night-oncall");
  });

  it("lists a pool's keys without the keys themselves, and revokes one at once", async () => {
    const list = await cli(["reviewer-key", "list", "prior-auth"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${keyId}\\s+night desk\\s+\\d{4}-`, "m"), list.stdout);
    assert.doesNotMatch(list.stdout, /flr_/);
    const others = await cli(["reviewer-key", "list", "shared", "--json"]);
    assert.deepEqual(JSON.parse(others.stdout), { keys: [] });

    const revoked = await cli(["reviewer-key", "revoke", "prior-auth", keyId]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`prior-auth: reviewer key ${keyId} revoked`));
    assert.equal((await reviewer("/v1/reviews/next")).status, 401, "a revoked key stops working at once");
    assert.match((await cli(["reviewer-key", "list", "prior-auth"])).stdout, /prior-auth: no reviewer keys/);

    const again = await cli(["reviewer-key", "revoke", "prior-auth", keyId]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /404/);
    const badPool = await cli(["reviewer-key", "create", "Not A Pool"]);
    assert.equal(badPool.code, 1);
    assert.match(badPool.stderr, /400 INVALID_REQUEST.*\n\s+pool:/);
  });
});
