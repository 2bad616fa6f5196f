import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { execQueue } from "../../queues/names.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { connect } from "../../src/lib/redis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { DEFAULT_DISPATCHER, Dispatcher } from "../../src/dispatch/dispatcher.ts";
import { listMember } from "../../queues/listMember.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { runListIds } from "../helpers/runList.ts";

/** The dispatcher loop's housekeeping, driven pass by pass with a fake clock (no exec workers). */
describe("dispatcher housekeeping", () => {
  let p: Platform;
  let d: Dispatcher;
  const clock = new FakeClock(Date.now());
  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    await p.registry.seed(
      new Map([
        ["night", { tier: "enterprise" as const, mca: 50 }],
        ["er", { tier: "professional" as const }],
        ["held", { tier: "professional" as const, paused: true }],
        ["eu", { tier: "professional" as const, pools: ["eu"] }],
      ]),
      true,
    );
    d = new Dispatcher(p.redis, connect(await testRedisUrl()), p.keys, p.registry, clock, createLogger("test", "silent"), {
      ...DEFAULT_DISPATCHER,
      cells: ["default"],
      batchMaxShare: 1,
    });
    await heartbeat(p.redis, p.keys.cell("default"), "default", "fake", 2, clock.now(), clock.now() + 3_600_000);
  });
  after(async () => {
    await d.stop();
    await p.close();
  });

  it("reports a preemption the handler ignores, and Class A waits rather than overshooting", async () => {
    const cell = p.keys.cell("default");
    await p.admission.admitOne("night", { type: "noop", class: "C" }, "0".repeat(32));
    await d.pass();
    await p.admission.admitOne("er", { type: "noop", class: "A" }, "0".repeat(32));
    await p.admission.admitOne("er", { type: "noop", class: "A" }, "0".repeat(32));
    await d.pass();
    assert.equal(d.stats.preempted, 1);
    assert.equal(d.stats.preemptionsIgnored, 0);
    clock.advance(6_000);
    await d.pass();
    assert.equal(d.stats.preemptionsIgnored, 1);
    assert.equal(Number(await p.redis.hget(cell.poolUsed("default"), "total")), 2, "never above capacity");
    assert.equal(await p.redis.llen(cell.queueKey("ingress.er.A", "wait")), 1, "the second Class A waits");
  });

  it("dispatches a pool whose first exec worker came after the last pass, in the pass right after", async () => {
    const cell = p.keys.cell("default");
    // Its tenant's policy put "eu" in the cell's pools (tenant sync); here it is new, as an exec
    // worker's first heartbeat makes a pool no policy named yet.
    await p.redis.srem(cell.pools, "eu");
    await d.pass(); // the pools as they were
    await heartbeat(p.redis, cell, "eu", "fake-eu", 2, clock.now(), clock.now() + 3_600_000);
    await p.admission.admitOne("eu", { type: "noop", class: "B" }, "0".repeat(32));
    assert.equal(await d.pass(), true, "a pool new since the last pass: more work now");
    assert.equal(await p.redis.llen(cell.queueKey(execQueue("eu"), "wait")), 0, "this pass dispatched the pools it knew");
    await d.pass();
    assert.equal(await p.redis.llen(cell.queueKey(execQueue("eu"), "wait")), 1, "the next one, the new pool");
  });

  it("releases the slot of a run whose exec job is gone and fails it with a reason", async () => {
    const cell = p.keys.cell("default");
    const slots = await p.redis.hkeys(cell.slots);
    const lost = slots[0]!;
    await p.redis.del(cell.jobKey("exec.default", lost));
    clock.advance(DEFAULT_DISPATCHER.reconcileGraceMs + 1);
    assert.equal(await d.reconcile(), 1);
    const rec = await p.redis.hgetall(cell.workflow(lost));
    assert.equal(rec.state, "failed");
    assert.equal(rec.errorCode, "LOST");
    assert.equal(await p.redis.hexists(cell.slots, lost), 0);
    assert.equal(await d.reconcile(), 0, "released once");
  });

  it("trims each tenant's run list past twice its record TTL once a minute, as it trims trails", async () => {
    const cell = p.keys.cell("default");
    const ttlMs = DEFAULT_DISPATCHER.recordTtlSec * 1000;
    const staleAt = clock.now() - 2 * ttlMs - 1;
    const keptAt = clock.now() - 2 * ttlMs + 60_000;
    await p.redis.xadd(cell.runList("held"), `${staleAt}-0`, "w", "wf_AAAAAAAAAAAAAAAAAAAA");
    await p.redis.xadd(cell.runList("held"), `${keptAt}-0`, "w", "wf_BBBBBBBBBBBBBBBBBBBB");
    // The index as written before 2026-12-05, trimmed alike until it is empty.
    const index = cell.workflowsByTenant("held");
    await p.redis.zadd(index, 0, listMember(staleAt, "wf_CCCCCCCCCCCCCCCCCCCC"), 0, listMember(keptAt, "wf_DDDDDDDDDDDDDDDDDDDD"));
    clock.advance(DEFAULT_DISPATCHER.historyTrimMs);
    await d.pass();
    assert.deepEqual(await runListIds(p.redis, cell, "held"), ["wf_BBBBBBBBBBBBBBBBBBBB"], "past the retention: gone; within it: kept");
    assert.deepEqual(await p.redis.zrange(index, 0, -1), [listMember(keptAt, "wf_DDDDDDDDDDDDDDDDDDDD")]);
  });

  it("fails a queued workflow on its deadline even while its tenant cannot be dispatched, and only that one", async () => {
    const cell = p.keys.cell("default");
    const soon = new Date(clock.now() + 2_000).toISOString();
    const later = new Date(clock.now() + 60_000).toISOString();
    const due = (await p.admission.admitOne("held", { type: "noop", class: "B", deadlineAt: soon })).body.id;
    const waiting = (await p.admission.admitOne("held", { type: "noop", class: "B", deadlineAt: later })).body.id;
    await d.pass();
    assert.equal(await p.redis.hget(cell.workflow(due), "state"), "queued", "a paused tenant's work stays queued");
    const queuedBefore = Number(await p.redis.get(cell.queued));
    clock.advance(2_001);
    await d.pass();
    const rec = await p.redis.hgetall(cell.workflow(due));
    assert.equal(rec.state, "failed");
    assert.equal(rec.errorCode, "DEADLINE_EXCEEDED");
    assert.equal(Number(rec.finishedAt), clock.now());
    assert.ok(Number(await p.redis.ttl(cell.workflow(due))) > 0, "an ended record expires");
    assert.equal(await p.redis.exists(cell.jobKey("ingress.held.B", due)), 0, "its job left the queue");
    assert.deepEqual(await p.redis.lrange(cell.queueKey("ingress.held.B", "wait"), 0, -1), [waiting]);
    assert.equal(Number(await p.redis.get(cell.queued)), queuedBefore - 1);
    assert.equal(await p.redis.hget(cell.workflow(waiting), "state"), "queued", "a workflow whose deadline has not passed is untouched");
    assert.equal(await d.expire("default"), 0, "failed once");
  });
});
