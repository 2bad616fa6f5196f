import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import { acquirePermit, releasePermit, releaseSpending } from "../../queues/lua/permits.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { bucketStart } from "../../src/usage/usageBuckets.ts";
import { openGateChannel, type GateChannel } from "../helpers/gate.ts";

/**
 * The tool gate's scripts (acquirePermit-10.lua, releasePermit-8.lua) on a real
 * Redis with a fake clock: what only the scripts do — lapsed leases, expired
 * waits and the wake-ups they publish. The cases they share with the pure rule
 * are one table, test/conformance/gate.cases.ts (test/conformance/gate.test.ts).
 */
describe("tool gate scripts", () => {
  let redis: Redis;
  let cell: CellKeys;
  let channel: GateChannel;
  const clock = new FakeClock(1_700_000_000_000);
  const published = () => channel.published();

  before(async () => {
    channel = await openGateChannel();
    ({ redis, cell } = channel);
  });
  after(() => channel.close());

  const limits = { mctc: 1, mctcBatch: 1, depth: 10 };
  const ask = (tenant: string, id: string, o: { batch?: boolean; waitMs?: number; l?: typeof limits } = {}) =>
    acquirePermit(redis, cell, tenant, {
      id,
      batch: o.batch ?? false,
      now: clock.now(),
      leaseUntil: clock.now() + 15_000,
      waitUntil: clock.now() + (o.waitMs ?? 60_000),
      limits: o.l ?? limits,
    });
  const give = (tenant: string, id: string, o: { batch?: boolean; l?: typeof limits } = {}) =>
    releasePermit(redis, cell, tenant, { id, batch: o.batch ?? false, now: clock.now(), limits: o.l ?? limits });

  it("an uncontended acquire and release publish nothing", async () => {
    await published();
    assert.equal((await ask("solo", "a")).kind, "acquired");
    assert.equal(await give("solo", "a"), true);
    assert.equal((await ask("solo", "b", { batch: true })).kind, "acquired");
    assert.equal(await give("solo", "b", { batch: true }), true);
    assert.deepEqual(await published(), []);
    assert.equal(await redis.exists(...Object.values(cell.gate("solo"))), 0, "no gate key left behind");
  });

  it("a release with a spend adds it to the tenant's and the org's months, in the one call, held or not", async () => {
    const own = `${cell.budgetPrefix}:spend:paying:202612`;
    const org = `${cell.budgetPrefix}:spend:@group:202612`;
    const spend = { keys: [own, org] as [string, string], micro: 450_000, ttlSec: 3_600 };
    assert.equal((await ask("paying", "p1")).kind, "acquired");
    await published();
    const r = (id: string) => ({ id, batch: false, now: clock.now(), limits });
    assert.deepEqual(await releaseSpending(redis, cell, "paying", r("p1"), spend), { released: true, totals: [450_000, 450_000] });
    // Given back already (a lapsed lease another call cleared): the call was made, so its cost still counts.
    assert.deepEqual(await releaseSpending(redis, cell, "paying", r("p1"), spend), { released: false, totals: [900_000, 900_000] });
    const alone = { ...spend, keys: [own, own] as [string, string] };
    assert.deepEqual(await releaseSpending(redis, cell, "paying", r("p2"), alone), { released: false, totals: [1_350_000, 1_350_000] });
    assert.deepEqual(await redis.mget(own, org), ["1350000", "900000"]);
    // A cost below a micro-dollar adds nothing and still answers the totals (never NaN in the budget's view).
    assert.deepEqual(await releaseSpending(redis, cell, "paying", r("p3"), { ...alone, micro: 0 }), {
      released: false,
      totals: [1_350_000, 1_350_000],
    });
    assert.ok((await redis.ttl(own)) > 3_500 && (await redis.ttl(org)) > 3_500, "a new month key gets its TTL");
    assert.deepEqual(await published(), [], "nobody waited: nothing published");
    assert.equal(await redis.exists(...Object.values(cell.gate("paying"))), 0, "no gate key left behind");
  });

  it("a release wakes the head waiter only, and a second release the next", async () => {
    assert.equal((await ask("fifo", "h1", { l: { ...limits, mctc: 2 } })).kind, "acquired");
    assert.equal((await ask("fifo", "h2", { l: { ...limits, mctc: 2 } })).kind, "acquired");
    for (const w of ["w1", "w2", "w3"]) assert.equal((await ask("fifo", w, { l: { ...limits, mctc: 2 } })).kind, "queued");
    await published();
    await give("fifo", "h1", { l: { ...limits, mctc: 2 } });
    assert.deepEqual(await published(), ["w1"]);
    await give("fifo", "h2", { l: { ...limits, mctc: 2 } });
    assert.deepEqual(await published(), ["w1 w2"], "w1 has not taken its permit yet: both may go");
    assert.equal((await ask("fifo", "w2", { l: { ...limits, mctc: 2 } })).kind, "acquired", "w2 need not wait for w1");
    assert.equal((await ask("fifo", "w3", { l: { ...limits, mctc: 2 } })).kind, "waiting");
  });

  it("abandoning a wait at the head wakes the next waiter", async () => {
    assert.equal((await ask("leave", "h")).kind, "acquired");
    assert.equal((await ask("leave", "w1")).kind, "queued");
    assert.equal((await ask("leave", "w2")).kind, "queued");
    await give("leave", "h");
    assert.deepEqual(await published(), ["w1"]);
    assert.equal(await give("leave", "w1"), false, "w1 gave up before taking it (a timeout or an abort)");
    assert.deepEqual(await published(), ["w2"]);
    assert.equal((await ask("leave", "w2")).kind, "acquired");
    assert.equal(await give("leave", "w2"), true);
    assert.deepEqual(await published(), [], "nobody left waiting");
  });

  it("a release skips a waiter whose process died (its wait expired) and wakes the one behind it", async () => {
    assert.equal((await ask("dead", "h")).kind, "acquired");
    assert.equal((await ask("dead", "gone", { waitMs: 1_000 })).kind, "queued");
    assert.equal((await ask("dead", "alive")).kind, "queued");
    clock.advance(1_001);
    await published();
    await give("dead", "h");
    assert.deepEqual(await published(), ["alive"]);
    assert.equal(await redis.zscore(cell.gate("dead").wait, "gone"), null, "the dead waiter left the queue");
    assert.equal((await ask("dead", "alive")).kind, "acquired");
  });

  it("a lapsed lease found by a newcomer wakes the waiter ahead of it, not the newcomer", async () => {
    assert.equal((await ask("lapse", "crashed")).kind, "acquired");
    assert.equal((await ask("lapse", "first")).kind, "queued");
    clock.advance(15_001); // nobody renewed "crashed"; "first" has not polled yet
    await published();
    assert.equal((await ask("lapse", "newcomer")).kind, "queued", "FIFO: the freed permit is first's");
    assert.deepEqual(await published(), ["first"]);
    assert.equal((await ask("lapse", "first")).kind, "acquired");
  });

  it("the last A/B waiter taking its permit wakes the Class C waiters it held back", async () => {
    const l = { mctc: 3, mctcBatch: 2, depth: 10 };
    assert.equal((await ask("mix", "h1", { l })).kind, "acquired");
    assert.equal((await ask("mix", "h2", { l })).kind, "acquired");
    assert.equal((await ask("mix", "h3", { l })).kind, "acquired");
    assert.equal((await ask("mix", "ab", { l })).kind, "queued");
    assert.equal((await ask("mix", "c", { l, batch: true })).kind, "queued");
    await give("mix", "h1", { l });
    await give("mix", "h2", { l });
    assert.deepEqual(await published(), ["ab", "ab"], "Class C yields while an A/B caller waits");
    assert.equal((await ask("mix", "ab", { l })).kind, "acquired");
    assert.deepEqual(await published(), ["c"]);
    assert.equal((await ask("mix", "c", { l, batch: true })).kind, "acquired");
  });

  it("counts a granted permit and its wait in the usage bucket, with the bucket's TTL set once", async () => {
    const key = cell.usageEvents(bucketStart(clock.now()));
    const now = clock.now();
    const out = await acquirePermit(redis, cell, "usage", {
      id: "u1",
      batch: false,
      now,
      leaseUntil: now + 15_000,
      waitUntil: now + 60_000,
      waitStartedAt: now - 40,
      limits,
    });
    assert.equal(out.kind, "acquired");
    assert.equal(await redis.hget(key, "usage|acq"), "1");
    assert.equal(await redis.hget(key, "usage|gw"), "40");
    assert.ok((await redis.ttl(key)) > 0);
    await redis.persist(key);
    await give("usage", "u1");
    assert.equal((await ask("usage", "u2")).kind, "acquired");
    assert.equal(await redis.hget(key, "usage|acq"), "2");
    assert.equal(await redis.ttl(key), -1, "no EXPIRE on every grant: only the first write of a field sets it");
    await redis.expire(key, 60);
  });
});
