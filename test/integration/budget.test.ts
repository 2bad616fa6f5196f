import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createKeys } from "../../queues/keys.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { SPEND_TTL_SEC, TenantBudget } from "../../src/runtime/budget.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/** Month spend in a real Redis, with a FakeClock choosing the calendar month. */
describe("TenantBudget", () => {
  let redis: Redis;
  let prefix: string;
  before(async () => {
    redis = connect(await testRedisUrl());
    prefix = createKeys(freshPrefix()).cell("default").own;
  });
  after(() => redis.quit());

  it("keeps each tenant's spend to itself", async () => {
    const budget = new TenantBudget(redis, prefix, new FakeClock(Date.UTC(2026, 2, 10)));
    assert.equal(await budget.record("acme", 1.25), 1.25);
    assert.equal(await budget.record("acme", 0.000002), 1.250002);
    assert.equal(await budget.record("beta", 0.1), 0.1);
    assert.equal(await budget.monthSpentUsd("acme"), 1.250002);
    assert.equal(await budget.monthSpentUsd("beta"), 0.1);
    assert.equal(await budget.monthSpentUsd("gamma"), 0);
    assert.equal(await redis.get(`${prefix}:spend:acme:202603`), "1250002", "integer micro-dollars");
  });

  it("adds concurrent records without losing any", async () => {
    const budget = new TenantBudget(redis, prefix, new FakeClock(Date.UTC(2026, 2, 10)));
    await Promise.all(Array.from({ length: 50 }, () => budget.record("delta", 0.01)));
    assert.equal(await budget.monthSpentUsd("delta"), 0.5);
  });

  it("starts a new month at zero and gives the month key a TTL of about 40 days", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 31, 23, 59, 59));
    const budget = new TenantBudget(redis, prefix, clock);
    await budget.record("epsilon", 3);
    const ttl = await redis.ttl(`${prefix}:spend:epsilon:202601`);
    assert.ok(ttl > SPEND_TTL_SEC - 60 && ttl <= SPEND_TTL_SEC, `ttl ${ttl}`);

    clock.set(Date.UTC(2026, 1, 1));
    assert.equal(await budget.monthSpentUsd("epsilon"), 0);
    assert.equal(await budget.record("epsilon", 0.5), 0.5);
    clock.set(Date.UTC(2026, 0, 15));
    assert.equal(await budget.monthSpentUsd("epsilon"), 3, "January's spend is still January's");
  });

  it("admits while the month's spend is below the monthly budget, and not once it reaches it", async () => {
    const budget = new TenantBudget(redis, prefix, new FakeClock(Date.UTC(2026, 4, 2)));
    assert.equal(await budget.canAdmit("zeta", 50), true);
    await budget.record("zeta", 49.99);
    assert.equal(await budget.canAdmit("zeta", 50), true);
    await budget.record("zeta", 0.01);
    assert.equal(await budget.canAdmit("zeta", 50), false, "spent == monthly");
    await budget.record("zeta", 1);
    assert.equal(await budget.canAdmit("zeta", 50), false, "spent > monthly");
    assert.equal(await budget.canAdmit("eta", 50), true, "another tenant is unaffected");
  });

  it("refuses to record a negative or non-numeric amount", async () => {
    const budget = new TenantBudget(redis, prefix, new FakeClock(Date.UTC(2026, 4, 2)));
    await assert.rejects(budget.record("theta", -1), RangeError);
    await assert.rejects(budget.record("theta", Number.NaN), RangeError);
    assert.equal(await budget.monthSpentUsd("theta"), 0);
  });

  it("on the tool-call path reads Redis at most once per maxAge, sees its own records at once and others' after maxAge", async () => {
    const clock = new FakeClock(Date.UTC(2026, 6, 1));
    const mine = new TenantBudget(redis, prefix, clock, 250);
    const other = new TenantBudget(redis, prefix, clock, 250);
    const key = mine.spendKey("iota");
    await other.record("iota", 1);
    const before = Number((await redis.info("commandstats")).match(/cmdstat_get:calls=(\d+)/)?.[1] ?? 0);
    const reads = await Promise.all(Array.from({ length: 20 }, () => mine.monthSpentUsd("iota")));
    const after = Number((await redis.info("commandstats")).match(/cmdstat_get:calls=(\d+)/)?.[1] ?? 0);
    assert.deepEqual(reads, Array(20).fill(1));
    assert.equal(after - before, 1, "twenty concurrent looks, one GET");
    await mine.record("iota", 0.5);
    assert.equal(await mine.monthSpentUsd("iota"), 1.5, "its own record counts at once");
    await other.record("iota", 2);
    assert.equal(await mine.monthSpentUsd("iota"), 1.5, "another process's spend: not yet");
    clock.advance(251);
    assert.equal(await mine.monthSpentUsd("iota"), 3.5, "after maxAge: Redis's total");
    assert.equal(await redis.get(key), "3500000");
    assert.equal(await mine.canAdmit("iota", 3.5), false, "admission reads Redis");
  });
});
