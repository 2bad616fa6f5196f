import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createRedisBackend } from "bullmq";
import { Redis } from "ioredis";
import { unpack } from "msgpackr";
import { finishArgsAsJson } from "../../queues/lua/execConsume.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

type ArgsOf = (...a: unknown[]) => unknown[];

/**
 * The exec consumer's finish arguments (queues/lua/execConsume.ts finishArgsAsJson) against the installed
 * BullMQ's own moveToFinishedArgs, built by two backends of the same queue from the same inputs: the same
 * keys and arguments, but for its opts and fields to update, which are JSON holding what BullMQ's msgpack
 * holds once its nils are left out (what the script's cjson.decode then reads: bullmqSlim.ts). A BullMQ
 * whose finish arguments change fails here, naming the case.
 */
describe("a finish's arguments as JSON, against BullMQ's own", () => {
  let redis: Redis;
  before(async () => {
    redis = new Redis(await testRedisUrl(), { maxRetriesPerRequest: null });
  });
  after(async () => {
    await redis.quit();
  });

  const withoutNils = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(withoutNils);
    if (v === null || typeof v !== "object") return v;
    return Object.fromEntries(Object.entries(v).flatMap(([k, x]) => (x === null ? [] : [[k, withoutNils(x)]])));
  };

  const cases = [
    { name: "completed, removed at once, fetching the next", workerOpts: { removeOnComplete: true }, args: ["completed", true, undefined] },
    {
      name: "completed, kept by count",
      workerOpts: { removeOnComplete: { count: 10 }, lockDuration: 7_000 },
      args: ["completed", undefined, undefined],
    },
    {
      name: "failed with fields to update, not fetching",
      workerOpts: { removeOnFail: { age: 60, count: 5 }, metrics: { maxDataPoints: 100 } },
      args: ["failed", false, { failedReason: "boom", stacktrace: '["at x"]', tm: undefined }],
    },
  ] as const;

  for (const c of cases) {
    it(c.name, () => {
      const opts = { connection: redis, prefix: freshPrefix(), ...c.workerOpts };
      const theirs = createRedisBackend("exec.default", opts) as unknown as { moveToFinishedArgs: ArgsOf };
      const ours = createRedisBackend("exec.default", opts) as unknown as { moveToFinishedArgs: ArgsOf };
      finishArgsAsJson(ours);
      const [target, fetchNext, fields] = c.args;
      const job = { id: "wf1", opts: { attempts: 1, failParentOnFailure: true } };
      const inputs = [job, target === "completed" ? '{"ok":1}' : "boom", target === "completed" ? "returnvalue" : "failedReason"];
      const call = (b: { moveToFinishedArgs: ArgsOf }) =>
        b.moveToFinishedArgs(...inputs, undefined, target, "tok:1", 1_700_000_000_000, fetchNext, fields);
      const [a, b] = [call(theirs), call(ours)];
      assert.equal(b.length, a.length);
      // 14 keys, then 7 arguments, the opts, the fields to update.
      assert.deepEqual(b.slice(0, 21), a.slice(0, 21));
      assert.equal(typeof b[21], "string");
      assert.deepEqual(JSON.parse(b[21] as string), withoutNils(unpack(a[21] as Buffer)));
      if (a[22] === undefined) assert.equal(b[22], undefined);
      else assert.deepEqual(JSON.parse(b[22] as string), withoutNils(unpack(a[22] as Buffer)));
    });
  }
});
