import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { cancelWorkflow } from "../../queues/lua/cancelWorkflow.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { expireQueued } from "../../queues/lua/expireQueued.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { parkRun, recoverParked, resolveParked } from "../../queues/lua/parking.ts";
import { requeueRun } from "../../queues/lua/runLifecycle.ts";
import { CLASSES, type CellKeys } from "../../queues/keys.ts";
import { execQueue, ingressQueue } from "../../queues/names.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { mulberry32 } from "../../src/lib/random.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * A tenant's queued payload bytes (`qbytes:<t>`, bounded by maxQueueBytes)
 * stay exactly the bytes of the workflows in its ingress queues through
 * every way in and out: admission, dispatch, expiry at dispatch and by the
 * expiry sweep, parking at dispatch, cancel, preemption's requeue, parking
 * from a run, recovery and an operator's requeue. Script by script on a real
 * Redis with a fake clock, checked against the queues themselves.
 */
describe("queued payload bytes", () => {
  let p: Platform;
  let cell: CellKeys;
  const clock = new FakeClock(Date.now());
  const POOL = "default";
  const run = () => dispatch(p.redis, cell, POOL, clock.now(), TEST_DISPATCH_OPTS);

  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    const big = { mca: 100_000, mcaUrgent: 100_000, maxQueueDepth: 1_000_000 };
    await p.registry.seed(
      new Map([
        ["clinic", { tier: "professional" as const, ...big }],
        ["other", { tier: "professional" as const, ...big }],
      ]),
      true,
    );
    await new TenantSync(p.redis, p.keys).sync("default", p.registry.list());
    cell = p.keys.cell("default");
    await heartbeat(p.redis, cell, POOL, "fake", 100_000, clock.now(), clock.now() + 3_600_000_000);
    await p.redis.hset(cell.workflowDeps, "needs-fhir", "fhir-gateway");
  });
  after(() => p.close());

  const counter = async (tenant: string) => Number((await p.redis.get(cell.queuedBytes(tenant))) ?? 0);
  /** What the counter must say: the `bytes` of every workflow in the tenant's ingress wait lists. */
  async function inQueues(tenant: string): Promise<number> {
    let sum = 0;
    for (const c of CLASSES)
      for (const id of await p.redis.lrange(cell.queueKey(ingressQueue(tenant, c), "wait"), 0, -1)) {
        const [state, bytes] = await p.redis.hmget(cell.workflow(id), "state", "bytes");
        assert.equal(state, "queued", `${id} is in ingress`);
        sum += Number(bytes ?? 0);
      }
    return sum;
  }
  const admit = async (tenant: string, items: Record<string, unknown>[]) => {
    const r = await p.admission.admitBulk(tenant, items, "0".repeat(32));
    assert.deepEqual(r.rejected, []);
    return r.accepted.map((a) => a.id);
  };
  /** Hands an exec job to "a worker" (its lock), as BullMQ would before the run could yield or park. */
  const lock = async (id: string) => {
    await p.redis.set(`${cell.jobKey(execQueue(POOL), id)}:lock`, "tok");
    return "tok";
  };

  it("counts each payload's JSON bytes at admission and keeps them in the record", async () => {
    const payload = { note: "héllo wörld", n: [1, 2, 3] };
    const [id] = await admit("clinic", [{ type: "noop", payload }]);
    const bytes = Buffer.byteLength(JSON.stringify(payload));
    assert.equal(await p.redis.hget(cell.workflow(id!), "bytes"), String(bytes));
    assert.equal(await counter("clinic"), bytes);
    assert.equal(await counter("other"), 0, "per tenant");
    assert.equal(await cancelWorkflow(p.redis, cell, id!, "clinic", clock.now(), { recordTtlSec: 60 }).then((o) => o.kind), "cancelled");
    assert.equal(await counter("clinic"), 0);
    assert.equal(await p.redis.exists(cell.queuedBytes("clinic")), 0, "a counter back at zero is removed");
  });

  it("follows every way in and out of ingress, in a seeded random walk", async () => {
    const random = mulberry32(1414);
    const pick = <T>(xs: T[]): T | undefined => (xs.length ? xs[Math.floor(random() * xs.length)] : undefined);
    const ids: string[] = [];
    const byState = async (state: string) => {
      const states = await Promise.all(ids.map((id) => p.redis.hget(cell.workflow(id), "state")));
      return ids.filter((_, i) => states[i] === state);
    };
    const paths = {
      moved: 0,
      expiredAtDispatch: 0,
      parkedAtDispatch: 0,
      expiredBySweep: 0,
      requeued: 0,
      parkedFromRun: 0,
      recovered: 0,
      cancelledQueued: 0,
    };
    const ops: Record<string, () => Promise<unknown>> = {
      admit: async () => {
        const items = Array.from({ length: 1 + Math.floor(random() * 4) }, () => ({
          type: random() < 0.3 ? "needs-fhir" : "noop",
          class: pick(["A", "B", "C"]),
          payload: random() < 0.1 ? {} : { blob: "x".repeat(Math.floor(random() * 3_000)) },
          ...(random() < 0.3 ? { deadlineAt: new Date(clock.now() + 1 + Math.floor(random() * 5_000)).toISOString() } : {}),
        }));
        ids.push(...(await admit(random() < 0.8 ? "clinic" : "other", items)));
      },
      dispatch: async () => {
        const r = await run();
        paths.moved += r.moved;
        paths.expiredAtDispatch += r.expired;
        paths.parkedAtDispatch += r.parked;
      },
      outage: () =>
        p.redis.hset(cell.health("fhir-gateway"), {
          state: random() < 0.5 ? "down" : "healthy",
          since: clock.now(),
          detail: "probe",
          source: "probe",
        }),
      cancel: async () => {
        const id = pick(await byState("queued"));
        if (
          id &&
          (await cancelWorkflow(p.redis, cell, id, (await p.redis.hget(cell.workflow(id), "tenant"))!, clock.now(), { recordTtlSec: 600 }))
            .kind === "cancelled"
        )
          paths.cancelledQueued++;
      },
      requeue: async () => {
        const id = pick(await byState("dispatched"));
        if (id)
          assert.equal(
            await requeueRun(p.redis, cell, POOL, { id, now: clock.now(), token: await lock(id), reason: "preempted", started: false }),
            "ok",
          );
        if (id) paths.requeued++;
      },
      park: async () => {
        const id = pick(await byState("dispatched"));
        if (id)
          assert.equal(
            await parkRun(p.redis, cell, POOL, {
              id,
              now: clock.now(),
              token: await lock(id),
              dependency: "fhir-gateway",
              reason: "fhir-gateway is down",
              started: false,
            }),
            "ok",
          );
        if (id) paths.parkedFromRun++;
      },
      recover: async () => {
        const r = await recoverParked(p.redis, cell, "fhir-gateway", {
          now: clock.now(),
          max: 1 + Math.floor(random() * 5),
          recordTtlSec: 600,
          expireOnly: random() < 0.3,
        });
        paths.recovered += r.requeued;
      },
      operator: async () => {
        const id = pick(await byState("parked"));
        if (
          id &&
          (await resolveParked(p.redis, cell, id, {
            now: clock.now(),
            action: random() < 0.7 ? "requeue" : "fail",
            recordTtlSec: 600,
            message: "by alice",
          })) === "requeued"
        )
          paths.recovered++;
      },
      expire: async () => {
        paths.expiredBySweep += await expireQueued(p.redis, cell, clock.now(), 600);
      },
      time: async () => clock.advance(Math.floor(random() * 3_000)),
    };
    const names = Object.keys(ops);
    for (let step = 0; step < 1200; step++) {
      const name = names[Math.floor(random() * names.length)]!;
      await ops[name]!();
      for (const t of ["clinic", "other"]) assert.equal(await counter(t), await inQueues(t), `${t} after step ${step} (${name})`);
    }
    // The walk went every way in and out of ingress, several times.
    for (const [path, n] of Object.entries(paths)) assert.ok(n >= 3, `${path}: ${n} (${JSON.stringify(paths)})`);
    // Drained, every counter is back at zero.
    for (const id of ids)
      await cancelWorkflow(p.redis, cell, id, (await p.redis.hget(cell.workflow(id), "tenant"))!, clock.now(), { recordTtlSec: 600 });
    for (const t of ["clinic", "other"]) assert.equal(await counter(t), 0, t);
  });
});
