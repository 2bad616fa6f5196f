import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createKeys, type CellKeys } from "../../queues/keys.ts";
import { LatencyTally } from "../../queues/latencyTally.ts";
import { startRun } from "../../queues/lua/runLifecycle.ts";
import { BUCKET_TTL_SEC, bucketStart } from "../../queues/usageEvents.ts";
import { connect } from "../../src/lib/redis.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { LATENCY_CASES } from "./latency.cases.ts";

/**
 * The exec process's count of first starts' enqueue->start latencies (queues/latencyTally.ts), on a real
 * Redis: each row of the bucket table counted and flushed lands in "<tenant>|l<b>" of the bucket of its
 * start, with the bucket's TTL; counts of one flush add up (one HINCRBY per field, not per start); a flush
 * Redis could not take is added once by the next. The start's reply marks the first start (the only one
 * the exec counts, src/exec/runWorkflow.ts) and the script itself counts nothing.
 */
const NOW = Date.UTC(2026, 11, 1, 12, 0, 5);

describe("LatencyTally: first starts' latencies into the usage-event buckets", () => {
  let url: string;
  let redis: Redis;
  let cell: CellKeys;
  let n = 0;

  before(async () => {
    url = await testRedisUrl();
    redis = connect(url);
    cell = createKeys(freshPrefix()).cell("default");
  });
  after(() => redis.quit());

  const fields = async (at: number, tenant: string) =>
    Object.fromEntries(Object.entries(await redis.hgetall(cell.usageEvents(bucketStart(at)))).filter(([f]) => f.startsWith(`${tenant}|`)));

  for (const c of LATENCY_CASES) {
    it(c.name, async () => {
      const tenant = `t${++n}`;
      const tally = new LatencyTally();
      tally.count(cell, tenant, NOW - c.latencyMs, NOW);
      await tally.flush(redis);
      assert.deepEqual(await fields(NOW, tenant), { [`${tenant}|l${c.bucket}`]: "1" });
    });
  }

  it("adds one flush's starts up per field, each in the bucket of its start, with the bucket's TTL", async () => {
    const tally = new LatencyTally();
    for (let i = 0; i < 3; i++) tally.count(cell, "busy", NOW - 100, NOW);
    tally.count(cell, "busy", NOW - 3, NOW);
    tally.count(cell, "busy", NOW + 10_000 - 100, NOW + 10_000);
    const before = (await redis.info("commandstats")).match(/cmdstat_hincrby:calls=(\d+)/)?.[1] ?? "0";
    await tally.flush(redis);
    const after = (await redis.info("commandstats")).match(/cmdstat_hincrby:calls=(\d+)/)?.[1] ?? "0";
    assert.equal(Number(after) - Number(before), 3, "one HINCRBY per bucket and field, not one per start");
    assert.deepEqual(await fields(NOW, "busy"), { "busy|l7": "3", "busy|l2": "1" });
    assert.deepEqual(await fields(NOW + 10_000, "busy"), { "busy|l7": "1" });
    const ttl = await redis.ttl(cell.usageEvents(bucketStart(NOW)));
    assert.ok(ttl > BUCKET_TTL_SEC - 60 && ttl <= BUCKET_TTL_SEC, `TTL ${ttl}`);
  });

  it("keeps what a failed flush held for the next one, which adds it once", async () => {
    const tally = new LatencyTally();
    tally.count(cell, "retry", NOW - 100, NOW);
    const gone = connect(url);
    await gone.quit();
    await assert.rejects(tally.flush(gone));
    assert.deepEqual(await fields(NOW, "retry"), {}, "nothing reached Redis");
    tally.count(cell, "retry", NOW - 100, NOW);
    await tally.flush(redis);
    await tally.flush(redis);
    assert.deepEqual(await fields(NOW, "retry"), { "retry|l7": "2" });
  });

  it("is given first starts only: the start's reply tells a first start from a re-run, with the dispatch time", async () => {
    const id = "wf_rerun";
    await redis.hset(cell.workflow(id), { state: "dispatched", tenant: "rerun", class: "B", enqueuedAt: String(NOW - 100) });
    await redis.hset(cell.workflow(id), "dispatchedAt", String(NOW - 30));
    await redis.hset(cell.slots, id, `rerun|B|default|${NOW - 30}|0`);
    const first = await startRun(redis, cell, id, NOW, "run1", "w1");
    assert.deepEqual([first.kind, first.kind === "run" && first.firstStart, first.meta?.dispatchedAt], ["run", true, NOW - 30]);
    await redis.hset(cell.workflow(id), "state", "dispatched"); // handed back, dispatched again
    const again = await startRun(redis, cell, id, NOW + 5, "run2", "w1");
    assert.deepEqual([again.kind, again.kind === "run" && again.firstStart], ["run", false], "a re-run is not a new enqueue->start sample");
    assert.deepEqual(await fields(NOW, "rerun"), {}, "the start's script counts nothing itself");
  });

  it("counts nothing for a start whose enqueue time is unknown", async () => {
    const tally = new LatencyTally();
    tally.count(cell, "unknown", Number.NaN, NOW);
    await tally.flush(redis);
    assert.deepEqual(await fields(NOW, "unknown"), {});
  });
});
