import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import { dispatch, type DispatchOptions } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { finishRun } from "../../queues/lua/runLifecycle.ts";
import { execQueue, ingressQueue } from "../../queues/names.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { connect } from "../../src/lib/redis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The dispatch script against a real Redis with a fake clock: what only the
 * script does (slot leases and records, the exec queue's order, deadlines,
 * pools, preemption requests, concurrent dispatchers, a lost job). The
 * decisions it shares with the pure rule (caps, burst, classes, shares, pause,
 * fair queuing) are the tables in test/conformance/, played on both there.
 * No exec workers: a heartbeat stands in for their capacity.
 */
const OPTS: DispatchOptions = TEST_DISPATCH_OPTS;

interface Harness {
  p: Platform;
  cell: CellKeys;
  clock: FakeClock;
  tenants(specs: Record<string, PolicySpec>): Promise<void>;
  capacity(pool: string, n: number): Promise<void>;
  admit(tenant: string, n: number, body?: Record<string, unknown>): Promise<string[]>;
  run(pool?: string, opts?: Partial<DispatchOptions>): ReturnType<typeof dispatch>;
  execIds(pool?: string): Promise<string[]>;
  finish(id: string): Promise<void>;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const clock = new FakeClock(Date.now());
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
  const p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
  const cell = p.keys.cell("default");
  const sync = new TenantSync(p.redis, p.keys);
  return {
    p,
    cell,
    clock,
    async tenants(specs) {
      await p.registry.seed(new Map(Object.entries(specs)), true);
      await sync.sync("default", p.registry.list());
    },
    async capacity(pool, n) {
      await heartbeat(p.redis, cell, pool, `fake-${pool}`, n, clock.now(), clock.now() + 3_600_000);
    },
    async admit(tenant, n, body = {}) {
      const r = await p.admission.admitBulk(
        tenant,
        Array.from({ length: n }, () => ({ type: "noop", ...body })),
        "0".repeat(32),
      );
      assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected));
      return r.accepted.map((a) => a.id);
    },
    run: (pool = "default", opts = {}) => dispatch(p.redis, cell, pool, clock.now(), { ...OPTS, ...opts }),
    execIds: (pool = "default") => p.redis.lrange(cell.queueKey(execQueue(pool), "wait"), 0, -1),
    async finish(id) {
      assert.equal(await finishRun(p.redis, cell, { id, now: clock.now(), runId: "", state: "completed", recordTtlSec: 60 }), "ok");
    },
    close: () => p.close(),
  };
}

const tenantOf = async (h: Harness, id: string) => h.p.redis.hget(h.cell.workflow(id), "tenant");

describe("dispatch script", () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it("moves no more of a tenant's workflows than its mca, and records the slot", async () => {
    await h.tenants({ capped: { tier: "free", mca: 2, burst: { mca: 2 } } });
    await h.capacity("default", 10);
    const ids = await h.admit("capped", 5);
    const r = await h.run();
    assert.equal(r.moved, 2);
    assert.deepEqual((await h.execIds()).sort(), ids.slice(0, 2).sort(), "oldest first");
    const rec = await h.p.redis.hgetall(h.cell.workflow(ids[0]!));
    assert.equal(rec.state, "dispatched");
    assert.equal(rec.queue, "exec.default");
    assert.equal(await h.p.redis.hlen(h.cell.slots), 2);
    // A freed slot goes to the tenant's next workflow.
    await h.finish(ids[0]!);
    assert.equal((await h.run()).moved, 1);
    for (const id of ids.slice(1, 3)) await h.finish(id);
    await h.run();
    for (const id of ids.slice(3)) await h.finish(id);
    assert.equal(await h.p.redis.hlen(h.cell.slots), 0);
    assert.equal(Number(await h.p.redis.hget(h.cell.poolUsed("default"), "total")), 0);
  });

  it("writes a ready set once per call, however many of its tenants' workflows move", async () => {
    const big: PolicySpec = { tier: "professional", mca: 20, burst: { mca: 20 }, pools: ["seats"] };
    await h.tenants({ r1: big, r2: big, r3: big });
    for (const t of ["r1", "r2", "r3"]) await h.admit(t, 10);
    assert.equal((await h.run("seats")).moved, 0, "no capacity yet: the tenants are only placed in the ready set");
    await h.capacity("seats", 24);
    const calls = async (cmd: string) =>
      Number((await h.p.redis.info("commandstats")).match(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`))?.[1] ?? 0);
    const [zrem0, zadd0] = [await calls("zrem"), await calls("zadd")];
    const r = await h.run("seats");
    const [zrem, zadd] = [(await calls("zrem")) - zrem0, (await calls("zadd")) - zadd0];
    assert.equal(r.moved, 22, "all but the Class A reserve");
    // Each move re-seats its tenant under a new member; one ZREM and one ZADD for the set (and the marker's ZADD).
    assert.ok(zrem <= 1 && zadd <= 2, `ZREM ${zrem}, ZADD ${zadd} for 22 moves`);
    const seated = await h.p.redis.zrange(h.cell.ready("seats", "B"), 0, -1);
    assert.deepEqual(seated.map((m) => m.split(":")[1]).sort(), ["r1", "r2", "r3"], "each tenant seated once, by its last move");
    for (const t of ["r1", "r2", "r3"])
      assert.equal(
        await h.p.redis.hget(h.cell.tenantCaps(t), "m:seats"),
        seated.find((m) => m.endsWith(`:${t}`)),
        `${t}'s member`,
      );
    assert.equal((await h.execIds("seats")).length, 22);
  });
});

describe("dispatch script: the exec queue's order", () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it("puts a Class A where a worker fetches it before the Class B dispatched ahead of it", async () => {
    await h.tenants({ batch: { tier: "enterprise", mca: 100 }, urgent: { tier: "professional", mcaUrgent: 5 } });
    await h.capacity("default", 5);
    await h.admit("batch", 10, { class: "B" });
    assert.equal((await h.run()).moved, 4, "1 of 5 slots is the Class A reserve");
    const [a] = await h.admit("urgent", 1, { class: "A" });
    assert.equal((await h.run()).moved, 1);
    // The exec queue is FIFO for B and C; a BullMQ worker fetching now takes the Class A before the
    // four Class B dispatched before it (on a busy pool it does not wait behind them).
    const connection = connect(await testRedisUrl());
    const worker = new Worker(execQueue("default"), null, { connection, prefix: h.cell.bullPrefix, skipVersionCheck: true });
    try {
      assert.equal((await worker.getNextJob("test-token", { block: false }))?.id, a);
      assert.equal(await tenantOf(h, (await worker.getNextJob("test-token-2", { block: false }))!.id!), "batch", "then the oldest Class B");
    } finally {
      await worker.close();
      connection.disconnect();
    }
  });
});

describe("dispatch script: deadlines and pools", () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it("fails a workflow whose deadline passed while queued, never starting it", async () => {
    await h.tenants({ night: { tier: "enterprise", mca: 100 }, late: { tier: "free", mca: 5 } });
    await h.capacity("default", 10);
    const [id] = await h.admit("late", 1, { deadlineAt: new Date(h.clock.now() + 1000).toISOString() });
    h.clock.advance(2000);
    const r = await h.run();
    assert.equal(r.expired, 1);
    const rec = await h.p.redis.hgetall(h.cell.workflow(id!));
    assert.equal(rec.state, "failed");
    assert.equal(rec.errorCode, "DEADLINE_EXCEEDED");
    assert.ok(!(await h.execIds()).includes(id!));
  });

  it("a run's end expires its steps hash unless it has none", async () => {
    await h.tenants({ stepper: { tier: "enterprise", mca: 100 } });
    await h.capacity("default", 10);
    const [stepped, plain] = await h.admit("stepper", 2);
    assert.equal((await h.run("default")).moved, 2);
    // A step result each; the second run's end says it has none (FinishInput.steps), the first's does not say.
    for (const id of [stepped!, plain!]) await h.p.redis.hset(h.cell.steps(id), "s1", '{"v":1}');
    await h.finish(stepped!);
    const end = { now: h.clock.now(), runId: "", state: "completed" as const, recordTtlSec: 60 };
    assert.equal(await finishRun(h.p.redis, h.cell, { id: plain!, ...end, steps: false }), "ok");
    assert.ok((await h.p.redis.ttl(h.cell.steps(stepped!))) > 0, "expires with its record");
    assert.equal(await h.p.redis.ttl(h.cell.steps(plain!)), -1, "steps: false sends no EXPIRE");
    assert.ok((await h.p.redis.ttl(h.cell.workflow(plain!))) > 0, "its record expires all the same");
  });

  it("wakes one blocked exec worker per call, and for Class A one per live exec process (up to 3)", async () => {
    await h.tenants({ waker: { tier: "professional", mca: 10, mcaUrgent: 5, pools: ["wake"] } });
    await h.capacity("wake", 4);
    for (const w of ["w2", "w3", "w4"]) await heartbeat(h.p.redis, h.cell, "wake", w, 2, h.clock.now(), h.clock.now() + 3_600_000);
    const marker = h.cell.queueKey(execQueue("wake"), "marker");
    const members = async () => (await h.p.redis.zrange(marker, 0, -1, "WITHSCORES")).join(",");
    await h.admit("waker", 2, { class: "B" });
    assert.equal((await h.run("wake")).moved, 2);
    assert.equal(await members(), "0,0", "Class B: one marker; each fetch wakes the next worker (BullMQ's own)");
    await h.p.redis.del(marker);
    await h.admit("waker", 1, { class: "A" });
    assert.equal((await h.run("wake")).moved, 1);
    assert.equal(await members(), "0,0,a2,0,a3,0", "Class A: three of the four live workers at once, all at score 0");
  });

  it("never moves a tenant's work into a pool its policy does not allow", async () => {
    await h.tenants({ gdpr: { tier: "professional", pools: ["eu"] } });
    await h.capacity("us", 50);
    await h.capacity("eu", 1);
    const ids = await h.admit("gdpr", 3);
    assert.equal((await h.run("us")).moved, 0, "us is idle but not allowed");
    assert.equal((await h.run("eu")).moved, 1);
    assert.equal((await h.execIds("eu"))[0], ids[0]);
  });
});

describe("dispatch script: preemption and concurrent dispatchers", () => {
  let h: Harness;
  let sub: Redis;
  before(async () => {
    h = await harness();
    sub = connect(await testRedisUrl());
  });
  after(async () => {
    await sub.quit();
    await h.close();
  });

  it("asks the most recently dispatched Class C workflow to yield when Class A finds no slot", async () => {
    await h.tenants({ night: { tier: "enterprise", mca: 100 }, er: { tier: "professional" } });
    await h.capacity("default", 4);
    const cs = await h.admit("night", 4, { class: "C" });
    h.clock.advance(1);
    assert.equal((await h.run("default", { batchMaxShare: 1 })).moved, 3, "C cannot take the A reserve");
    const messages: string[] = [];
    sub.on("message", (_c, m) => messages.push(m));
    await sub.subscribe(h.cell.signals);
    await h.admit("er", 1, { class: "A" });
    assert.equal((await h.run("default", { batchMaxShare: 1 })).moved, 1, "the reserve slot");
    await h.admit("er", 1, { class: "A" });
    const r = await h.run("default", { batchMaxShare: 1 });
    assert.equal(r.preempted, 1);
    const moved = await h.execIds();
    const victim = moved.filter((id) => cs.includes(id)).at(0)!; // LPUSH: the newest is first
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(messages, [`preempt ${victim}`]);
    assert.ok(await h.p.redis.hget(h.cell.workflow(victim), "preemptRequested"));
    assert.equal((await h.run("default", { batchMaxShare: 1 })).preempted, 0, "one request per waiting A workflow");
  });

  it("never exceeds a cap with many dispatchers calling at once", async () => {
    await h.tenants({ many: { tier: "professional", mca: 7, burst: { mca: 7 } } });
    await h.capacity("burst-pool", 1000);
    await h.tenants({ many: { tier: "professional", mca: 7, burst: { mca: 7 }, pools: ["burst-pool"] } });
    await h.admit("many", 50);
    const url = await testRedisUrl();
    const clients = Array.from({ length: 8 }, () => connect(url));
    const results = await Promise.all(clients.map((c) => dispatch(c, h.cell, "burst-pool", h.clock.now(), { ...OPTS, maxMoves: 3 })));
    await Promise.all(clients.map((c) => c.quit()));
    assert.equal(
      results.reduce((s, r) => s + r.moved, 0),
      7,
    );
    assert.equal(new Set(await h.execIds("burst-pool")).size, 7, "no job moved twice");
  });
});

describe("dispatch script, a job that went missing", () => {
  it("fails a workflow whose queued job is missing, moves the next and keeps every counter right", async () => {
    const h = await harness();
    try {
      await h.tenants({ gappy: { tier: "professional", mca: 10 } });
      await h.capacity("default", 100);
      const [lost, next] = await h.admit("gappy", 2);
      const queued = Number(await h.p.redis.get(h.cell.queued));
      await h.p.redis.del(h.cell.jobKey(ingressQueue("gappy", "B"), lost!)); // never happens by Fairlane's own hand
      const r = await h.run();
      assert.equal(r.moved, 1);
      assert.deepEqual(await h.execIds(), [next]);
      const rec = await h.p.redis.hgetall(h.cell.workflow(lost!));
      assert.deepEqual([rec.state, rec.errorCode], ["failed", "LOST"]);
      assert.equal(Number(await h.p.redis.get(h.cell.queued)), queued - 2, "both left the queued count");
      assert.equal(Number(await h.p.redis.hget(h.cell.poolUsed("default"), "total")), 1, "one slot: the moved one");
      assert.equal(await h.p.redis.hexists(h.cell.slots, lost!), 0);
      await h.finish(next!);
    } finally {
      await h.close();
    }
  });
});
