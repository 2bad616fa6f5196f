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
import { TenantSync } from "../../src/scheduler/tenantSync.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The dispatch script against a real Redis with a fake clock: the same cases
 * the pure rule is unit-tested with (test/unit/dispatchPolicy.test.ts).
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
      const r = await p.admission.admitBulk(tenant, Array.from({ length: n }, () => ({ type: "noop", ...body })), "0".repeat(32));
      assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected));
      return r.accepted.map((a) => a.id);
    },
    run: (pool = "default", opts = {}) => dispatch(p.redis, cell, pool, clock.now(), { ...OPTS, ...opts }),
    execIds: (pool = "default") => p.redis.lrange(cell.queueKey(execQueue(pool), "wait"), 0, -1),
    async finish(id) {
      assert.equal(await finishRun(p.redis, cell, { id, now: clock.now(), runId: "", state: "completed", recordTtlSec: 60 }), "ok");
      assert.equal(await p.redis.zscore(cell.deadlines, id), null, "an ended workflow leaves the deadline index");
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
});

describe("dispatch script: burst, classes, pools", () => {
  let h: Harness;
  beforeEachHarness();
  function beforeEachHarness() {
    before(async () => {
      h = await harness();
    });
    after(() => h.close());
  }

  it("bursts to burst.mca inside the window, then holds to mca through the cooldown", async () => {
    await h.tenants({ bursty: { tier: "professional", mca: 2, burst: { mca: 4, seconds: 1, cooldownSeconds: 5 } } });
    await h.capacity("default", 20);
    const ids = await h.admit("bursty", 12);
    assert.equal((await h.run()).moved, 4, "the window opens");
    for (const id of await h.execIds()) await h.finish(id);
    await h.p.redis.del(h.cell.queueKey("exec.default", "wait"));
    h.clock.advance(1_500); // window over, cooldown on
    assert.equal((await h.run()).moved, 2, "only mca during the cooldown");
    for (const id of await h.execIds()) await h.finish(id);
    await h.p.redis.del(h.cell.queueKey("exec.default", "wait"));
    h.clock.advance(5_000); // cooldown over
    assert.equal((await h.run()).moved, 4, "a new window");
    assert.equal(ids.length, 12);
  });

  it("serves Class A first and keeps the reserve for it", async () => {
    await h.p.redis.del(h.cell.queueKey("exec.default", "wait"));
    for (const id of await h.p.redis.hkeys(h.cell.slots)) await h.finish(id);
    await h.tenants({ batch: { tier: "enterprise", mca: 100 }, urgent: { tier: "professional", mcaUrgent: 5 } });
    await h.p.redis.hset(h.cell.poolConcurrency("default"), "fake-default", 5);
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

describe("dispatch script: shares, deadlines, pause, pools, fairness", () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it("holds Class C to its share of the pool", async () => {
    await h.tenants({ night: { tier: "enterprise", mca: 100 } });
    await h.capacity("default", 10);
    await h.admit("night", 20, { class: "C" });
    const r = await h.run();
    assert.equal(r.moved, 5, "batchMaxShare 50% of 10");
  });

  it("fails a workflow whose deadline passed while queued, never starting it", async () => {
    await h.tenants({ night: { tier: "enterprise", mca: 100 }, late: { tier: "free", mca: 5 } });
    const [id] = await h.admit("late", 1, { deadlineAt: new Date(h.clock.now() + 1000).toISOString() });
    h.clock.advance(2000);
    const r = await h.run();
    assert.equal(r.expired, 1);
    const rec = await h.p.redis.hgetall(h.cell.workflow(id!));
    assert.equal(rec.state, "failed");
    assert.equal(rec.errorCode, "DEADLINE_EXCEEDED");
    assert.ok(!(await h.execIds()).includes(id!));
  });

  it("skips a paused tenant and resumes it", async () => {
    await h.tenants({ night: { tier: "enterprise", mca: 100 }, sleepy: { tier: "free", paused: true } });
    await h.capacity("default", 100);
    const ids = await h.admit("sleepy", 2);
    await h.run();
    const moved = async () => (await h.execIds()).filter((id) => ids.includes(id)).length;
    assert.equal(await moved(), 0);
    await h.tenants({ night: { tier: "enterprise", mca: 100 }, sleepy: { tier: "free" } });
    await h.run();
    assert.equal(await moved(), 2);
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

  it("shares equal-weight tenants one slot each before anyone gets a second (least recently served)", async () => {
    await h.tenants({ f1: { tier: "free", mca: 5 }, f2: { tier: "free", mca: 5 }, f3: { tier: "free", mca: 5 } });
    await h.capacity("fair", 3);
    await h.tenants({
      f1: { tier: "free", mca: 5, pools: ["fair"] },
      f2: { tier: "free", mca: 5, pools: ["fair"] },
      f3: { tier: "free", mca: 5, pools: ["fair"] },
    });
    for (const t of ["f1", "f2", "f3"]) await h.admit(t, 5);
    const r = await h.run("fair", { reserveA: 0 });
    assert.equal(r.moved, 2, "3 slots less 1 reserved for Class A");
    const tenants = await Promise.all((await h.execIds("fair")).map((id) => tenantOf(h, id)));
    assert.equal(new Set(tenants).size, 2, `one each: ${tenants.join()}`);
  });
});

describe("dispatch script: fair queuing by service received (fake clock)", () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  /** One round: dispatch what fits, let it all run `ms`, finish it. Returns the starts per tenant. */
  async function round(pool: string, ms: number): Promise<Record<string, number>> {
    await h.run(pool, { batchMaxShare: 1 });
    const ids = await h.execIds(pool);
    await h.p.redis.del(h.cell.queueKey(execQueue(pool), "wait"));
    h.clock.advance(ms);
    const starts: Record<string, number> = {};
    for (const id of ids) {
      const t = (await tenantOf(h, id))!;
      starts[t] = (starts[t] ?? 0) + 1;
      await h.finish(id);
    }
    return starts;
  }

  it("gives a tenant back from 10 idle minutes its fair share, not the whole pool", async () => {
    const spec: PolicySpec = { tier: "professional", mca: 50, pools: ["idle"] };
    await h.tenants({ busy1: spec, busy2: spec, back: spec });
    await h.capacity("idle", 10); // 9 general slots
    // Class C: its run budget starts at dispatch, so ten fake minutes expire nothing queued.
    const batch = { class: "C" };
    await h.admit("back", 3, batch);
    for (const t of ["busy1", "busy2"]) await h.admit(t, 200, batch);
    await round("idle", 60_000);
    // Ten minutes in which only busy1 and busy2 have work.
    for (let i = 0; i < 10; i++) await round("idle", 60_000);
    await h.admit("back", 100, batch);
    // Back: it starts level with the others' frontier — at most one of their runs
    // ahead (their runs in flight are charged already), never ten minutes ahead.
    const first = await round("idle", 60_000);
    assert.ok((first.back ?? 0) <= 4, `first round back: ${JSON.stringify(first)}`);
    const total: Record<string, number> = { ...first };
    for (let i = 0; i < 9; i++) for (const [t, n] of Object.entries(await round("idle", 60_000))) total[t] = (total[t] ?? 0) + n;
    for (const t of ["busy1", "busy2", "back"]) assert.ok(Math.abs(total[t]! - 30) <= 3, `a third each: ${JSON.stringify(total)}`);
  });

  it("charges slot-time, not starts: a tenant of 10x longer runs gets a tenth of the starts", async () => {
    const spec: PolicySpec = { tier: "professional", mca: 50, pools: ["long"] };
    await h.tenants({ quick: spec, slow: spec });
    await h.capacity("long", 9); // 8 general slots
    for (let i = 0; i < 3; i++) await h.admit("quick", 1_000);
    await h.admit("slow", 300);
    const starts: Record<string, number> = { quick: 0, slow: 0 };
    const running: { id: string; tenant: string; endsAt: number }[] = [];
    for (let tick = 0; tick < 400; tick++) {
      await h.run("long");
      for (const id of await h.execIds("long")) {
        const tenant = (await tenantOf(h, id))!;
        starts[tenant]!++;
        running.push({ id, tenant, endsAt: h.clock.now() + (tenant === "quick" ? 100 : 1_000) });
      }
      await h.p.redis.del(h.cell.queueKey(execQueue("long"), "wait"));
      h.clock.advance(100);
      for (const r of running.filter((x) => x.endsAt <= h.clock.now())) {
        await h.finish(r.id);
        running.splice(running.indexOf(r), 1);
      }
    }
    const ratio = starts.quick! / starts.slow!;
    assert.ok(ratio >= 9 && ratio <= 11, `starts quick / slow ${ratio.toFixed(2)} (${JSON.stringify(starts)})`);
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
    assert.equal(results.reduce((s, r) => s + r.moved, 0), 7);
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
