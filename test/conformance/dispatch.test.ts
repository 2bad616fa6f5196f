import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { createKeys, type CellKeys, type WorkflowClass } from "../../queues/keys.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { chooseClass, type PoolState } from "../../src/dispatch/policy/dispatchRule.ts";
import { poolCapacity } from "../../src/dispatch/policy/explain.ts";
import type { ShareOptions } from "../../src/dispatch/policy/shares.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { CAPACITY_CASES, CASE_CAPS, CLASS_CASES, DISPATCH_CASES, type DispatchCase } from "./dispatch.cases.ts";
import { ModelPool, ScriptPool, scriptOptions, TEST_SHARES, type PoolDriver, type Started } from "./pools.ts";

/**
 * The dispatch rule's two homes, the pure rule (chooseClass, PoolDispatch)
 * and dispatch-18.lua, on the tables of dispatch.cases.ts: the class a free
 * slot goes to, a pool's capacity (restated by explain.ts's poolCapacity),
 * then scenarios played on both, each asserting what its dispatch calls start
 * and that both started the same workflows in the same order. fast-check
 * generates pool counts and shares for the class choice and workers for the
 * capacity; generated event sequences are dispatch.differential.test.ts.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 300);
const T0 = Date.UTC(2026, 11, 1);

/** What both homes report of a start; the handle to finish it differs. */
const startOf = ({ tenant, cls, dispatchedAt, charge }: Started): Started => ({ tenant, cls, dispatchedAt, charge });

/** Plays a scenario's steps on one home; returns every start in order. `side` names the home in a failure. */
async function play<R extends Started>(d: PoolDriver<R>, c: DispatchCase, clock: FakeClock, side: string): Promise<Started[]> {
  const caps = new Map(Object.entries(c.tenants).map(([t, o]) => [t, { ...CASE_CAPS, ...o }]));
  for (const [t, cp] of caps) await d.setCaps(t, cp);
  const trace: Started[] = [];
  let running: { run: R; endsAt: number }[] = [];
  const tallies: Record<string, Record<string, number>> = {};
  for (const [i, step] of c.steps.entries()) {
    try {
      if ("admit" in step) await d.enqueue(step.admit, step.cls ?? "B", step.n);
      else if ("dispatch" in step) {
        const started = await d.dispatch(step.maxMoves ?? 100);
        trace.push(...started.map(startOf));
        running.push(...started.map((run) => ({ run, endsAt: Infinity })));
        const want = step.dispatch;
        assert.equal(started.length, want.moved, `moved ${JSON.stringify(started.map((s) => s.tenant))}`);
        if (want.tenants !== undefined) assert.equal(new Set(started.map((s) => s.tenant)).size, want.tenants, "tenants served");
        for (const [t, n] of Object.entries(want.of ?? {})) assert.equal(started.filter((s) => s.tenant === t).length, n, `${t}'s starts`);
      } else if ("finishAll" in step) {
        for (const r of running) await d.finish(r.run);
        running = [];
      } else if ("advance" in step) clock.advance(step.advance);
      else if ("caps" in step) {
        const next = { ...caps.get(step.caps)!, ...step.set };
        caps.set(step.caps, next);
        await d.setCaps(step.caps, next);
      } else if ("ticks" in step) {
        const tally = (tallies[step.tally] ??= {});
        const runMs = (t: string) => (typeof step.runMs === "number" ? step.runMs : step.runMs[t]!);
        const tickMs = step.tickMs ?? (step.runMs as number);
        for (let k = 0; k < step.ticks; k++) {
          const started = await d.dispatch(100);
          trace.push(...started.map(startOf));
          for (const s of started) {
            tally[s.tenant] = (tally[s.tenant] ?? 0) + 1;
            running.push({ run: s, endsAt: clock.now() + runMs(s.tenant) });
          }
          clock.advance(tickMs);
          const ended = running.filter((r) => r.endsAt <= clock.now());
          running = running.filter((r) => r.endsAt > clock.now());
          for (const r of ended) await d.finish(r.run);
        }
      } else step.check(tallies);
    } catch (e) {
      if (e instanceof Error) e.message = `${side}, step ${i} ${JSON.stringify(step)}: ${e.message}`;
      throw e;
    }
  }
  return trace;
}

const shareOf = (s?: Partial<ShareOptions>): ShareOptions => ({ ...TEST_SHARES, ...s });

describe("dispatch rule: the pure rule and dispatch-18.lua agree", () => {
  let redis: Redis;
  let cell: CellKeys;
  let caseNo = 0;

  before(async () => {
    redis = connect(await testRedisUrl());
    cell = createKeys(freshPrefix()).cell("default");
  });
  after(() => redis.quit());

  /** The class the script starts into a free slot: one dispatch call of one move, a tenant queued in each ready class. */
  async function scriptClass(pool: PoolState, shares: ShareOptions, ready: WorkflowClass[]): Promise<WorkflowClass | null> {
    const n = ++caseNo;
    const name = `cls${n}`;
    const script = await ScriptPool.open(redis, cell, name, pool.capacity, shares, new FakeClock(T0), pool.batchCapacity);
    await redis.hset(cell.poolUsed(name), { total: pool.used, A: pool.usedA, C: pool.usedC });
    for (const cls of ready) {
      await script.setCaps(`${name}${cls}`, CASE_CAPS);
      await script.enqueue(`${name}${cls}`, cls, 1);
    }
    const started = await script.dispatch(1);
    return started[0]?.cls ?? null;
  }

  for (const c of CLASS_CASES) {
    it(c.name, async () => {
      assert.equal(
        chooseClass(c.pool, TEST_SHARES, (x) => c.ready.includes(x)),
        c.expected,
        "pure rule",
      );
      assert.equal(await scriptClass(c.pool, TEST_SHARES, c.ready), c.expected, "dispatch script");
    });
  }

  it(`choose the same class for ${RUNS} generated pools and shares`, { timeout: 120_000 }, async () => {
    const poolArb = fc
      .integer({ min: 0, max: 12 })
      .chain((capacity) => fc.record({ capacity: fc.constant(capacity), used: fc.integer({ min: 0, max: capacity }) }))
      .chain(({ capacity, used }) =>
        fc.record({ capacity: fc.constant(capacity), used: fc.constant(used), usedA: fc.integer({ min: 0, max: used }) }),
      )
      .chain((p) => fc.integer({ min: 0, max: p.used - p.usedA }).map((usedC) => ({ ...p, usedC })))
      .chain((p) =>
        fc
          .option(fc.integer({ min: 0, max: p.capacity }), { nil: undefined })
          .map((batchCapacity): PoolState => (batchCapacity === undefined ? p : { ...p, batchCapacity })),
      );
    const sharesArb: fc.Arbitrary<ShareOptions> = fc.record({
      reserveFraction: fc.constantFrom(0, 0.1, 0.25, 0.5),
      batchMaxShare: fc.constantFrom(0.3, 0.5, 1),
      batchMinShare: fc.constantFrom(0, 0.05, 0.2),
    });
    const readyArb = fc.subarray<WorkflowClass>(["A", "B", "C"]);
    await fc.assert(
      fc.asyncProperty(poolArb, sharesArb, readyArb, async (pool, shares, ready) => {
        assert.equal(
          await scriptClass(pool, shares, ready),
          chooseClass(pool, shares, (x) => ready.includes(x)),
        );
      }),
      { numRuns: RUNS },
    );
  });

  /** The capacity the script counts in a pool of workers of these concurrencies, all live. */
  async function scriptCapacity(concurrencies: number[], capacityCap: number): Promise<number> {
    const pool = `cap${++caseNo}`;
    for (const [i, c] of concurrencies.entries()) await heartbeat(redis, cell, pool, `w${i}`, c, T0, T0 + 60_000);
    return (await dispatch(redis, cell, pool, T0, { ...scriptOptions(TEST_SHARES), capacityCap })).capacity;
  }

  for (const c of CAPACITY_CASES) {
    it(c.name, async () => {
      assert.equal(poolCapacity(c.concurrencies, c.capacityCap), c.expected, "explain.ts");
      assert.equal(await scriptCapacity(c.concurrencies, c.capacityCap), c.expected, "dispatch script");
    });
  }

  it(`count the same capacity for ${RUNS} generated pools`, { timeout: 120_000 }, async () => {
    const arb = fc.record({
      concurrencies: fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 4 }),
      capacityCap: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 120 })),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ concurrencies, capacityCap }) => {
        assert.equal(await scriptCapacity(concurrencies, capacityCap), poolCapacity(concurrencies, capacityCap));
      }),
      { numRuns: RUNS },
    );
  });

  for (const c of DISPATCH_CASES) {
    it(c.name, { timeout: 60_000 }, async () => {
      const shares = shareOf(c.shares);
      const modelClock = new FakeClock(T0);
      const model = await play(new ModelPool(c.capacity, shares, modelClock, "default"), c, modelClock, "pure rule");
      // A cell of its own: the case's tenant names are its own too.
      const scriptClock = new FakeClock(T0);
      const own = createKeys(freshPrefix()).cell("default");
      const script = await play(
        await ScriptPool.open(redis, own, "default", c.capacity, shares, scriptClock),
        c,
        scriptClock,
        "dispatch script",
      );
      assert.deepEqual(script, model, "both homes start the same workflows in the same order, charged the same");
    });
  }
});
