import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createKeys, type CellKeys } from "../../queues/keys.ts";
import { admitWorkflows } from "../../queues/lua/admitWorkflow.ts";
import { ingressQueue } from "../../queues/names.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { SPEND_TTL_SEC, TenantBudget } from "../../src/runtime/budget.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/** Month spend in a real Redis, with a FakeClock choosing the calendar month. */
describe("TenantBudget", () => {
  let redis: Redis;
  let cell: CellKeys;
  let prefix: string;
  before(async () => {
    redis = connect(await testRedisUrl());
    cell = createKeys(freshPrefix()).cell("default");
    prefix = cell.own;
  });

  /** One Class C workflow through the admitWorkflow script, held to `budget`'s month for `tenant`: its outcome. */
  let n = 0;
  async function admitUnder(budget: TenantBudget, tenant: string, monthlyUsd: number, now: number) {
    const id = `wf_budget${String(++n).padStart(14, "0")}`;
    const record = { tenant, class: "C", type: "noop", state: "queued", enqueuedAt: String(now) };
    const input = { id, tenant, cls: "C" as const, type: "noop", data: "{}", now, idempotencyTtlSec: 0, maxQueueDepth: 1000 };
    const budgetIn = budget.admissionBudget(tenant, monthlyUsd);
    const [outcome] = await admitWorkflows(redis, [{ cell, input: { ...input, maxQueuedTotal: 1e6, record, budget: budgetIn } }]);
    return outcome!.kind;
  }
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
    const clock = new FakeClock(Date.UTC(2026, 4, 2));
    const budget = new TenantBudget(redis, prefix, clock);
    const admit = (tenant: string) => admitUnder(budget, tenant, 50, clock.now());
    assert.equal(await admit("zeta"), "ok");
    await budget.record("zeta", 49.99);
    assert.equal(await admit("zeta"), "ok");
    await budget.record("zeta", 0.01);
    assert.equal(await admit("zeta"), "budget_exceeded", "spent == monthly");
    await budget.record("zeta", 1);
    assert.equal(await admit("zeta"), "budget_exceeded", "spent > monthly");
    assert.equal(await admit("eta"), "ok", "another tenant is unaffected");
    assert.equal(await redis.llen(cell.queueKey(ingressQueue("zeta", "C"), "wait")), 2, "a refusal queues nothing");
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
    await other.record("iota", 0.25);
    assert.equal(await admitUnder(mine, "iota", 3.75, clock.now()), "budget_exceeded", "admission reads Redis, not what it knows");
  });
});
