import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { connect } from "../../src/lib/redis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { DEFAULT_DISPATCHER, Dispatcher } from "../../src/scheduler/dispatcher.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

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
});
