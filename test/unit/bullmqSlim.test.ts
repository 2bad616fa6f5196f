import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { slimBullmq } from "../../queues/lua/bullmqSlim.ts";

const require = createRequire(import.meta.url);
const bullmq = (file: string, name: "moveToActive" | "moveToFinished") =>
  (require(`bullmq/dist/cjs/scripts/${file}`) as Record<string, { content: string }>)[name]!.content;

/**
 * The exec consumer's edits of BullMQ's scripts (queues/lua/bullmqSlim.ts) against the installed BullMQ:
 * what they take out, what they keep (the integration test test/integration/execConsumer.test.ts runs
 * them), and that a BullMQ whose scripts differ is refused at load rather than run half edited.
 */
describe("BullMQ's fetch and finish without an exec queue's unused steps", () => {
  const finish = bullmq("moveToFinished-14.js", "moveToFinished");
  const fetch = bullmq("moveToActive-11.js", "moveToActive");

  // Its other XADDs are in functions an exec job never reaches: promoting delayed jobs (no longer called),
  // parents and deduplication (an exec job has neither).
  const events = ['"event", ARGV[5]', '"event", "active"', '"event", "retries-exhausted"', '"event", "drained"'];

  it("takes out the events a fetch and a finish write, the delayed and prioritized jobs' steps and the flow checks", () => {
    for (const [name, content] of [
      ["moveToFinished", finish],
      ["moveToActive", fetch],
    ] as const) {
      const slim = slimBullmq(name, content);
      assert.ok(/^\s*promoteDelayedJobs\(/m.test(content), "BullMQ's own script promotes delayed jobs");
      assert.ok(!/^\s*promoteDelayedJobs\(/m.test(slim), `${name} still promotes delayed jobs`);
      // A fetch that finds the wait list empty: no prioritized job to pop, no delayed job's time to read.
      for (const step of ['rcall("ZPOPMIN", priorityKey)', 'rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")']) {
        assert.ok(content.includes(step), `BullMQ's own ${name} holds ${step}`);
        assert.ok(!slim.includes(step), `${name} still runs ${step}`);
      }
      for (const e of events) assert.ok(!slim.includes(e), `${name} still writes ${e}`);
    }
    for (const e of events) assert.ok(finish.includes(e), `BullMQ's own moveToFinished writes ${e}`);
    const slim = slimBullmq("moveToFinished", finish);
    assert.ok(!/^\s*trimEvents\(/m.test(slim));
    assert.ok(!slim.includes(':dependencies") ~= 0'));
    assert.ok(!slim.includes('"parentKey", "parent", "deid")'));
    assert.ok(!slim.includes("jobKey .. ':dependencies'"), "a removed exec job has no children's keys");
    assert.ok(/if maxCount ~= 0 then attemptsMade = rcall\("HINCRBY"/.test(slim), "a removed job's attempts are not counted");
    for (const [name, content] of [
      ["moveToFinished", finish],
      ["moveToActive", fetch],
    ] as const)
      assert.ok(!slimBullmq(name, content).includes("cmsgpack"), `${name} still reads msgpack (execConsume.ts sends JSON)`);
  });

  it("keeps the lock, the lists and the job's own fields BullMQ's Worker and Bull Board rely on", () => {
    const slim = slimBullmq("moveToFinished", finish);
    for (const kept of [
      "removeLock(jobIdKey",
      'rcall("LREM", KEYS[2], -1, jobId)',
      'rcall("ZADD", targetSet, timestamp, jobId)',
      '"finishedOn", timestamp',
      "removeJobKeys(jobIdKey)",
      'rcall("RPOPLPUSH", waitKey, activeKey)',
      "rcall(\"SET\", lockKey, opts['token'], \"PX\", opts['lockDuration'])",
      'rcall("HINCRBY", jobKey, "ats", 1)',
      "addBaseMarkerIfNeeded(markerKey, false)",
      "getQueueMetadata(metaKey, activeKey, waitKey)",
    ])
      assert.ok(slim.includes(kept), `moveToFinished lost ${kept}`);
  });

  it("refuses a BullMQ whose script no longer holds a step it takes out, naming the step", () => {
    const drifted = finish.replace('"event", "active", "jobId", jobId', '"event", "active", "id", jobId');
    assert.throws(
      () => slimBullmq("moveToFinished", drifted),
      /moveToFinished script has changed: the step "no "active" event" occurs 0 times/,
    );
  });
});
