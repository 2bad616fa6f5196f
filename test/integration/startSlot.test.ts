import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { awaitReview } from "../../queues/lua/review.ts";
import { startRun } from "../../queues/lua/runLifecycle.ts";
import { execQueue } from "../../queues/names.ts";
import { Worker } from "bullmq";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * A start runs only while its workflow holds a slot (includes/runStart.lua): it trusts the record's copy of
 * the slot's lease, which the dispatch writes with the lease and every way of giving the slot back deletes
 * with it, and asks the slots themselves when the record has none. Observed in Redis: the record, the slots.
 */
describe("a start and its workflow's slot", () => {
  let p: Platform;
  const clock = new FakeClock(Date.UTC(2026, 11, 6));
  const EXEC = execQueue("default");
  let workerConnection: ReturnType<Platform["redis"]["duplicate"]> | undefined;

  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    await p.registry.seed(new Map([["clinic", { tier: "professional" as const, mca: 20 }]]), true);
    await new TenantSync(p.redis, p.keys).sync("default", p.registry.list());
    await heartbeat(p.redis, p.keys.cell("default"), "default", "w", 20, clock.now(), clock.now() + 3_600_000);
  });
  after(async () => {
    await workerConnection?.quit();
    await p.close();
  });

  /** A workflow admitted, dispatched and taken by a worker under `token`, not yet started. */
  async function dispatched(token: string): Promise<string> {
    const cell = p.keys.cell("default");
    const [admitted] = (await p.admission.admitBulk("clinic", [{ type: "noop" }], "0".repeat(32))).accepted;
    await dispatch(p.redis, cell, "default", clock.now(), TEST_DISPATCH_OPTS);
    workerConnection ??= p.redis.duplicate();
    const worker = new Worker(EXEC, null, { connection: workerConnection, prefix: cell.bullPrefix });
    const job = await worker.getNextJob(token, { block: false });
    await worker.close();
    assert.equal(job?.id, admitted!.id);
    assert.equal(await p.redis.hget(cell.workflow(admitted!.id), "lease"), await p.redis.hget(cell.slots, admitted!.id));
    return admitted!.id;
  }
  const start = (id: string, run: string) => startRun(p.redis, p.keys.cell("default"), id, clock.now(), run, "w");

  it("is told the slot is gone when a start comes after the slot was given back", async () => {
    const cell = p.keys.cell("default");
    const id = await dispatched("t1");
    assert.equal((await start(id, "run-1")).kind, "run");
    const review = {
      id,
      now: clock.now(),
      token: "t1",
      pool: "shared",
      step: "review:s",
      request: JSON.stringify({ summary: "s", data: null }),
      dueAt: null,
    };
    const suspended = { ...review, dueWhy: "deadline" as const, onTimeout: "fail" as const, escalateTo: null, deadlineAt: null };
    assert.equal(await awaitReview(p.redis, cell, "default", suspended), "ok");
    assert.equal(await p.redis.hexists(cell.slots, id), 0, "a review gives the slot back");
    assert.equal(await p.redis.hexists(cell.workflow(id), "lease"), 0, "and the record's copy of its lease with it");
    // A re-delivered job of the workflow, started while it waits for its reviewer.
    assert.equal((await start(id, "run-2")).kind, "noslot");
  });

  it("asks the slots when the record keeps no lease (dispatched before records kept it)", async () => {
    const cell = p.keys.cell("default");
    const id = await dispatched("t2");
    await p.redis.hdel(cell.workflow(id), "lease");
    assert.equal((await start(id, "run-1")).kind, "run", "its slot is held: it runs");
    const other = await dispatched("t3");
    await p.redis.hdel(cell.workflow(other), "lease");
    await p.redis.hdel(cell.slots, other);
    assert.equal((await start(other, "run-1")).kind, "noslot", "no slot held: it is handed back");
  });
});
