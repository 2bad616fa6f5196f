import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createKeys } from "../../queues/keys.ts";
import { ingressQueue } from "../../queues/names.ts";
import { WorkflowTypes } from "../../src/admission/workflowTypes.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { defineWorkflow } from "../../src/workflows/registry.ts";
import { startExecRole } from "../../workers/exec.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * Unknown workflow types are refused at admission (400 UNKNOWN_WORKFLOW_TYPE)
 * once exec workers advertise what they can run (their heartbeat writes the
 * cell's `types`), and accepted while none is live: the work waits for one.
 * A real exec worker in this process, a real Redis.
 */
describe("workflow types at admission", () => {
  let api: TestApi;
  let exec: Awaited<ReturnType<typeof startExecRole>> | undefined;
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional" } }, { FAIRLANE_HEARTBEAT_TTL_MS: "1000" });
  });
  after(async () => {
    await exec?.stop();
    await api.stop();
  });

  const post = (body: unknown) => http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body });
  const queued = async () => {
    const cell = api.platform.keys.cell("default");
    let n = 0;
    for (const c of ["A", "B", "C"] as const) n += await api.platform.redis.llen(cell.queueKey(ingressQueue("clinic", c), "wait"));
    return n;
  };
  /** Calls of one Redis command so far (INFO commandstats), to count round trips. */
  const calls = async (cmd: string) =>
    Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await api.platform.redis.info("commandstats"))?.[1] ?? 0);

  it("accepts any type while no exec worker is live in the cell: the work waits for a worker", async () => {
    const r = await post({ type: "not-deployed-yet" });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  });

  it("refuses a type no live exec worker can run with 400 UNKNOWN_WORKFLOW_TYPE, enqueuing nothing", async () => {
    exec = await startExecRole(api.platform, createLogger("test", "silent"));
    const types = await api.platform.redis.zrange(api.platform.keys.cell("default").types, 0, -1);
    assert.ok(types.includes("noop") && types.includes("prior-auth"), `advertised: ${types}`);
    await sleep(300); // past the cache's recheck interval
    const before = await queued();
    const r = await post({ type: "not-deployed-yet" });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, "UNKNOWN_WORKFLOW_TYPE");
    assert.equal(r.body.error.details.field, "type");
    assert.ok(r.body.error.details.known.includes("noop"), "it lists the types that can run");
    assert.equal((await post({ type: "noop" })).status, 202);
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.clinic,
      body: { workflows: [{ type: "noop" }, { type: "no-such-type" }] },
    });
    assert.equal(bulk.status, 202);
    assert.deepEqual(
      bulk.body.accepted.map((a: { index: number }) => a.index),
      [0],
    );
    assert.deepEqual(
      bulk.body.rejected.map((x: { index: number; error: { code: string } }) => [x.index, x.error.code]),
      [[1, "UNKNOWN_WORKFLOW_TYPE"]],
    );
    assert.equal(await queued(), before + 2);
  });

  it("checks types from a cache: no Redis round trip per request in steady state", async () => {
    await post({ type: "noop" });
    const before = await calls("zrangebyscore");
    for (let i = 0; i < 40; i++) assert.equal((await post({ type: "noop" })).status, 202);
    const lookups = (await calls("zrangebyscore")) - before;
    assert.ok(lookups <= 2, `${lookups} lookups for 40 requests`);
  });

  it("accepts a type a live worker starts advertising, within a heartbeat", async () => {
    defineWorkflow("registered-later", async () => ({ ok: true }));
    const until = Date.now() + 3_000;
    let status = 0;
    while (Date.now() < until && (status = (await post({ type: "registered-later" })).status) !== 202) await sleep(100);
    assert.equal(status, 202);
  });

  it("accepts every type again once the cell's last exec worker is gone (its advertisement expires)", async () => {
    await exec!.stop();
    exec = undefined;
    await sleep(1_300); // the heartbeat TTL, then past the cache
    const r = await post({ type: "still-not-deployed" });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  });
});

describe("the workflow types cache past its ttl", () => {
  it("answers for a type it holds while its lookup refreshes it, and the next request sees the refresh", async () => {
    const redis = connect(await testRedisUrl());
    try {
      const keys = createKeys(freshPrefix());
      const clock = new FakeClock(Date.UTC(2026, 11, 5));
      const types = new WorkflowTypes(redis, keys, clock, { ttlMs: 1_000, recheckMs: 250 });
      const key = keys.cell("default").types;
      const until = clock.now() + 60_000;
      await redis.zadd(key, until, "kept", until, "dropped");
      assert.deepEqual(await types.check("default", "dropped"), { ok: true });
      await redis.zrem(key, "dropped"); // its last worker went away before its advertisement ran out
      clock.advance(1_000);
      assert.deepEqual(await types.check("default", "dropped"), { ok: true }, "from the cache: the request did not wait for the lookup");
      await redis.ping(); // the refresh went first on the same connection: its reply is in
      assert.deepEqual(await types.check("default", "dropped"), { ok: false, known: ["kept"] }, "the refreshed cache");
    } finally {
      redis.disconnect();
    }
  });
});
