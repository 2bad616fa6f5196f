import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { CLASSES, type CellKeys, type WorkflowClass } from "../../queues/keys.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import type { PoolDispatch } from "../../src/dispatch/policy/dispatchRule.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { capsArb, ModelPool, ScriptPool, TEST_SHARES, type Caps, type ModelRun, type ScriptRun } from "./pools.ts";

/**
 * One rule, two implementations that cannot drift: fast-check generates pools,
 * tenants and event sequences (admissions, dispatch calls, finishes, cap and
 * weight changes, pauses, time passing — up to 10 idle minutes) and runs each
 * through the pure rule (PoolDispatch) and through the real scripts on a real
 * Redis (admitWorkflow, dispatch, finishRun). After every step both must have
 * made the same dispatches (tenant, class, charge), hold the same ready sets
 * with bit-identical virtual times, and end with the same virtual times.
 *
 * What this covers on the script side, besides dispatch-18.lua's own steps:
 * includes/refreshTenant.lua against PoolDispatch.refresh (dirty tenants,
 * cap changes, due cooldown timers), includes/releaseSlot.lua against
 * PoolDispatch.release (every finish, checked by the ready sets right after
 * it), includes/wfq.lua against wfq.ts and includes/tenantCaps.lua inside
 * them. The scenarios both homes must also agree on are dispatch.cases.ts.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 1000);

type Event =
  | { kind: "enqueue"; t: number; cls: WorkflowClass; n: number }
  | { kind: "dispatch"; maxMoves: number }
  | { kind: "finish"; pick: number }
  | { kind: "advance"; ms: number }
  | { kind: "caps"; t: number; caps: Caps };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("enqueue" as const),
      t: fc.nat(),
      cls: fc.constantFrom<WorkflowClass>("A", "B", "C"),
      n: fc.integer({ min: 1, max: 4 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant("dispatch" as const), maxMoves: fc.integer({ min: 1, max: 6 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("finish" as const), pick: fc.nat() }), weight: 4 },
  {
    arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.oneof(fc.integer({ min: 0, max: 3_000 }), fc.constant(600_000)) }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant("caps" as const), t: fc.nat(), caps: capsArb }), weight: 1 },
);

const caseArb = fc.record({
  capacity: fc.integer({ min: 1, max: 8 }),
  tenants: fc.array(capsArb, { minLength: 1, maxLength: 4 }),
  events: fc.array(eventArb, { minLength: 5, maxLength: 40 }),
});

describe("dispatch rule: the pure rule and the script make the same decisions", () => {
  let p: Platform;
  let cell: CellKeys;
  const clock = new FakeClock(Date.UTC(2026, 11, 1));
  let caseNo = 0;

  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    cell = p.keys.cell("default");
  });
  after(() => p.close());

  async function readySets(pool: string): Promise<Record<WorkflowClass, [string, number][]>> {
    const out = {} as Record<WorkflowClass, [string, number][]>;
    for (const cls of CLASSES) {
      const flat = await p.redis.zrange(cell.ready(pool, cls), 0, -1, "WITHSCORES");
      const list: [string, number][] = [];
      for (let i = 0; i < flat.length; i += 2) list.push([/^\d+:(.+)$/.exec(flat[i]!)![1]!, Number(flat[i + 1])]);
      out[cls] = list.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    }
    return out;
  }

  const modelSets = (m: PoolDispatch) =>
    Object.fromEntries(CLASSES.map((cls) => [cls, [...m.ready[cls]].sort((a, b) => (a[0] < b[0] ? -1 : 1))])) as Record<
      WorkflowClass,
      [string, number][]
    >;

  async function runCase(c: { capacity: number; tenants: Caps[]; events: Event[] }): Promise<void> {
    const n = ++caseNo;
    const pool = `diff${n}`;
    const names = c.tenants.map((_, i) => `d${n}t${i}`);
    // Cell-wide sets from earlier cases would be refreshed here too: start them empty.
    await p.redis.del(cell.dirty, cell.timers);
    const model = new ModelPool(c.capacity, TEST_SHARES, clock, pool);
    const script = await ScriptPool.open(p.redis, cell, pool, c.capacity, TEST_SHARES, clock);
    for (const [i, caps] of c.tenants.entries()) {
      await model.setCaps(names[i]!, caps);
      await script.setCaps(names[i]!, caps);
    }
    const running: { model: ModelRun; script: ScriptRun }[] = [];
    const trace: string[] = [];
    for (const e of c.events) {
      trace.push(JSON.stringify(e));
      const at = `case ${n} after ${trace.join(" ")}`;
      if (e.kind === "enqueue") {
        const tenant = names[e.t % names.length]!;
        await model.enqueue(tenant, e.cls, e.n);
        await script.enqueue(tenant, e.cls, e.n);
      } else if (e.kind === "dispatch") {
        const want = await model.dispatch(e.maxMoves);
        const got = await script.dispatch(e.maxMoves);
        assert.deepEqual(
          got.map(({ tenant, cls, dispatchedAt, charge }) => ({ tenant, cls, dispatchedAt, charge })),
          want.map(({ tenant, cls, dispatchedAt, charge }) => ({ tenant, cls, dispatchedAt, charge })),
          at,
        );
        got.forEach((g, i) => running.push({ model: want[i]!, script: g }));
      } else if (e.kind === "finish") {
        if (!running.length) continue;
        const [run] = running.splice(e.pick % running.length, 1);
        await model.finish(run!.model);
        await script.finish(run!.script);
      } else if (e.kind === "advance") {
        clock.advance(e.ms);
      } else {
        const tenant = names[e.t % names.length]!;
        await model.setCaps(tenant, e.caps);
        await script.setCaps(tenant, e.caps);
      }
      if (e.kind === "dispatch" || e.kind === "finish") assert.deepEqual(await readySets(pool), modelSets(model.rule), `ready sets, ${at}`);
    }
    for (const cls of CLASSES) {
      for (const tenant of names) {
        const v = await p.redis.hget(cell.wfq(pool, cls), `v:${tenant}`);
        assert.equal(v === null ? undefined : Number(v), model.rule.tenants.get(tenant)!.wfq[cls].v, `v of ${tenant} ${cls}, case ${n}`);
        const c = await p.redis.hget(cell.wfq(pool, cls), `c:${tenant}`);
        assert.equal(
          Number(c ?? 0),
          model.rule.tenants.get(tenant)!.wfq[cls].inflight ?? 0,
          `in-flight charge of ${tenant} ${cls}, case ${n}`,
        );
      }
      const now = await p.redis.hget(cell.wfq(pool, cls), "now");
      assert.equal(Number(now ?? 0), model.rule.classes[cls].now ?? 0, `now of ${cls}, case ${n}`);
    }
  }

  it(`agree on ${RUNS} generated pools and event sequences`, { timeout: 240_000 }, async () => {
    await fc.assert(fc.asyncProperty(caseArb, runCase), { numRuns: RUNS });
    assert.equal(caseNo >= RUNS, true);
  });
});
