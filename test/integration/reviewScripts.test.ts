import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Worker } from "bullmq";
import { cancelWorkflow } from "../../queues/lua/cancelWorkflow.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { awaitReview, claimReview, decideReview, expireReviews, type ReviewSuspension } from "../../queues/lua/review.ts";
import { startRun } from "../../queues/lua/runLifecycle.ts";
import { execQueue } from "../../queues/names.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { deadlineListings } from "../helpers/deadlineIndex.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/** The review scripts one by one, on a real Redis with a fake clock: suspension, a cancel that came first, leases, the due sweep. */
describe("review scripts", () => {
  let p: Platform;
  const clock = new FakeClock(Date.UTC(2026, 11, 2));
  const EXEC = execQueue("default");

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
  let workerConnection: ReturnType<Platform["redis"]["duplicate"]> | undefined;

  /** A workflow admitted, dispatched and taken by a worker under `token`, not yet started. */
  async function taken(token: string): Promise<string> {
    const cell = p.keys.cell("default");
    const [admitted] = (await p.admission.admitBulk("clinic", [{ type: "noop" }], "0".repeat(32))).accepted;
    await dispatch(p.redis, cell, "default", clock.now(), TEST_DISPATCH_OPTS);
    workerConnection ??= p.redis.duplicate();
    const worker = new Worker(EXEC, null, { connection: workerConnection, prefix: cell.bullPrefix });
    const job = await worker.getNextJob(token, { block: false });
    await worker.close();
    assert.equal(job?.id, admitted!.id);
    return admitted!.id;
  }
  const start = (id: string, run: string) => startRun(p.redis, p.keys.cell("default"), id, clock.now(), run, "w");

  /** A workflow admitted, dispatched, taken by a worker under `token` and started: as a run holds it. */
  async function running(token: string): Promise<string> {
    const id = await taken(token);
    assert.equal((await start(id, `run-${token}`)).kind, "run");
    return id;
  }

  const suspension = (id: string, token: string, o: Partial<ReviewSuspension> = {}): ReviewSuspension => ({
    id,
    now: clock.now(),
    token,
    pool: "shared",
    step: "review:review",
    request: JSON.stringify({ summary: "s", data: null }),
    dueAt: null,
    dueWhy: "deadline",
    onTimeout: "fail",
    escalateTo: null,
    deadlineAt: null,
    ...o,
  });

  it("suspends a running workflow: its slot is free, its job in the review queue, its item in line", async () => {
    const cell = p.keys.cell("default");
    const id = await running("t1");
    assert.equal(await p.redis.hexists(cell.slots, id), 1);
    assert.equal(await awaitReview(p.redis, cell, "default", suspension(id, "t1")), "ok");
    assert.equal(await p.redis.hget(cell.workflow(id), "state"), "review");
    assert.equal(await p.redis.hexists(cell.slots, id), 0, "a person may take hours: the slot is given back");
    assert.deepEqual(await p.redis.lrange(cell.queueKey("review", "wait"), 0, -1), [id]);
    assert.deepEqual(await p.redis.lrange(cell.queueKey(EXEC, "active"), 0, -1), [], "the worker no longer holds it");
    assert.equal(await p.redis.zscore(cell.reviewQueue("shared", "B", "clinic"), id), String(clock.now()));
  });

  // A start trusts the record's copy of its slot lease, which every way of giving the slot back deletes with
  // it (includes/runStart.lua, includes/releaseSlot.lua), and asks the slots when the record has none.
  it("tells a start that comes after the review gave the slot back that the slot is gone", async () => {
    const cell = p.keys.cell("default");
    const id = await taken("s1");
    assert.equal(await p.redis.hget(cell.workflow(id), "lease"), await p.redis.hget(cell.slots, id), "the record keeps the lease");
    assert.equal((await start(id, "run-1")).kind, "run");
    assert.equal(await awaitReview(p.redis, cell, "default", suspension(id, "s1")), "ok");
    assert.equal(await p.redis.hexists(cell.workflow(id), "lease"), 0, "the record's copy goes with the slot");
    // A re-delivered job of the workflow, started while it waits for its reviewer.
    assert.equal((await start(id, "run-2")).kind, "noslot");
  });

  it("asks the slots when the record keeps no lease (dispatched before records kept it)", async () => {
    const cell = p.keys.cell("default");
    const id = await taken("s2");
    await p.redis.hdel(cell.workflow(id), "lease");
    assert.equal((await start(id, "run-1")).kind, "run", "its slot is held: it runs");
    const other = await taken("s3");
    await p.redis.hdel(cell.workflow(other), "lease");
    await p.redis.hdel(cell.slots, other);
    assert.equal((await start(other, "run-1")).kind, "noslot", "no slot held: it is handed back");
  });

  it("a decision queues the workflow again, in the deadline sweep's index again", async () => {
    const cell = p.keys.cell("default");
    const id = await running("t5");
    const deadlineAt = Number(await p.redis.hget(cell.workflow(id), "deadlineAt"));
    assert.ok(deadlineAt > clock.now(), "admitted with the tier's default deadline");
    assert.equal(await awaitReview(p.redis, cell, "default", suspension(id, "t5", { pool: "decide" })), "ok");
    const claimed = await claimReview(p.redis, cell, { pool: "decide", now: clock.now(), leaseMs: 60_000, claimant: "rn" });
    assert.equal(claimed?.id, id);
    const decided = await decideReview(p.redis, cell, {
      id,
      now: clock.now(),
      pool: "decide",
      claimant: "rn",
      decision: "approve",
      stepResult: JSON.stringify({ v: "approve" }),
      note: "",
    });
    assert.equal(decided.kind, "decided");
    assert.equal(await p.redis.hget(cell.workflow(id), "state"), "queued");
    assert.equal(
      await deadlineListings(p.redis, cell, id, deadlineAt),
      2,
      "queued again: in the index again (admitted, then queued again)",
    );
    // Out of the way of the next tests' dispatches, which take the head of clinic's queue.
    assert.equal((await cancelWorkflow(p.redis, cell, id, "clinic", clock.now(), { recordTtlSec: 60 })).kind, "cancelled");
  });

  it("does not suspend a workflow its producer cancelled as it asked: the caller ends it cancelled", async () => {
    const cell = p.keys.cell("default");
    const id = await running("t2");
    assert.equal((await cancelWorkflow(p.redis, cell, id, "clinic", clock.now(), { recordTtlSec: 60 })).kind, "signalled");
    assert.equal(await awaitReview(p.redis, cell, "default", suspension(id, "t2")), "cancel");
    assert.equal(await p.redis.hget(cell.workflow(id), "state"), "running", "nothing moved");
    assert.equal(await p.redis.exists(cell.review(id)), 0, "no review item");
  });

  it("escalates at the SLA once, to the escalation pool, then fails at the workflow's deadline", async () => {
    const cell = p.keys.cell("default");
    const id = await running("t3");
    const now = clock.now();
    const s = suspension(id, "t3", {
      dueAt: now + 1000,
      dueWhy: "sla",
      onTimeout: "escalate",
      escalateTo: "leads",
      deadlineAt: now + 5000,
    });
    assert.equal(await awaitReview(p.redis, cell, "default", s), "ok");
    const claim = (pool: string) => claimReview(p.redis, cell, { pool, now: clock.now(), leaseMs: 60_000, claimant: "reviewer:k" });
    clock.advance(999);
    assert.deepEqual(await expireReviews(p.redis, cell, clock.now(), 60), { escalated: 0, failed: 0 }, "not due yet");
    clock.advance(1);
    assert.deepEqual(await expireReviews(p.redis, cell, clock.now(), 60), { escalated: 1, failed: 0 });
    const got = await claim("leads");
    assert.equal(got?.id, id);
    assert.equal(got?.item.escalations, "1");
    clock.advance(4000);
    assert.deepEqual(
      await expireReviews(p.redis, cell, clock.now(), 60),
      { escalated: 0, failed: 1 },
      "claimed or not, its deadline ends it",
    );
    const rec = await p.redis.hgetall(cell.workflow(id));
    assert.deepEqual([rec.state, rec.errorCode], ["failed", "DEADLINE_EXCEEDED"]);
    assert.equal(await p.redis.exists(cell.review(id)), 0);
    assert.equal(await p.redis.zcard(cell.reviewLeases("leads")), 0, "its claim is gone with it");
    assert.ok((await p.redis.ttl(cell.workflow(id))) > 0, "an ended record expires");
  });
});
