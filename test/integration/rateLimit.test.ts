import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as realSleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { createKeys } from "../../queues/keys.ts";
import { FakeClock, systemClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { TenantRateLimits, type RateLimits } from "../../src/runtime/rateLimit.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * Per-tenant rate limits against a real Redis. Windows are Redis's (key TTLs),
 * so the one waiting case uses a one-second window and real time; every other
 * case uses a FakeClock and a sleep that must not be called.
 */

const sleepMustNotRun = async () => assert.fail("must not wait");
const sleep = (ms: number, signal?: AbortSignal) => realSleep(ms, undefined, { signal });

describe("TenantRateLimits", () => {
  let redis: Redis;
  let prefix: string;
  let limits: TenantRateLimits;
  before(async () => {
    redis = connect(await testRedisUrl());
    const root = freshPrefix();
    prefix = `${createKeys(root).cell("default").own}:rl`;
    limits = new TenantRateLimits(redis, prefix);
  });
  after(() => redis.quit());

  const bureau: RateLimits = { bureau: { limit: 3, per: "hour" } };

  it("never lets one tenant exhausting its limit affect another tenant's calls to the same tool", async () => {
    const clock = new FakeClock(Date.now());
    const o = { deadlineAt: clock.now() + 5_000, clock, sleep: sleepMustNotRun };
    for (let i = 0; i < 3; i++) assert.deepEqual(await limits.consume("acme", "bureau", bureau, o), { ok: true, waitedMs: 0 });
    const refused = await limits.consume("acme", "bureau", bureau, o);
    assert.equal(refused.ok, false);

    for (let i = 0; i < 3; i++)
      assert.deepEqual(await limits.consume("beta", "bureau", bureau, o), { ok: true, waitedMs: 0 }, `beta call ${i + 1}`);
    assert.equal((await limits.consume("beta", "bureau", bureau, o)).ok, false, "beta has its own 3 per hour");

    const keys = (await redis.keys(`${prefix}:*`)).sort();
    assert.deepEqual(keys, [`${prefix}:hour:acme:bureau`, `${prefix}:hour:beta:bureau`]);
  });

  it("counts concurrent calls atomically: exactly the limit gets through", async () => {
    const clock = new FakeClock(Date.now());
    const o = { deadlineAt: clock.now() + 5_000, clock, sleep: sleepMustNotRun };
    const results = await Promise.all(Array.from({ length: 10 }, () => limits.consume("gamma", "bureau", bureau, o)));
    assert.equal(results.filter((r) => r.ok).length, 3);
  });

  it("waits for a window that reopens before the deadline, then succeeds", async () => {
    const perSecond: RateLimits = { ocr: { limit: 2, per: "second" } };
    const o = { deadlineAt: Date.now() + 5_000, clock: systemClock, sleep };
    assert.equal((await limits.consume("acme", "ocr", perSecond, o)).ok, true);
    assert.equal((await limits.consume("acme", "ocr", perSecond, o)).ok, true);
    const started = Date.now();
    const third = await limits.consume("acme", "ocr", perSecond, o);
    const elapsed = Date.now() - started;
    assert.equal(third.ok, true);
    assert.ok(third.ok && third.waitedMs > 0, JSON.stringify(third));
    assert.ok(elapsed <= 1_200, `waited ${elapsed} ms`);
  });

  it("refuses with retryAfterMs when the window reopens only after a short deadline, without waiting", async () => {
    const clock = new FakeClock(Date.now());
    const o = { deadlineAt: clock.now() + 2_000, clock, sleep: sleepMustNotRun };
    const oneAnHour: RateLimits = { bureau: { limit: 1, per: "hour" } };
    assert.equal((await limits.consume("delta", "bureau", oneAnHour, o)).ok, true);
    const refused = await limits.consume("delta", "bureau", oneAnHour, o);
    assert.equal(refused.ok, false);
    assert.ok(!refused.ok && refused.retryAfterMs > 2_000 && refused.retryAfterMs <= 3_600_000, JSON.stringify(refused));
  });

  it("stops waiting with the signal's reason when the workflow is cancelled", async () => {
    const oneAMinute: RateLimits = { bureau: { limit: 1, per: "minute" } };
    const ctl = new AbortController();
    const o = { deadlineAt: null, clock: systemClock, sleep, signal: ctl.signal };
    assert.equal((await limits.consume("epsilon", "bureau", oneAMinute, o)).ok, true);
    const waiting = limits.consume("epsilon", "bureau", oneAMinute, o);
    setTimeout(() => ctl.abort("cancelled"), 50);
    await assert.rejects(waiting, (e) => e === "cancelled");
  });

  it("lets every call through when no limit is configured for the name, touching no key", async () => {
    const clock = new FakeClock(Date.now());
    const o = { deadlineAt: clock.now() + 1_000, clock, sleep: sleepMustNotRun };
    for (let i = 0; i < 5; i++) assert.deepEqual(await limits.consume("zeta", "search", bureau, o), { ok: true, waitedMs: 0 });
    assert.deepEqual(await limits.consume("zeta", "toString", {}, o), { ok: true, waitedMs: 0 });
    assert.deepEqual(await redis.keys(`${prefix}:*:zeta:*`), []);
  });
});
