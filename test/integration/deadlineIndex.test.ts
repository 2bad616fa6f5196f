import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { CellKeys } from "../../queues/keys.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { expireQueued } from "../../queues/lua/expireQueued.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { ingressQueue } from "../../queues/names.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { deadlineListings } from "../helpers/deadlineIndex.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The deadline sweep's index (queues/lua/includes/deadlineIndex.lua: a list of ids per second of
 * deadline) against a real Redis, swept by expireQueued-2.lua at chosen times: queued workflows
 * fail at their deadline to the millisecond, the rest of the index is dropped as it comes due, and
 * an index written before it was bucketed is swept the same way. What it answers is read from the
 * records, the queues and the trail, not from the script's reply alone.
 */
describe("the deadline sweep's index", () => {
  let p: Platform;
  let cell: CellKeys;
  const clock = new FakeClock(Date.now());
  const TTL = 60;
  const sweep = (now: number, chunk?: number) => expireQueued(p.redis, cell, now, TTL, chunk);
  const state = (id: string) => p.redis.hget(cell.workflow(id), "state");
  /** The start of a second at least 10 s ahead: deadlines placed in it fall in one list. */
  const secondAhead = () => Math.ceil((clock.now() + 10_000) / 1000) * 1000;
  const admit = async (tenant: string, deadlines: number[]) => {
    const items = deadlines.map((at) => ({ type: "noop", class: "B", deadlineAt: new Date(at).toISOString() }));
    const r = await p.admission.admitBulk(tenant, items);
    assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected));
    return r.accepted.map((a) => a.id);
  };
  const endedEntries = async (tenant: string, id: string) =>
    ((await p.redis.xrange(cell.trail(tenant), "-", "+")) as [string, string[]][]).filter(
      ([, f]) => f[f.indexOf("wf") + 1] === id && f[f.indexOf("ev") + 1] === "ended",
    ).length;

  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    cell = p.keys.cell("default");
    await p.registry.seed(
      new Map([
        ["held", { tier: "professional" as const, paused: true }],
        ["busy", { tier: "enterprise" as const, mca: 50 }],
      ]),
      true,
    );
    await new TenantSync(p.redis, p.keys).sync("default", p.registry.list());
    await heartbeat(p.redis, cell, "default", "fake", 50, clock.now(), clock.now() + 3_600_000);
  });
  after(() => p.close());

  it("fails each queued workflow at its deadline to the millisecond, one second's list popped as it comes due", async () => {
    const s = secondAhead();
    const [early, late, next] = await admit("held", [s + 100, s + 600, s + 3_000]);
    const queued0 = Number(await p.redis.get(cell.queued));
    assert.equal(await deadlineListings(p.redis, cell, early!, s + 100), 1, "indexed under its second");

    assert.equal(await sweep(s + 99), 0, "a millisecond before: nothing");
    assert.equal(await state(early!), "queued");
    assert.equal(await sweep(s + 100), 1, "at its deadline: failed");
    assert.equal(await state(early!), "failed");
    assert.equal(await p.redis.hget(cell.workflow(early!), "errorCode"), "DEADLINE_EXCEEDED");
    assert.equal(await p.redis.lpos(cell.queueKey(ingressQueue("held", "B"), "wait"), early!), null, "its job left its queue");
    assert.equal(Number(await p.redis.get(cell.queued)), queued0 - 1);
    assert.equal(await state(late!), "queued", "later in the same second: left queued");
    assert.equal(await p.redis.zscore(cell.deadlines, String(s)), null, "the second was popped whole");
    assert.deepEqual(await p.redis.lrange(cell.deadlineBucket(`@${s + 600}`), 0, -1), [late!], "the later one: under its own ms");
    assert.equal(Number(await p.redis.zscore(cell.deadlines, `@${s + 600}`)), s + 600, "due then");

    // Admitted into that second once it was popped, due before the later one: its own second, due at once.
    clock.advance(s + 200 - clock.now());
    const [sooner] = await admit("held", [s + 400]);
    assert.equal(await sweep(s + 399), 0);
    assert.equal(await sweep(s + 400), 1, "failed at its own deadline");
    assert.equal(await state(sooner!), "failed");
    assert.equal(await sweep(s + 599), 0);
    assert.equal(await state(late!), "queued");
    assert.equal(await sweep(s + 600), 1);
    assert.equal(await state(late!), "failed");
    assert.deepEqual(await p.redis.zrangebyscore(cell.deadlines, s, s + 999), [], "emptied lists leave the index");
    for (const member of [String(s), `@${s + 400}`, `@${s + 600}`]) assert.equal(await p.redis.exists(cell.deadlineBucket(member)), 0);
    assert.equal(await state(next!), "queued", "a later second is not read");
    assert.equal(await sweep(s + 3_000), 1);
    assert.equal(await state(next!), "failed");
    for (const id of [early!, sooner!, late!, next!]) assert.equal(await endedEntries("held", id), 1, "one ended entry in the trail each");
  });

  it("drops what was dispatched when its second comes due, and leaves those runs alone", async () => {
    const s = secondAhead();
    const ids = await admit("busy", [s + 10, s + 20]);
    assert.equal((await dispatch(p.redis, cell, "default", clock.now(), TEST_DISPATCH_OPTS)).moved, 2);
    for (const id of ids) assert.equal(await deadlineListings(p.redis, cell, id, s), 1, "the dispatch leaves it listed");
    assert.equal(await sweep(s + 2_000), 0, "no queued workflow was due");
    for (const id of ids) assert.equal(await state(id), "dispatched", "its exec worker keeps its deadline");
    assert.equal(await p.redis.zscore(cell.deadlines, String(s)), null, "the second is gone from the index");
    assert.equal(await p.redis.exists(cell.deadlineBucket(String(s))), 0, "and its list with it");
  });

  it("fails a workflow listed twice (queued again before its first listing was swept) once", async () => {
    const s = secondAhead();
    const [id] = await admit("held", [s + 50]);
    // As a hand-back or a recovery pushes it again (requeueRun-4.lua, includes/unpark.lua).
    await p.redis.rpush(cell.deadlineBucket(String(s)), id!);
    assert.equal(await deadlineListings(p.redis, cell, id!, s), 2);
    assert.equal(await sweep(s + 1_500), 1, "failed once");
    assert.equal(await endedEntries("held", id!), 1, "one ended entry in its trail");
    assert.equal(await p.redis.exists(cell.deadlineBucket(String(s))), 0);
  });

  it("sweeps an index written before it was bucketed (ids scored by their deadline) the same way", async () => {
    const s = secondAhead();
    const [old] = await admit("held", [s + 5]);
    const [dispatched] = await admit("busy", [s + 6]);
    assert.equal((await dispatch(p.redis, cell, "default", clock.now(), TEST_DISPATCH_OPTS)).moved, 1);
    await p.redis.del(cell.deadlineBucket(String(s)));
    await p.redis.zrem(cell.deadlines, String(s));
    await p.redis.zadd(cell.deadlines, s + 5, old!, s + 6, dispatched!);
    assert.equal(await sweep(s + 5), 1, "the due one, still queued: failed");
    assert.equal(await state(old!), "failed");
    assert.equal(await sweep(s + 6), 0, "one no longer queued: dropped");
    assert.equal(await state(dispatched!), "dispatched");
    assert.equal(await p.redis.zcard(cell.deadlines), 0, "nothing left in the index");
  });

  it("pops a second under way larger than a call in chunks: those due fail, the rest wait for their own ms", async () => {
    const s = secondAhead();
    const deadlines = Array.from({ length: 1_000 }, (_, i) => s + i);
    const ids = await admit("held", deadlines);
    assert.equal(await sweep(s + 499, 100), 500, "the first 500 ms of the second");
    const states = await Promise.all(ids.map(state));
    assert.ok(
      states.every((st, i) => st === (i <= 499 ? "failed" : "queued")),
      "each failed at its deadline, none before",
    );
    assert.equal(await sweep(s + 499, 100), 0, "nothing due is left for a second pass");
    assert.equal(await sweep(s + 999, 100), 500);
    assert.equal(await p.redis.zcount(cell.deadlines, s, s + 999), 0);
  });

  it("reads about `chunk` ids per call, and sweeps a backlog of due seconds in as many calls as it takes", async () => {
    const s = secondAhead();
    const deadlines = Array.from({ length: 1_200 }, (_, i) => s + 1_000 * (i % 3) + (i % 997));
    const ids = await admit("held", deadlines);
    const queued0 = Number(await p.redis.get(cell.queued));
    assert.equal(await sweep(s + 10_000, 500), ids.length);
    assert.equal(Number(await p.redis.get(cell.queued)), queued0 - ids.length);
    const states = await Promise.all(ids.map(state));
    assert.deepEqual([...new Set(states)], ["failed"]);
    assert.equal(await p.redis.zcard(cell.deadlines), 0);
    assert.equal(await p.redis.llen(cell.queueKey(ingressQueue("held", "B"), "wait")), 0);
  });
});
