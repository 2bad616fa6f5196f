import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { CellKeys } from "../../queues/keys.ts";
import { settleReleased } from "../../queues/lua/dispatch.ts";
import { reconcileSlots } from "../../queues/lua/reconcileSlots.ts";
import { finishRun } from "../../queues/lua/runLifecycle.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { type Caps, ScriptPool, type ScriptRun, TEST_SHARES } from "../conformance/pools.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * A finish that leaves its slot's release for later (the exec consumer's, includes/releaseSlot.lua):
 * the slot stays held until the dispatcher's settling call, the next dispatch call or the reconciler
 * settles it, and then it is free once, however often it was noted. Observed from what the next
 * dispatch call starts and from the pool's and the tenant's slot counts in Redis.
 */
const CAPS: Caps = { weight: 1, mca: 4, burstMca: 4, burstMs: 0, cooldownMs: 0, mcaUrgent: 1, paused: false };

describe("a slot's release noted at the finish, settled after", () => {
  let p: Platform;
  let cell: CellKeys;
  const clock = new FakeClock(Date.UTC(2026, 11, 5));
  let n = 0;

  before(async () => {
    p = await openPlatform(
      loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() }),
      await testRedisUrl(),
      createLogger("test", "silent"),
      clock,
    );
    cell = p.keys.cell("default");
  });
  after(() => p.close());

  /** A pool of 3 slots (one kept for Class A), one tenant's Class B work holding the other two, `queued` more waiting. */
  async function full(queued: number): Promise<{ pool: ScriptPool; name: string; tenant: string; runs: ScriptRun[] }> {
    const name = `settle${++n}`;
    const tenant = `${name}t`;
    await p.redis.del(cell.dirty, cell.timers, cell.released);
    const pool = await ScriptPool.open(p.redis, cell, name, 3, TEST_SHARES, clock);
    await pool.setCaps(tenant, CAPS);
    await pool.enqueue(tenant, "B", 2 + queued);
    const runs = await pool.dispatch(2);
    assert.equal(runs.length, 2);
    return { pool, name, tenant, runs };
  }

  const finishLater = (id: string) =>
    finishRun(p.redis, cell, { id, now: clock.now(), runId: "", state: "completed", recordTtlSec: 60, releaseLater: true });
  const used = async (pool: string) => Number(await p.redis.hget(cell.poolUsed(pool), "total"));
  const running = async (tenant: string) => Number(await p.redis.hget(cell.running(tenant), "BC"));

  it("holds the slots until the next dispatch call, which settles both and fills them", async () => {
    const { pool, name, tenant, runs } = await full(3);
    clock.advance(50);
    for (const r of runs) assert.equal(await finishLater(r.id), "ok");
    assert.equal(await p.redis.llen(cell.released), 2);
    assert.equal(await p.redis.hlen(cell.slots), 2, "both leases held until settled");
    assert.equal(await used(name), 2);
    assert.equal(await running(tenant), 2);

    const next = await pool.dispatch(5);
    assert.equal(next.length, 2, "the call that settled them started two more: the two slots Class B may take, no more");
    assert.ok(next.every((r) => !runs.some((x) => x.id === r.id)));
    assert.equal(await used(name), 2);
    assert.equal(await running(tenant), 2);
    assert.equal(await p.redis.llen(cell.released), 0);
    for (const r of runs) assert.equal(await p.redis.hexists(cell.slots, r.id), 0);
  });

  it("lets the dispatcher settle them in a call of its own, before its dispatch call", async () => {
    const { pool, name, tenant, runs } = await full(3);
    clock.advance(50);
    for (const r of runs) await finishLater(r.id);
    assert.equal(await settleReleased(p.redis, cell), 2);
    assert.equal(await used(name), 0);
    assert.equal(await running(tenant), 0);
    for (const r of runs) assert.equal(await p.redis.hexists(cell.slots, r.id), 0);
    assert.equal(await settleReleased(p.redis, cell), 0, "nothing is settled twice");
    assert.equal((await pool.dispatch(5)).length, 2, "the freed slots are Class B's to take again");
  });

  it("wakes the dispatcher with the first release noted, not again for those noted behind it", async () => {
    const { runs } = await full(0);
    clock.advance(50);
    const woken = async () => (await p.redis.zscore(cell.wake, "w")) !== null;
    await p.redis.del(cell.wake);
    await finishLater(runs[0]!.id);
    assert.ok(await woken(), "the first release wakes the dispatcher");
    await p.redis.del(cell.wake); // the dispatcher took the wake-up; its pass has yet to settle
    await finishLater(runs[1]!.id);
    assert.equal(await woken(), false, "the pass under way settles this one too");
    assert.equal(await settleReleased(p.redis, cell), 2);
  });

  it("wakes the dispatcher again when a settlement leaves releases noted", async () => {
    // 1,001 notes of leases no longer held: a settlement takes 1,000 and releases none of them.
    await p.redis.rpush(cell.released, ...Array.from({ length: 1001 }, (_, i) => `gone${i}\n0\nx|B|p|0|0\n\n\n`));
    await p.redis.del(cell.wake);
    assert.equal(await settleReleased(p.redis, cell), 0);
    assert.equal(await p.redis.llen(cell.released), 1);
    assert.notEqual(await p.redis.zscore(cell.wake, "w"), null, "one is left: the next pass is woken for it");
    await p.redis.del(cell.wake);
    assert.equal(await settleReleased(p.redis, cell), 0);
    assert.equal(await p.redis.llen(cell.released), 0);
    assert.equal(await p.redis.zscore(cell.wake, "w"), null, "none left: no wake-up");
  });

  it("releases a slot once however often its finish is noted", async () => {
    const { name, tenant, runs } = await full(0);
    clock.advance(50);
    const [a] = runs;
    assert.equal(await finishLater(a!.id), "ok");
    // The same finish again (a retry): the run has ended, so it releases at once, settling what was noted.
    assert.equal(await finishLater(a!.id), "final");
    assert.equal(await used(name), 1);
    assert.equal(await running(tenant), 1);
    assert.equal(await p.redis.llen(cell.released), 0);
  });

  it("lets the reconciler settle what is noted before it looks for lost leases", async () => {
    const { name, tenant, runs } = await full(0);
    clock.advance(50);
    for (const r of runs) await finishLater(r.id);
    assert.equal(await reconcileSlots(p.redis, cell, clock.now(), 0, 60), 0, "settled, not lost");
    assert.equal(await used(name), 0);
    assert.equal(await running(tenant), 0);
    assert.equal(await p.redis.llen(cell.released), 0);
  });
});
