import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createKeys } from "../../queues/keys.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { connect } from "../../src/lib/redis.ts";
import { resolveOrg } from "../../src/tenancy/orgs.ts";
import { resolvePolicy } from "../../src/tenancy/policy.ts";
import type { TenantEntry } from "../../src/tenancy/registry.ts";
import { testRedisUrl } from "../helpers/redis.ts";

function entry(tenant: string, spec: Record<string, unknown>): TenantEntry {
  const r = resolvePolicy(spec);
  assert.ok(r.ok);
  return { tenant, spec: r.spec, policy: r.policy };
}

describe("tenant sync", () => {
  it("writes a tenant whose entry is new or whose org appeared; leaves the others", { timeout: 30_000 }, async () => {
    const redis = connect(await testRedisUrl());
    const keys = createKeys(`tsync-${process.pid}-${Date.now()}`);
    const sync = new TenantSync(redis, keys);
    const a = entry("a", { tier: "professional", mca: 5, org: "acme" });
    const b = entry("b", { tier: "professional", mca: 6 });
    const cellName = a.policy.cell;
    const cell = keys.cell(cellName);
    try {
      assert.equal(await sync.sync(cellName, [a, b], []), 2);
      assert.equal(await redis.hget(cell.tenantCaps("a"), "org"), "", "an org the registry does not have: a lone tenant");

      // The same entries (a reload that found them unchanged): nothing to write.
      assert.equal(await sync.sync(cellName, [a, b], []), 0);

      // The org appears: a's entry is the same object, but its fields are not.
      const acme = resolveOrg({ mca: 10 });
      assert.ok(acme.ok);
      assert.equal(await sync.sync(cellName, [a, b], [{ org: "acme", policy: acme.policy }]), 2); // the org and a
      assert.equal(await redis.hget(cell.tenantCaps("a"), "org"), "acme");

      // b changed (a new entry): only b is written.
      const b2 = entry("b", { tier: "professional", mca: 9 });
      assert.equal(await sync.sync(cellName, [a, b2], [{ org: "acme", policy: acme.policy }]), 1);
      assert.equal(await redis.hget(cell.tenantCaps("b"), "mca"), "9");

      // b left the registry: paused in the cell, its queued work still visible.
      assert.equal(await sync.sync(cellName, [a], [{ org: "acme", policy: acme.policy }]), 1);
      assert.equal(await redis.hget(cell.tenantCaps("b"), "paused"), "1");

      // A dispatcher that starts now learns the cell's tenants from Redis: b is among them, and gone.
      // acme's and a's caps are in the cell as it would write them: only b is written.
      await redis.hset(cell.tenantCaps("b"), "paused", "0");
      assert.equal(await new TenantSync(redis, keys).sync(cellName, [a], [{ org: "acme", policy: acme.policy }]), 1);
      assert.equal(await redis.hget(cell.tenantCaps("b"), "paused"), "1");
    } finally {
      const found = await redis.keys(`${keys.root}*`);
      if (found.length) await redis.del(...found);
      await redis.quit();
    }
  });

  it("a restarted dispatcher writes, and marks dirty, only what the cell does not already hold", { timeout: 30_000 }, async () => {
    const redis = connect(await testRedisUrl());
    const keys = createKeys(`tsync-r-${process.pid}-${Date.now()}`);
    const [a, b, c] = ["a", "b", "c"].map((t, i) => entry(t, { tier: "professional", mca: 5 + i, pools: ["default", `p${i}`] }));
    const cellName = a!.policy.cell;
    const cell = keys.cell(cellName);
    const restart = () => new TenantSync(redis, keys).sync(cellName, [a!, b!], []);
    try {
      await new TenantSync(redis, keys).sync(cellName, [a!, b!, c!], []);
      await new TenantSync(redis, keys).sync(cellName, [a!, b!], []); // c left: paused in the cell
      assert.equal(await redis.hget(cell.tenantCaps("c"), "paused"), "1");
      await redis.del(cell.dirty);

      assert.equal(await restart(), 0, "the cell holds every tenant's caps: nothing to write");
      assert.equal(await redis.scard(cell.dirty), 0, "and no tenant's readiness to recompute");

      // What the cell lost or holds differently is written again, and only that tenant marked.
      await redis.hset(cell.tenantCaps("a"), "mca", "99");
      await redis.srem(cell.tenants, "b");
      assert.equal(await restart(), 2);
      assert.deepEqual((await redis.smembers(cell.dirty)).sort(), ["a", "b"]);
      assert.equal(await redis.hget(cell.tenantCaps("a"), "mca"), "5");
      assert.equal(await redis.sismember(cell.tenants, "b"), 1);

      await redis.del(cell.dirty);
      await redis.srem(cell.pools, "p1");
      assert.equal(await restart(), 1, "b's pool missing from the cell's pools");
      assert.deepEqual(await redis.smembers(cell.dirty), ["b"]);
      assert.equal(await redis.sismember(cell.pools, "p1"), 1);
    } finally {
      const found = await redis.keys(`${keys.root}*`);
      if (found.length) await redis.del(...found);
      await redis.quit();
    }
  });
});
