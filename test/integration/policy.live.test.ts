import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { createKeys } from "../../queues/keys.ts";
import { connect } from "../../src/lib/redis.ts";
import { PolicyRegistry } from "../../src/tenancy/registry.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { testRedisUrl } from "../helpers/redis.ts";

describe("live policy", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional", mca: 10 } });
  });
  after(() => api.stop());

  it("a policy change through the admin API is seen by a second process within 1 s", { timeout: 30_000 }, async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/helpers/policyWatcher.ts", await testRedisUrl(), api.platform.keys.root, "clinic"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const seen: { mca: number | null; at: number }[] = [];
      const lines = createInterface({ input: child.stdout! });
      const waitFor = (pred: (s: { mca: number | null }) => boolean) =>
        new Promise<{ mca: number | null; at: number }>((resolve) => {
          const hit = seen.find(pred);
          if (hit) return resolve(hit);
          lines.on("line", function onLine(l) {
            const s = JSON.parse(l);
            seen.push(s);
            if (pred(s)) {
              lines.off("line", onLine);
              resolve(s);
            }
          });
        });
      await waitFor((s) => s.mca === 10);
      const changedAt = Date.now();
      const r = await http(api.base, "PUT", "/v1/admin/tenants/clinic", {
        headers: { authorization: `Bearer ${api.adminToken}` },
        body: { tier: "professional", mca: 42 },
      });
      assert.equal(r.status, 200);
      const seenChange = await waitFor((s) => s.mca === 42);
      const lag = seenChange.at - changedAt;
      assert.ok(lag < 1000, `seen after ${lag} ms`);
    } finally {
      child.kill("SIGTERM");
    }
  });
});

describe("policy reload", () => {
  it("resolves again only the specs that changed; the others keep their entry", { timeout: 30_000 }, async () => {
    const redis = connect(await testRedisUrl());
    const keys = createKeys(`reload-${process.pid}-${Date.now()}`);
    const writer = new PolicyRegistry(redis, keys, 60_000);
    const reader = new PolicyRegistry(redis, keys, 60_000);
    try {
      await writer.seed(
        new Map([
          ["a", { tier: "professional", mca: 5 }],
          ["b", { tier: "professional", mca: 6 }],
          ["c", { tier: "professional", mca: 7 }],
        ]),
        true,
      );
      await reader.start();
      const a = reader.get("a")!;
      const b = reader.get("b")!;
      const c = reader.get("c")!;
      assert.deepEqual([a.policy.mca, b.policy.mca, c.policy.mca], [5, 6, 7]);

      await writer.put("b", { tier: "professional", mca: 42 });
      await redis.multi().hdel(keys.registry.tenants, "c").incr(keys.registry.version).exec();
      assert.equal(await reader.fresh("not-a-tenant"), undefined); // reloads, as a poll that saw the version move

      assert.equal(reader.get("a"), a, "unchanged: the same entry, not resolved again");
      assert.notEqual(reader.get("b"), b);
      assert.equal(reader.get("b")!.policy.mca, 42);
      assert.equal(reader.get("c"), undefined, "deleted: gone");
      assert.deepEqual(
        reader.list().map((e) => e.tenant),
        ["a", "b"],
      );
    } finally {
      reader.stop();
      writer.stop();
      await redis.del(keys.registry.tenants, keys.registry.orgs, keys.registry.version, keys.registry.changes);
      await redis.quit();
    }
  });

  it("a write reads its own change at once, and another process's write in between too", { timeout: 30_000 }, async () => {
    const redis = connect(await testRedisUrl());
    const keys = createKeys(`writes-${process.pid}-${Date.now()}`);
    const one = new PolicyRegistry(redis, keys, 60_000);
    const two = new PolicyRegistry(redis, keys, 60_000);
    try {
      await one.seed(new Map([["a", { tier: "professional", mca: 5 }]]), true);
      await two.start();
      const a = one.get("a")!;

      // Nothing written in between: the write puts its entry in place; the others stay as they were.
      await one.put("b", { tier: "professional", mca: 6 });
      assert.equal(one.get("b")!.policy.mca, 6);
      assert.equal(one.get("a"), a);

      // Another process wrote in between: this one's next write loads the registry, and sees both.
      await two.put("c", { tier: "professional", mca: 7 });
      assert.equal(one.get("c"), undefined, "not polled (60 s)");
      await one.put("b", { tier: "professional", mca: 8 });
      assert.deepEqual(
        one.list().map((e) => [e.tenant, e.policy.mca]),
        [
          ["a", 5],
          ["b", 8],
          ["c", 7],
        ],
      );
      assert.equal(one.currentVersion, await redis.get(keys.registry.version));

      // The cells the policies name (where reads look for work a moved tenant left) follow every write.
      assert.deepEqual(one.cells(), ["default"]);
      await one.put("c", { tier: "professional", mca: 7, cell: "east" });
      assert.deepEqual(one.cells(), ["default", "east"]);
    } finally {
      one.stop();
      two.stop();
      await redis.del(keys.registry.tenants, keys.registry.orgs, keys.registry.version, keys.registry.changes);
      await redis.quit();
    }
  });

  it("a process catches up on what the change log names; without a log entry, on the whole registry", { timeout: 30_000 }, async () => {
    const redis = connect(await testRedisUrl());
    const keys = createKeys(`catchup-${process.pid}-${Date.now()}`);
    const writer = new PolicyRegistry(redis, keys, 60_000);
    const reader = new PolicyRegistry(redis, keys, 20);
    const until = async (what: string, ok: () => boolean) => {
      for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 20)))
        if (Date.now() - t0 > 5_000) assert.fail(`not seen within 5 s: ${what}`);
    };
    try {
      await writer.seed(new Map([["a", { tier: "professional", mca: 5 }]]), true);
      await reader.start();
      // Written behind the registry's back: no version bump, no log entry.
      await redis.hset(keys.registry.tenants, "x", JSON.stringify({ tier: "professional", mca: 3 }));

      await writer.put("a", { tier: "professional", mca: 6 });
      await until("a's change", () => reader.get("a")?.policy.mca === 6);
      assert.equal(reader.get("x"), undefined, "only what the log names is read again");

      // A write that logs nothing (a seed, an older process): the next poll reads everything.
      await redis.incr(keys.registry.version);
      await until("x, on a whole read", () => reader.get("x")?.policy.mca === 3);
      assert.equal(reader.currentVersion, await redis.get(keys.registry.version));
    } finally {
      reader.stop();
      writer.stop();
      await redis.del(keys.registry.tenants, keys.registry.orgs, keys.registry.version, keys.registry.changes);
      await redis.quit();
    }
  });
});
