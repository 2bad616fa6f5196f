import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Queue, type Job } from "bullmq";
import { Redis } from "ioredis";
import { createKeys, type CellKeys } from "../../queues/keys.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { execQueue } from "../../queues/names.ts";
import { LeaseTrackingWorker } from "../../src/exec/cellWorker.ts";
import { RunHandoff } from "../../src/exec/execBackend.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The exec consumer (src/exec/execBackend.ts) on a real Redis with stock BullMQ around it: a fetch also
 * starts the workflow it takes, and BullMQ's finish of a job also records its run's outcome and notes its
 * slot's release, which the next dispatch call settles. Observed from Redis itself: each record's state at
 * the moment its processor runs and after, the slot leases and the releases noted, BullMQ's own job and
 * queue keys, and Redis's count of script calls (INFO commandstats).
 */
describe("exec consumer: BullMQ's fetch and finish with the workflow's start and end", () => {
  let url: string;
  let admin: Redis;
  before(async () => {
    url = await testRedisUrl();
    admin = new Redis(url);
  });
  const opened: Redis[] = [];
  after(async () => {
    await Promise.all([admin, ...opened].map((c) => c.quit()));
  });

  const connection = () => {
    const c = new Redis(url, { maxRetriesPerRequest: null });
    opened.push(c);
    return c;
  };

  /** A dispatched workflow as the dispatch script leaves it: its record, its slot lease, its exec job. */
  async function dispatched(cell: CellKeys, queue: Queue, id: string): Promise<void> {
    const now = Date.now();
    await admin.hset(cell.workflow(id), { state: "dispatched", tenant: "t1", class: "B", enqueuedAt: now - 5, traceparent: "" });
    await admin.hset(cell.slots, id, `t1|B|p|${now}|0`);
    await admin.hincrby(cell.running("t1"), "BC", 1);
    await queue.add("noop", { n: 1 }, { jobId: id, removeOnComplete: true });
  }

  /** Stock BullMQ's Worker on the cell's exec queue `name`, with the exec consumer as its backend. */
  function consumer(cell: CellKeys, name: string, processor: (handoff: RunHandoff) => (job: Job) => Promise<unknown>) {
    const conn = connection();
    const handoff = new RunHandoff(conn, cell, "w1", Date.now, createLogger("test", "silent"));
    const worker = new LeaseTrackingWorker({ lockedAt: new Map(), now: Date.now, handoff }, name, processor(handoff), {
      connection: conn,
      prefix: cell.bullPrefix,
      concurrency: 1,
      skipVersionCheck: true,
    });
    worker.on("error", () => undefined);
    return worker;
  }

  /** Until the record of workflow `id` is in `state` (20 s at most). */
  async function untilState(cell: CellKeys, id: string, state: string): Promise<void> {
    for (const until = Date.now() + 20_000; (await admin.hget(cell.workflow(id), "state")) !== state; ) {
      assert.ok(Date.now() < until, "the outcome was never written");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The events in the exec queue's BullMQ events stream (the test's own Queue.add writes "added" and "waiting"). */
  async function events(cell: CellKeys, name: string): Promise<string[]> {
    const entries = await admin.xrange(cell.queueKey(name, "events"), "-", "+");
    return entries.map(([, fields]) => fields[fields.indexOf("event") + 1]!);
  }

  /** The ids whose release is noted and not yet settled (includes/releaseSlot.lua). */
  async function noted(cell: CellKeys): Promise<string[]> {
    return (await admin.lrange(cell.released, 0, -1)).map((e) => e.split("\n")[0]!);
  }

  /** One dispatch call of pool "p", which settles the noted releases first (there is nothing to move). */
  async function settle(cell: CellKeys): Promise<void> {
    await dispatch(admin, cell, "p", Date.now(), TEST_DISPATCH_OPTS);
  }

  async function scriptCalls(): Promise<number> {
    const info = await admin.info("commandstats");
    return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  }

  it("starts each workflow in its fetch and ends it in BullMQ's finish: one script call per job", async () => {
    const cell = createKeys(freshPrefix()).cell("c1");
    const name = execQueue("p");
    const queue = new Queue(name, { connection: connection(), prefix: cell.bullPrefix });
    const ids = Array.from({ length: 20 }, (_, i) => `wf-${i}`);
    for (const id of ids) await dispatched(cell, queue, id);
    const seen = new Map<string, { state?: string | null; runId?: string | null; handed?: string }>();
    const worker = consumer(cell, name, (handoff) => async (job: Job) => {
      const handed = handoff.takeStart(job.id!);
      const [state, runId] = await admin.hmget(cell.workflow(job.id!), "state", "runId");
      seen.set(job.id!, { state, runId, handed: handed?.runId });
      assert.equal(handed?.start.kind, "run");
      handoff.deferFinish({
        id: job.id!,
        now: Date.now(),
        runId: handed!.runId,
        state: "completed",
        result: { ok: 1 },
        recordTtlSec: 60,
      });
      return null;
    });
    const before = await scriptCalls();
    try {
      for (const until = Date.now() + 20_000; seen.size < ids.length || (await noted(cell)).length < ids.length; ) {
        assert.ok(Date.now() < until, `drained ${seen.size} of ${ids.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const calls = (await scriptCalls()) - before;
      for (const id of ids) {
        const s = seen.get(id)!;
        // Running with the run id the fetch gave it, before its processor did anything.
        assert.equal(s.state, "running");
        assert.equal(s.runId, s.handed);
        const rec = await admin.hgetall(cell.workflow(id));
        assert.equal(rec.state, "completed");
        assert.equal(rec.result, JSON.stringify({ ok: 1 }));
        assert.equal(rec.attempts, "1");
        assert.equal(await admin.exists(cell.jobKey(name, id)), 0, "BullMQ completed and removed its job");
      }
      // Each finish noted its release, once, and left the lease and counts to the dispatch, which settles them all.
      assert.deepEqual((await noted(cell)).sort(), [...ids].sort());
      assert.equal(await admin.hlen(cell.slots), ids.length, "held until a dispatch call settles them");
      await settle(cell);
      assert.equal(await admin.hlen(cell.slots), 0, "every slot released");
      assert.equal(await admin.hget(cell.running("t1"), "BC"), "0");
      assert.deepEqual(await noted(cell), []);
      // The fetch and finish write no events (queues/lua/bullmqSlim.ts): only the test's adds are there.
      assert.deepEqual(new Set(await events(cell, name)), new Set(["added", "waiting"]));
      // Per job: its fetch (with its start) or the finish-and-fetch that took it; plus the empty fetches and
      // stalled-job checks of one idle worker. Three scripts per job (start, BullMQ, finish) would be 60.
      assert.ok(calls <= ids.length + 8, `${calls} script calls for ${ids.length} jobs`);
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  it("writes a run's outcome itself when BullMQ skips the job's finish (the worker closed under it)", async () => {
    const cell = createKeys(freshPrefix()).cell("c1");
    const name = execQueue("p");
    const queue = new Queue(name, { connection: connection(), prefix: cell.bullPrefix });
    await dispatched(cell, queue, "wf-c");
    let closed: Promise<void> | undefined;
    const worker: LeaseTrackingWorker = consumer(cell, name, (handoff) => async (job: Job) => {
      const handed = handoff.takeStart(job.id!)!;
      handoff.deferFinish({ id: job.id!, now: Date.now(), runId: handed.runId, state: "completed", result: 7, recordTtlSec: 60 });
      // Closed by force while the run ends: BullMQ then leaves the job as it is, with no finish of its own.
      closed = worker.close(true);
      await closed;
      return null;
    });
    try {
      await untilState(cell, "wf-c", "completed");
      assert.equal(await admin.hget(cell.workflow("wf-c"), "result"), "7");
      assert.equal(await admin.hexists(cell.slots, "wf-c"), 0);
      assert.equal(await queue.getJobState("wf-c"), "active", "BullMQ did not finish the job itself");
    } finally {
      await closed;
      await queue.close();
    }
  });

  it("records a run's outcome with BullMQ's failure of its job when the processor throws after it", async () => {
    const cell = createKeys(freshPrefix()).cell("c1");
    const name = execQueue("p");
    const queue = new Queue(name, { connection: connection(), prefix: cell.bullPrefix });
    await dispatched(cell, queue, "wf-x");
    const worker = consumer(cell, name, (handoff) => async (job: Job) => {
      const handed = handoff.takeStart(job.id!)!;
      handoff.deferFinish({
        id: job.id!,
        now: Date.now(),
        runId: handed.runId,
        state: "failed",
        error: { code: "X", message: "m" },
        recordTtlSec: 60,
      });
      // BullMQ then fails the job (its own moveToFinished): the outcome goes with it, once.
      throw new Error("after its outcome");
    });
    try {
      await untilState(cell, "wf-x", "failed");
      assert.equal(await admin.hget(cell.workflow("wf-x"), "errorCode"), "X");
      assert.deepEqual(await noted(cell), ["wf-x"]);
      await settle(cell);
      assert.equal(await admin.hexists(cell.slots, "wf-x"), 0);
      assert.equal(await queue.getJobState("wf-x"), "failed", "BullMQ's own failure of the job");
      const job = (await queue.getJob("wf-x"))!;
      assert.equal(job.failedReason, "after its outcome");
      assert.ok(job.finishedOn && job.processedOn && job.attemptsMade === 1, "BullMQ's own fields, as Bull Board shows them");
      assert.ok(!(await events(cell, name)).some((e) => e === "failed" || e === "active" || e === "retries-exhausted"));
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});
