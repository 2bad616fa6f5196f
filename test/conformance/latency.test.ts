import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { createKeys, type CellKeys } from "../../queues/keys.ts";
import { startRun } from "../../queues/lua/runLifecycle.ts";
import { connect } from "../../src/lib/redis.ts";
import { bucketStart, latencyBucket } from "../../src/usage/usageBuckets.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { LATENCY_CASES } from "./latency.cases.ts";

/**
 * The latency bucket rule has two homes: latencyBucket
 * (src/usage/usageBuckets.ts) and startRun-2.lua's loop. Every row of
 * the table is checked against both, through the real script: a workflow
 * enqueued `latencyMs` before `now` starts for the first time, and the field
 * it counts in the usage-event bucket names its latency bucket. Then
 * fast-check generates latencies, with extra weight at the powers of two.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 300);
const NOW = Date.UTC(2026, 11, 1);

describe("latency bucket: usageBuckets.ts and startRun-2.lua agree", () => {
  let redis: Redis;
  let cell: CellKeys;
  let n = 0;

  before(async () => {
    redis = connect(await testRedisUrl());
    cell = createKeys(freshPrefix()).cell("default");
  });
  after(() => redis.quit());

  /** The bucket startRun-2.lua counts a first start in, `latencyMs` after its admission. */
  async function scriptBucket(latencyMs: number): Promise<number> {
    const id = `lat${++n}`;
    const tenant = `t${n}`;
    await redis
      .multi()
      .hset(cell.workflow(id), { state: "dispatched", tenant, class: "B", enqueuedAt: String(NOW - latencyMs) })
      .hset(cell.slots, id, `${tenant}|B|default|${NOW}|0`)
      .exec();
    const out = await startRun(redis, cell, id, NOW, "run", "worker");
    assert.deepEqual([out.kind, out.kind === "run" && out.firstStart], ["run", true], "a first start");
    const counted = Object.entries(await redis.hgetall(cell.usageEvents(bucketStart(NOW)))).filter(([f]) => f.startsWith(`${tenant}|l`));
    assert.equal(counted.length, 1, `one latency field counted: ${JSON.stringify(counted)}`);
    assert.equal(counted[0]![1], "1");
    return Number(counted[0]![0].slice(`${tenant}|l`.length));
  }

  for (const c of LATENCY_CASES) {
    it(c.name, async () => {
      assert.equal(latencyBucket(c.latencyMs), c.bucket, "pure rule");
      assert.equal(await scriptBucket(c.latencyMs), c.bucket, "script");
    });
  }

  it(`agree on ${RUNS} generated latencies`, { timeout: 60_000 }, async () => {
    const arb = fc.oneof(
      fc.integer({ min: -5_000, max: 5_000 }),
      fc.integer({ min: 0, max: 2 ** 25 }),
      fc.tuple(fc.integer({ min: 0, max: 26 }), fc.integer({ min: -1, max: 1 })).map(([b, d]) => 2 ** b + d),
    );
    await fc.assert(
      fc.asyncProperty(arb, async (ms) => {
        assert.equal(await scriptBucket(ms), latencyBucket(ms), `latency ${ms} ms`);
      }),
      { numRuns: RUNS },
    );
  });
});
