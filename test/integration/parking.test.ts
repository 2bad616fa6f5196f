import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { cancelWorkflow } from "../../queues/lua/cancelWorkflow.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { recoverParked, resolveParked } from "../../queues/lua/parking.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/** Parking at dispatch and recovery, script by script, on a real Redis with a fake clock. */
describe("parking and recovery scripts", () => {
  let p: Platform;
  const clock = new FakeClock(Date.now());
  const run = () => dispatch(p.redis, p.keys.cell("default"), "default", clock.now(), TEST_DISPATCH_OPTS);
  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    await p.registry.seed(new Map([["clinic", { tier: "professional" as const, mca: 20 }]]), true);
    await new TenantSync(p.redis, p.keys).sync("default", p.registry.list());
    const cell = p.keys.cell("default");
    await heartbeat(p.redis, cell, "default", "fake", 20, clock.now(), clock.now() + 3_600_000);
    await p.redis.hset(cell.workflowDeps, "needs-fhir", "fhir-gateway");
  });
  after(() => p.close());

  it("parks workflows whose declared dependency is down instead of starting them; others still flow", async () => {
    const cell = p.keys.cell("default");
    await p.redis.hset(cell.health("fhir-gateway"), { state: "down", since: clock.now(), detail: "probe", source: "probe" });
    const blocked = await p.admission.admitBulk(
      "clinic",
      [{ type: "needs-fhir" }, { type: "needs-fhir" }, { type: "needs-fhir" }],
      "0".repeat(32),
    );
    clock.advance(10);
    const other = await p.admission.admitBulk("clinic", [{ type: "noop" }], "0".repeat(32));
    const r = await run();
    assert.equal(r.parked, 3);
    assert.equal(r.moved, 1, "the tenant's other work still flows");
    const rec = await p.redis.hgetall(cell.workflow(blocked.accepted[0]!.id));
    assert.deepEqual([rec.state, rec.parkedDep], ["parked", "fhir-gateway"]);
    assert.match(rec.parkReason!, /fhir-gateway is down/);
    assert.equal(await p.redis.llen(cell.queueKey("parked", "wait")), 3, "visible in the parked queue (Bull Board)");
    assert.equal(Number(await p.redis.get(cell.queued)), 0);
    assert.ok(other.accepted.length === 1);
  });

  it("requeues parked workflows in waves, oldest first, in line by admission time in their ingress queue", async () => {
    const cell = p.keys.cell("default");
    const oldest = await p.redis.zrange(cell.parked("fhir-gateway"), 0, -1);
    const w1 = await recoverParked(p.redis, cell, "fhir-gateway", { now: clock.now(), max: 2, recordTtlSec: 60, expireOnly: false });
    assert.deepEqual([w1.requeued, w1.expired], [2, 0]);
    assert.equal(w1.parkedMs.length, 2, "how long each was parked, for the time-parked histogram");
    const ingress = await p.redis.lrange(cell.queueKey("ingress.clinic.B", "wait"), 0, -1);
    assert.deepEqual(
      ingress.slice(-2).reverse(),
      oldest.slice(0, 2),
      "oldest first, here at the head (the tail is taken next); order against other work: recovery.order.test.ts",
    );
    assert.equal(await p.redis.hget(cell.workflow(oldest[0]!), "state"), "queued");
    const again = await recoverParked(p.redis, cell, "fhir-gateway", { now: clock.now(), max: 10, recordTtlSec: 60, expireOnly: false });
    assert.deepEqual([again.requeued, again.expired], [1, 0], "nothing is requeued twice");
    assert.equal(await p.redis.zcard(cell.parked("fhir-gateway")), 0);
  });

  it("fails a workflow whose deadline passed while parked, saying so", async () => {
    const cell = p.keys.cell("default");
    await p.redis.del(cell.queueKey("ingress.clinic.B", "wait"));
    const [wf] = (
      await p.admission.admitBulk(
        "clinic",
        [{ type: "needs-fhir", deadlineAt: new Date(clock.now() + 5_000).toISOString() }],
        "0".repeat(32),
      )
    ).accepted;
    assert.equal((await run()).parked, 1);
    clock.advance(6_000);
    const r = await recoverParked(p.redis, cell, "fhir-gateway", { now: clock.now(), max: 10, recordTtlSec: 60, expireOnly: true });
    assert.deepEqual([r.requeued, r.expired], [0, 1]);
    const rec = await p.redis.hgetall(cell.workflow(wf!.id));
    assert.equal(rec.errorCode, "DEADLINE_EXCEEDED");
    assert.match(rec.errorMessage!, /while the workflow was parked waiting for fhir-gateway/);
  });

  it("lets an operator requeue or fail one parked workflow", async () => {
    const cell = p.keys.cell("default");
    const ids = (await p.admission.admitBulk("clinic", [{ type: "needs-fhir" }, { type: "needs-fhir" }], "0".repeat(32))).accepted.map(
      (a) => a.id,
    );
    await run();
    assert.equal(
      await resolveParked(p.redis, cell, ids[0]!, { now: clock.now(), action: "requeue", recordTtlSec: 60, message: "" }),
      "requeued",
    );
    assert.equal(
      await resolveParked(p.redis, cell, ids[1]!, { now: clock.now(), action: "fail", recordTtlSec: 60, message: "failed by alice" }),
      "failed",
    );
    assert.equal(
      await resolveParked(p.redis, cell, ids[1]!, { now: clock.now(), action: "requeue", recordTtlSec: 60, message: "" }),
      "skipped",
    );
    assert.equal(await p.redis.hget(cell.workflow(ids[1]!), "errorCode"), "FAILED_BY_OPERATOR");
    const left = await p.redis.zrange(cell.parked("fhir-gateway"), 0, -1);
    assert.ok(!left.includes(ids[0]!) && !left.includes(ids[1]!), `still indexed: ${left}`);
  });
  it("cancels a parked workflow: out of the parked queue and its dependency's index, its record expiring", async () => {
    const cell = p.keys.cell("default");
    await p.redis.hset(cell.health("fhir-gateway"), { state: "down", since: clock.now(), detail: "probe", source: "probe" });
    const [a] = (await p.admission.admitBulk("clinic", [{ type: "needs-fhir" }], "0".repeat(32))).accepted;
    await run();
    assert.equal(await p.redis.hget(cell.workflow(a!.id), "state"), "parked");
    const out = await cancelWorkflow(p.redis, cell, a!.id, "clinic", clock.now(), { recordTtlSec: 60 });
    assert.equal(out.kind, "cancelled");
    assert.equal(await p.redis.zscore(cell.parked("fhir-gateway"), a!.id), null, "gone from the dependency's index");
    assert.equal((await p.redis.lrange(cell.queueKey("parked", "wait"), 0, -1)).includes(a!.id), false, "gone from the parked queue");
    const ttl = await p.redis.ttl(cell.workflow(a!.id));
    assert.ok(ttl > 0 && ttl <= 60, `record TTL ${ttl}`);
  });
});
