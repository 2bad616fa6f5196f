import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createKeys } from "../../queues/keys.ts";
import { LuaScript } from "../../queues/lua/script.ts";
import { cellSlots } from "../../src/exec/execWorker.ts";
import { hashSlot } from "../../src/lib/hashSlot.ts";
import { parseClusterNodes, redisTargetFromEnv } from "../../src/lib/redis.ts";

describe("Redis Cluster safety (DESIGN invariant 5)", () => {
  it("computes hash slots as Redis does: the spec's check value, and only the first non-empty {tag}", () => {
    assert.equal(hashSlot("123456789"), 12739);
    assert.equal(hashSlot("fl:{fl.north}:fl:wf:1"), hashSlot("{fl.north}"));
    assert.notEqual(hashSlot("a{}b"), hashSlot(""));
    assert.equal(hashSlot("{fl.reg}"), 3052);
  });

  it("keeps every key of a cell, its BullMQ queues included, in the cell's slot", () => {
    const keys = createKeys("fl");
    const cell = keys.cell("north");
    const slot = hashSlot(cell.own);
    for (const k of [
      cell.wake,
      cell.slots,
      cell.workflow("x"),
      cell.queueKey("ingress.t.B", "wait"),
      cell.jobKey("exec.default", "1"),
      cell.gate("t").held,
      cell.parked("dep"),
      cell.rateLimitPrefix,
    ])
      assert.equal(hashSlot(k), slot, k);
    assert.notEqual(hashSlot(keys.registry.tenants), slot, "the registry is a slot of its own");
  });

  it("refuses a script call whose keys span two slots, before it reaches Redis", async () => {
    const keys = createKeys("fl");
    const script = new LuaScript("markDegraded-2.lua");
    const redis = {} as Redis; // never touched: the check comes first
    await assert.rejects(
      async () => script.run(redis, [keys.cell("north").health("db"), keys.cell("south").deps], [1, "x", 1000, "db"]),
      /different hash slots/,
    );
    await assert.rejects(
      async () => script.run(redis, [keys.cell("north").health("db"), keys.registry.tenants], [1, "x", 1000, "db"]),
      /CROSSSLOT/,
    );
    // A cell whose name starts with another's is another tag, and another slot.
    assert.notEqual(hashSlot(keys.cell("north").deps), hashSlot(keys.cell("northx").deps));
    await assert.rejects(
      async () => script.run(redis, [keys.cell("north").health("db"), keys.cell("northx").deps], [1, "x", 1000, "db"]),
      /different hash slots/,
    );
    // A key without a tag that is the tag's text hashes as the tagged one: the check lets it through to Redis.
    await assert.rejects(
      async () => script.run(redis, ["{fl.north}:a", "fl.north"], [1, "x", 1000, "db"]),
      (err: Error) => !/slots|CROSSSLOT/.test(err.message),
    );
  });

  it("reads the cluster from REDIS_CLUSTER_NODES, or from REDIS_URL with ?cluster=1", () => {
    assert.deepEqual(parseClusterNodes("10.0.0.1:7000, 10.0.0.2:7001"), [
      { host: "10.0.0.1", port: 7000 },
      { host: "10.0.0.2", port: 7001 },
    ]);
    assert.equal(redisTargetFromEnv({ REDIS_CLUSTER_NODES: "a:1,b:2", REDIS_URL: "redis://:pw@a:1" })?.kind, "cluster");
    assert.deepEqual(redisTargetFromEnv({ REDIS_URL: "redis://h:7000?cluster=1" }), {
      kind: "cluster",
      nodes: [{ host: "h", port: 7000 }],
      url: "redis://h:7000?cluster=1",
    });
    assert.deepEqual(redisTargetFromEnv({ REDIS_URL: "redis://h:6379" }), { kind: "single", url: "redis://h:6379" });
    assert.equal(redisTargetFromEnv({}), undefined);
    assert.throws(() => parseClusterNodes("nohost"), /host:port/);
  });

  it("splits an exec process's slots among the cells it serves, never more in all", () => {
    assert.deepEqual([...cellSlots(10, ["a", "b", "c"]).values()], [4, 3, 3]);
    assert.deepEqual([...cellSlots(8, ["north", "south"]).values()], [4, 4]);
    assert.deepEqual([...cellSlots(5, ["default"]).values()], [5]);
    assert.throws(() => cellSlots(1, ["a", "b"]), /at least the number of cells/);
  });
});
