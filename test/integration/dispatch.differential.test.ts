import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { CLASSES, type CellKeys, type WorkflowClass } from "../../queues/keys.ts";
import { admitWorkflows } from "../../queues/lua/admitWorkflow.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { finishRun } from "../../queues/lua/runLifecycle.ts";
import { execQueue } from "../../queues/names.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { aEligible, bcEligible, type SchedulingCaps } from "../../src/scheduler/policy/caps.ts";
import { PoolScheduler, type Lease } from "../../src/scheduler/policy/dispatchRule.ts";
import { capsFields } from "../../src/scheduler/tenantSync.ts";
import type { TenantEntry } from "../../src/tenancy/registry.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * One rule, two implementations that cannot drift: fast-check generates pools,
 * tenants and event sequences (admissions, dispatch calls, finishes, cap and
 * weight changes, pauses, time passing — up to 10 idle minutes) and runs each
 * through the pure rule (PoolScheduler) and through the real scripts on a real
 * Redis (admitWorkflow, dispatch, finishRun). After every step both must have
 * made the same dispatches (tenant, class, charge), hold the same ready sets
 * with bit-identical virtual times, and end with the same virtual times.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 1000);
const SHARES = { reserveFraction: TEST_DISPATCH_OPTS.reserveA, batchMaxShare: TEST_DISPATCH_OPTS.batchMaxShare, batchMinShare: TEST_DISPATCH_OPTS.batchMinShare };

type Caps = Omit<SchedulingCaps, "burstStart" | "pools">;

const capsArb: fc.Arbitrary<Caps> = fc
  .record({
    weight: fc.constantFrom(1, 2, 4, 0.5, 3, 7),
    mca: fc.integer({ min: 1, max: 4 }),
    extra: fc.integer({ min: 0, max: 3 }),
    burstSeconds: fc.integer({ min: 0, max: 3 }),
    cooldownSeconds: fc.integer({ min: 0, max: 5 }),
    mcaUrgent: fc.integer({ min: 0, max: 3 }),
    paused: fc.constantFrom(false, false, false, true),
  })
  .map((c) => ({
    weight: c.weight,
    mca: c.mca,
    burstMca: c.mca + c.extra,
    burstMs: c.burstSeconds * 1000,
    cooldownMs: c.cooldownSeconds * 1000,
    mcaUrgent: c.mcaUrgent,
    paused: c.paused,
  }));

type Event =
  | { kind: "enqueue"; t: number; cls: WorkflowClass; n: number }
  | { kind: "dispatch"; maxMoves: number }
  | { kind: "finish"; pick: number }
  | { kind: "advance"; ms: number }
  | { kind: "caps"; t: number; caps: Caps };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("enqueue" as const), t: fc.nat(), cls: fc.constantFrom<WorkflowClass>("A", "B", "C"), n: fc.integer({ min: 1, max: 4 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("dispatch" as const), maxMoves: fc.integer({ min: 1, max: 6 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("finish" as const), pick: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.oneof(fc.integer({ min: 0, max: 3_000 }), fc.constant(600_000)) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("caps" as const), t: fc.nat(), caps: capsArb }), weight: 1 },
);

const caseArb = fc.record({
  capacity: fc.integer({ min: 1, max: 8 }),
  tenants: fc.array(capsArb, { minLength: 1, maxLength: 4 }),
  events: fc.array(eventArb, { minLength: 5, maxLength: 40 }),
});

/** The fields TenantSync writes for a policy with these caps. */
function writeCaps(redis: Redis, cell: CellKeys, tenant: string, pool: string, c: Caps) {
  const policy = {
    weight: c.weight,
    mca: c.mca,
    burst: { mca: c.burstMca, seconds: c.burstMs / 1000, cooldownSeconds: c.cooldownMs / 1000 },
    mcaUrgent: c.mcaUrgent,
    paused: c.paused,
    pools: [pool],
  };
  const fields = capsFields({ tenant, policy } as unknown as TenantEntry);
  return redis.multi().hset(cell.tenantCaps(tenant), fields).sadd(cell.tenants, tenant).sadd(cell.dirty, tenant).exec();
}

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

  const modelSets = (m: PoolScheduler) =>
    Object.fromEntries(CLASSES.map((cls) => [cls, [...m.ready[cls]].sort((a, b) => (a[0] < b[0] ? -1 : 1))])) as Record<WorkflowClass, [string, number][]>;

  async function runCase(c: { capacity: number; tenants: Caps[]; events: Event[] }): Promise<void> {
    const n = ++caseNo;
    const pool = `diff${n}`;
    const names = c.tenants.map((_, i) => `d${n}t${i}`);
    // Cell-wide sets from earlier cases would be refreshed here too: start them empty.
    await p.redis.del(cell.dirty, cell.timers);
    const model = new PoolScheduler(c.capacity, SHARES);
    for (const [i, caps] of c.tenants.entries()) {
      model.setCaps(names[i]!, { ...caps, pools: [pool] });
      await writeCaps(p.redis, cell, names[i]!, pool, caps);
    }
    await heartbeat(p.redis, cell, pool, "w", c.capacity, clock.now(), clock.now() + 1e12);
    const running: { id: string; lease: Lease }[] = [];
    const trace: string[] = [];
    for (const e of c.events) {
      trace.push(JSON.stringify(e));
      const at = `case ${n} after ${trace.join(" ")}`;
      if (e.kind === "enqueue") {
        const tenant = names[e.t % names.length]!;
        model.enqueue(tenant, e.cls, e.n);
        const items = Array.from({ length: e.n }, (_, k) => ({
          cell,
          input: {
            id: `${tenant}-${e.cls}-${clock.now()}-${trace.length}-${k}`,
            tenant,
            cls: e.cls,
            type: "noop",
            data: "{}",
            now: clock.now(),
            idempotencyTtlSec: 0,
            maxQueueDepth: 1_000_000,
            maxQueuedTotal: 1_000_000_000,
            record: { tenant, class: e.cls, type: "noop", state: "queued", enqueuedAt: String(clock.now()) },
          },
        }));
        for (const r of await admitWorkflows(p.redis, items)) assert.equal(r.kind, "ok", at);
      } else if (e.kind === "dispatch") {
        const want = model.dispatch(clock.now(), e.maxMoves);
        const r = await dispatch(p.redis, cell, pool, clock.now(), { ...TEST_DISPATCH_OPTS, maxMoves: e.maxMoves });
        const execWait = cell.queueKey(execQueue(pool), "wait");
        const listed = await Promise.all(
          (await p.redis.lrange(execWait, 0, -1)).map(async (id) => {
            const [tenant, cls, , at, charge] = (await p.redis.hget(cell.slots, id))!.split("|");
            return { id, tenant, cls, dispatchedAt: Number(at), charge: Number(charge) };
          }),
        );
        await p.redis.del(execWait);
        // Class A is pushed at the end workers fetch from (the right), B and C at the left: in dispatch
        // order that is the Class A ids left to right, then the others right to left (the rule serves
        // every eligible Class A of a call before any B or C; the model's order checks that too).
        const got = [...listed.filter((g) => g.cls === "A"), ...listed.filter((g) => g.cls !== "A").reverse()];
        assert.equal(r.moved, got.length, at);
        assert.deepEqual(
          got.map(({ tenant, cls, dispatchedAt, charge }) => ({ tenant, cls, dispatchedAt, charge })),
          want.map(({ tenant, cls, dispatchedAt, charge }) => ({ tenant, cls, dispatchedAt, charge })),
          at,
        );
        got.forEach((g, i) => running.push({ id: g.id, lease: want[i]! }));
      } else if (e.kind === "finish") {
        if (!running.length) continue;
        const [run] = running.splice(e.pick % running.length, 1);
        model.release(run!.lease, clock.now());
        assert.equal(await finishRun(p.redis, cell, { id: run!.id, now: clock.now(), runId: "", state: "completed", recordTtlSec: 60 }), "ok", at);
      } else if (e.kind === "advance") {
        clock.advance(e.ms);
      } else {
        const tenant = names[e.t % names.length]!;
        model.setCaps(tenant, { ...e.caps, pools: [pool] });
        await writeCaps(p.redis, cell, tenant, pool, e.caps);
      }
      if (e.kind === "dispatch" || e.kind === "finish") assert.deepEqual(await readySets(pool), modelSets(model), `ready sets, ${at}`);
    }
    for (const cls of CLASSES) {
      for (const tenant of names) {
        const v = await p.redis.hget(cell.wfq(pool, cls), `v:${tenant}`);
        assert.equal(v === null ? undefined : Number(v), model.tenants.get(tenant)!.wfq[cls].v, `v of ${tenant} ${cls}, case ${n}`);
        const c = await p.redis.hget(cell.wfq(pool, cls), `c:${tenant}`);
        assert.equal(Number(c ?? 0), model.tenants.get(tenant)!.wfq[cls].inflight ?? 0, `in-flight charge of ${tenant} ${cls}, case ${n}`);
      }
      const now = await p.redis.hget(cell.wfq(pool, cls), "now");
      assert.equal(Number(now ?? 0), model.classes[cls].now ?? 0, `now of ${cls}, case ${n}`);
    }
  }

  it(`agree on ${RUNS} generated pools and event sequences`, { timeout: 240_000 }, async () => {
    await fc.assert(fc.asyncProperty(caseArb, runCase), { numRuns: RUNS });
    assert.equal(caseNo >= RUNS, true);
  });
});

describe("cap and burst rule: caps.ts and tenantCaps.lua agree", () => {
  let p: Platform;
  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"));
  });
  after(() => p.close());

  // The include itself, evaluated with the caps as the script reads them from tp:<t>.
  const lua = `local rcall = redis.call
${readFileSync(new URL("../../queues/lua/includes/tenantCaps.lua", import.meta.url), "utf8")}
local caps = cjson.decode(ARGV[1])
local now, runA, runBC = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ok, starts, retryAt = bcEligible(caps, runBC, now)
return { ok and 1 or 0, starts and 1 or 0, retryAt or -1, aEligible(caps, runA) and 1 or 0 }`;

  it("decide every generated case the same way (eligible, opens a burst, retry time, Class A)", { timeout: 120_000 }, async () => {
    const arb = fc.record({
      caps: capsArb,
      burstStart: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined }),
      now: fc.integer({ min: 0, max: 30_000 }),
      runA: fc.integer({ min: 0, max: 5 }),
      runBC: fc.integer({ min: 0, max: 10 }),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ caps, burstStart, now, runA, runBC }) => {
        const full: SchedulingCaps = { ...caps, pools: ["default"], burstStart };
        const fields: Record<string, string> = Object.fromEntries(Object.entries(capsFields({ policy: { ...caps, burst: { mca: caps.burstMca, seconds: caps.burstMs / 1000, cooldownSeconds: caps.cooldownMs / 1000 }, pools: ["default"] } } as unknown as TenantEntry)));
        if (burstStart !== undefined) fields.burstStart = String(burstStart);
        const [ok, starts, retryAt, a] = (await p.redis.eval(lua, 0, JSON.stringify(fields), now, runA, runBC)) as number[];
        const want = bcEligible(full, runBC, now);
        assert.deepEqual(
          { eligible: ok === 1, startsBurst: starts === 1, retryAt: retryAt === -1 ? undefined : retryAt, a: a === 1 },
          { eligible: want.eligible, startsBurst: want.startsBurst, retryAt: want.retryAt, a: aEligible(full, runA) },
        );
      }),
      { numRuns: RUNS },
    );
  });
});
