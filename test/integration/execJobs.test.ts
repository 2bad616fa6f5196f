import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { execQueue } from "../../queues/names.ts";
import { BUCKET_MS, bucketStart } from "../../queues/usageEvents.ts";
import { startDispatcherRole } from "../../workers/dispatcher.ts";
import { startExecRole } from "../../workers/exec.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { defineWorkflow } from "../../src/workflows/registry.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * The exec role on a real Redis, through HTTP: a dispatched job keeps the opts admission wrote ("{}": the
 * dispatch renames it unchanged), so what BullMQ keeps of it once done is the exec Worker's own options
 * (nothing of a completed job, a failed one for a day); and each first start's enqueue->start latency
 * reaches the usage-event buckets from the exec process's tally (queues/latencyTally.ts), not from the
 * start's script.
 */
defineWorkflow("exec-jobs-ok", async () => ({ ok: true }));

describe("exec jobs: renamed unchanged, kept as the exec Worker says, first starts counted", () => {
  let api: TestApi;
  let queue: Queue;
  let stopRoles: (() => Promise<void>)[] = [];
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional" } }, { FAIRLANE_HEARTBEAT_TTL_MS: "1000" });
    const log = createLogger("test", "silent");
    const exec = await startExecRole(api.platform, log);
    const dispatcher = await startDispatcherRole(api.platform, log);
    stopRoles = [dispatcher.stop, exec.stop];
    queue = new Queue(execQueue("default"), { connection: api.platform.redis, prefix: api.platform.keys.cell("default").bullPrefix });
  });
  after(async () => {
    for (const stop of stopRoles) await stop();
    await queue.close();
    await api.stop();
  });

  it("removes completed exec jobs and counts each first start once in its tenant's latency histogram", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "exec-jobs-ok", class: "B" } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    const { redis, keys } = api.platform;
    const cell = keys.cell("default");
    const records = async () => Promise.all(ids.map((id) => redis.hmget(cell.workflow(id), "state", "startedAt")));
    for (let i = 0; i < 400 && (await records()).some(([s]) => s !== "completed"); i++) await sleep(25);
    const done = await records();
    assert.deepEqual(
      done.map(([s]) => s),
      ids.map(() => "completed"),
    );

    const counts = await queue.getJobCounts("completed", "failed", "active", "wait");
    assert.deepEqual(counts, { completed: 0, failed: 0, active: 0, wait: 0 }, "a completed exec job is not kept");
    for (const id of ids) assert.equal(await redis.exists(cell.jobKey(execQueue("default"), id)), 0, `${id}'s exec job hash is gone`);

    // The exec process flushes its counts with its heartbeat (every 250 ms here; a bucket holds 10 s): each first start once.
    // The bucket of each record's startedAt, or the next one (the tally's instant is the handler's start, a few ms on).
    const buckets = [...new Set(done.flatMap(([, at]) => [bucketStart(Number(at)), bucketStart(Number(at)) + BUCKET_MS]))];
    const counted = async () => {
      let n = 0;
      for (const b of buckets) {
        const h = await redis.hgetall(cell.usageEvents(b));
        for (const [f, v] of Object.entries(h)) if (f.startsWith("clinic|l")) n += Number(v);
      }
      return n;
    };
    for (let i = 0; i < 200 && (await counted()) < ids.length; i++) await sleep(25);
    assert.equal(await counted(), ids.length);
  });
});
