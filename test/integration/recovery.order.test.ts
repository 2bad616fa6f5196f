import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import type { CellKeys } from "../../queues/keys.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { recoverParked, resolveParked } from "../../queues/lua/parking.ts";
import { finishRun } from "../../queues/lua/runLifecycle.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * Where recovered workflows go back in line, seen from the dispatch side: one
 * slot, one dispatch at a time, each run finished before the next dispatch, so
 * the order the dispatch script moves workflows is the order they would start.
 * Real Redis, fake clock; a "needs-fhir" workflow type declares fhir-gateway,
 * which is marked down to park them and cleared before they come back.
 */
describe("recovered workflows back in line", () => {
  let p: Platform;
  let cell: CellKeys;
  const clock = new FakeClock(Date.now());
  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    cell = p.keys.cell("default");
    const tenants = ["er", "ward", "lab"].map((t) => [t, { tier: "enterprise" as const, mca: 20, mcaUrgent: 10 }] as const);
    await p.registry.seed(new Map(tenants), true);
    await new TenantSync(p.redis, p.keys).sync("default", p.registry.list());
    await heartbeat(p.redis, cell, "default", "one-slot", 1, clock.now(), clock.now() + 3_600_000);
    await p.redis.hset(cell.workflowDeps, "needs-fhir", "fhir-gateway");
  });
  after(() => p.close());
  beforeEach(() => clock.advance(1_000));

  /** Admits one workflow (1 ms of fake time apart, so admission times differ). */
  async function admit(tenant: string, cls: "A" | "B" | "C", type = "noop"): Promise<string> {
    clock.advance(1);
    const r = await p.admission.admitBulk(tenant, [{ type, class: cls }], "0".repeat(32));
    assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected));
    return r.accepted[0]!.id;
  }

  /** Admits a needs-fhir workflow and parks it at dispatch (fhir-gateway down), each at its own time. */
  async function admitParked(tenant: string, cls: "A" | "B" | "C"): Promise<string> {
    await p.redis.hset(cell.health("fhir-gateway"), { state: "down", since: clock.now(), detail: "probe", source: "probe" });
    const id = await admit(tenant, cls, "needs-fhir");
    const r = await dispatch(p.redis, cell, "default", clock.now(), TEST_DISPATCH_OPTS);
    assert.deepEqual([r.parked, r.moved], [1, 0]);
    await p.redis.del(cell.health("fhir-gateway"));
    return id;
  }

  const recover = (max: number) =>
    recoverParked(p.redis, cell, "fhir-gateway", { now: clock.now(), max, recordTtlSec: 60, expireOnly: false });

  /** Dispatches into the one slot until nothing moves, finishing each run first: the start order. */
  async function startOrder(ids: string[]): Promise<string[]> {
    const order: string[] = [];
    for (let i = 0; i <= ids.length; i++) {
      clock.advance(1);
      const r = await dispatch(p.redis, cell, "default", clock.now(), { ...TEST_DISPATCH_OPTS, maxMoves: 1 });
      if (r.moved === 0) break;
      const states = await Promise.all(ids.map((id) => p.redis.hget(cell.workflow(id), "state")));
      const started = ids.filter((_, k) => states[k] === "dispatched");
      assert.equal(started.length, 1, `one dispatched at a time: ${started}`);
      order.push(started[0]!);
      assert.equal(
        await finishRun(p.redis, cell, { id: started[0]!, now: clock.now(), runId: "", state: "completed", recordTtlSec: 60 }),
        "ok",
      );
    }
    return order;
  }

  it("puts recovered Class A in admission order ahead of fresh Class A: a later wave does not jump an earlier one, nor an operator's requeue", async () => {
    const parked: string[] = [];
    for (let i = 0; i < 5; i++) parked.push(await admitParked("er", "A"));
    const fresh = [await admit("er", "A"), await admit("er", "A")];
    assert.deepEqual([(await recover(2)).requeued, (await recover(2)).requeued], [2, 2], "two waves");
    assert.equal(
      await resolveParked(p.redis, cell, parked[4]!, { now: clock.now(), action: "requeue", recordTtlSec: 60, message: "" }),
      "requeued",
    );
    const names = new Map([
      ...parked.map((id, i) => [id, `parked${i + 1}`] as const),
      ...fresh.map((id, i) => [id, `fresh${i + 1}`] as const),
    ]);
    const order = (await startOrder([...parked, ...fresh])).map((id) => names.get(id));
    assert.deepEqual(order, ["parked1", "parked2", "parked3", "parked4", "parked5", "fresh1", "fresh2"]);
  });

  it("starts fresh Class A before recovered Class B and C, even when those were admitted earlier and come back first in line", async () => {
    const parked = [await admitParked("lab", "C"), await admitParked("lab", "C"), await admitParked("ward", "B")];
    assert.equal((await recover(10)).requeued, 3);
    const fresh = [await admit("er", "A"), await admit("lab", "A")];
    const order = await startOrder([...parked, ...fresh]);
    assert.deepEqual(order.slice(0, 2).sort(), [...fresh].sort(), `fresh Class A first: ${order}`);
    assert.deepEqual(new Set(order.slice(2)), new Set(parked), "then the recovered ones");
  });

  it("does not let one tenant's recovered Class A hold back another tenant's fresh Class A", async () => {
    const parked: string[] = [];
    for (let i = 0; i < 4; i++) parked.push(await admitParked("er", "A"));
    assert.equal((await recover(10)).requeued, 4);
    const fresh = [await admit("ward", "A"), await admit("ward", "A")];
    const order = await startOrder([...parked, ...fresh]);
    assert.ok(
      order.indexOf(fresh[0]!) <= 1,
      `weighted fair queuing between tenants: ${order.map((id) => (fresh.includes(id) ? "fresh" : "recovered"))}`,
    );
    assert.deepEqual(
      order.filter((id) => parked.includes(id)),
      parked,
      "the recovered keep their admission order",
    );
  });
});
