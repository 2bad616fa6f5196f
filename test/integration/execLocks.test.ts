import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { LeaseTrackingWorker } from "../../src/exec/cellWorker.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The exec role's BullMQ Worker (LeaseTrackingWorker, src/exec/cellWorker.ts) with stock BullMQ on a
 * real Redis. A job whose lock lapsed while its processing still ran (a stalled process: it is being
 * stopped and handed back) is put back by BullMQ's stalled check, and the same worker may fetch it
 * again while the old processing is still ending. BullMQ renews locks per job id: when the old
 * processing ended it untracked the new one, whose lock then lapsed too, and the job stalled again
 * and again (seen as runs stopped "stalled" every few seconds after an exec process was killed, up to
 * BullMQ's maxStalledCount, which fails the job). What is observed: the processor's own calls.
 */
describe("exec worker: a job fetched again while its stalled processing is still ending", () => {
  const conns: Redis[] = [];
  after(() => {
    for (const c of conns) c.disconnect();
  });

  it("is processed once more, with its lock renewed, and not again and again", { timeout: 60_000 }, async () => {
    const url = await testRedisUrl();
    const connection = () => {
      const c = new Redis(url, { maxRetriesPerRequest: null });
      conns.push(c);
      return c;
    };
    const prefix = freshPrefix();
    const name = "exec.locks";
    const redis = connection();
    const queue = new Queue(name, { connection: connection(), prefix });
    const calls: { at: number; token: string | undefined }[] = [];
    const lockKey = (id: string) => `${prefix}:${name}:${id}:lock`;
    const worker = new LeaseTrackingWorker(
      { lockedAt: new Map(), now: Date.now },
      name,
      async (job, token) => {
        calls.push({ at: Date.now(), token });
        if (calls.length === 1) {
          // Its lock lapses (as in a frozen process); the stalled check puts the job back and this worker
          // fetches it again (the lock holds another token) while this processing has not ended yet.
          await redis.del(lockKey(job.id!));
          for (const until = Date.now() + 20_000; Date.now() < until; await sleep(20)) {
            const holder = await redis.get(lockKey(job.id!));
            if (holder && holder !== token) break;
          }
          await sleep(50); // still ending (a hand-back's round trip) after the new fetch
          return "stalled";
        }
        await sleep(3_000); // three lock durations: it completes only if its lock is renewed
        return "done";
      },
      { connection: connection(), prefix, concurrency: 2, lockDuration: 1_000, stalledInterval: 300, maxStalledCount: 20 },
    );
    worker.on("error", () => undefined);
    try {
      const job = await queue.add("run", {}, { jobId: "wf-1" });
      let state = "";
      for (const until = Date.now() + 40_000; Date.now() < until && state !== "completed"; await sleep(100))
        state = await queue.getJobState(job.id!);
      assert.equal(state, "completed", `calls: ${calls.length}`);
      assert.equal(calls.length, 2, `processed ${calls.length} times: ${JSON.stringify(calls)}`);
      assert.notEqual(calls[0]!.token, calls[1]!.token);
    } finally {
      await worker.close(true);
      await queue.close();
    }
  });
});
