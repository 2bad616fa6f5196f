import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { CLASSES, type CellKeys, type WorkflowClass } from "../../queues/keys.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import type { PoolDispatch } from "../../src/dispatch/policy/poolDispatch.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { caseArb, type Event, type GeneratedCase, ModelPool, ORG_ORDER, playCase, ScriptPool, TENANT_ORDER, TEST_SHARES } from "./pools.ts";

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
 * it; and, as the exec consumer finishes, every finish settled by the next
 * dispatch call, several at once, checked after it), includes/wfq.lua against wfq.ts and includes/tenantCaps.lua inside
 * them. Tenants may belong to orgs (two-level fair queuing, org caps: includes/flows.lua), join and
 * leave them, and orgs' caps change. The scenarios both homes must also agree on are dispatch.cases.ts.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 1000);

/**
 * Cases fast-check once found, run first every time. A move's writes the script holds until its call
 * ends (includes/dispatchCache.lua): here a Class A move of an org's tenant, then the org's recompute
 * in the same call, which must read the org's counters as that move left them.
 */
const PINNED: [GeneratedCase][] = [
  [
    {
      capacity: 3,
      tenants: [{ caps: { weight: 1, mca: 1, burstMca: 1, burstMs: 0, cooldownMs: 0, mcaUrgent: 2, paused: false }, org: 0 }],
      orgs: [{ weight: 1, mca: null, mcaUrgent: 1 }],
      events: [
        { kind: "enqueue", t: 0, cls: "A", n: 2 },
        { kind: "finish", pick: 0 },
        { kind: "enqueue", t: 0, cls: "C", n: 1 },
        { kind: "enqueue", t: 0, cls: "B", n: 1 },
        { kind: "dispatch", maxMoves: 3, prefetch: 0 },
        { kind: "enqueue", t: 0, cls: "A", n: 1 },
      ],
    },
  ],
];

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

  async function innerSets(pool: string, m: PoolDispatch, orgs: string[]): Promise<[unknown, unknown]> {
    const got: Record<string, [string, number][]> = {};
    const want: Record<string, [string, number][]> = {};
    for (const org of orgs)
      for (const cls of CLASSES) {
        const flat = await p.redis.zrange(cell.orgReady(pool, cls, org), 0, -1, "WITHSCORES");
        const list: [string, number][] = [];
        for (let i = 0; i < flat.length; i += 2) list.push([/^\d+:(.+)$/.exec(flat[i]!)![1]!, Number(flat[i + 1])]);
        got[`${org} ${cls}`] = list.sort((a, b) => (a[0] < b[0] ? -1 : 1));
        want[`${org} ${cls}`] = [...(m.orgs.get(org)?.ready[cls] ?? [])].sort((a, b) => (a[0] < b[0] ? -1 : 1));
      }
    return [got, want];
  }

  /** `later`: the script's finishes leave their release to the next dispatch call; the sets are compared after dispatches only. */
  async function runCase(c: GeneratedCase, later = false): Promise<void> {
    const n = ++caseNo;
    const pool = `diff${n}`;
    const names = c.tenants.map((_, i) => `d${n}t${i}`);
    const orgNames = c.orgs.map((_, i) => `d${n}o${i}`);
    // Cell-wide sets from earlier cases would be refreshed here too: start them empty.
    await p.redis.del(cell.dirty, cell.timers, cell.released);
    const model = new ModelPool(c.capacity, TEST_SHARES, clock, pool);
    const script = await ScriptPool.open(p.redis, cell, pool, c.capacity, TEST_SHARES, clock);
    script.releaseLater = later;
    // Releases left for a dispatch are all settled by a last one.
    const events: Event[] = later ? [...c.events, { kind: "dispatch", maxMoves: 1, prefetch: 0 }] : c.events;
    await playCase({ ...c, events }, [model, script], {
      names,
      orgNames,
      clock,
      members: true,
      label: `case ${n}`,
      async afterEvent(e, at) {
        if (e.kind !== "dispatch" && (e.kind !== "finish" || later)) return;
        assert.deepEqual(await readySets(pool), modelSets(model.rule), `ready sets, ${at}`);
        const [got, want] = await innerSets(pool, model.rule, orgNames);
        assert.deepEqual(got, want, `orgs' ready sets, ${at}`);
      },
    });
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
      for (const org of orgNames) {
        const o = model.rule.orgs.get(org)!;
        const v = await p.redis.hget(cell.wfq(pool, cls), `v:@${org}`);
        assert.equal(v === null ? undefined : Number(v), o.wfq[cls].v, `v of org ${org} ${cls}, case ${n}`);
        const inner = await p.redis.hget(cell.orgWfq(pool, cls, org), "now");
        assert.equal(Number(inner ?? 0), o.classes[cls].now ?? 0, `now inside org ${org} ${cls}, case ${n}`);
        for (const tenant of names) {
          const tv = await p.redis.hget(cell.orgWfq(pool, cls, org), `v:${tenant}`);
          const mv = model.rule.tenants.get(tenant)!.orgWfq.get(org)?.[cls].v;
          assert.equal(tv === null ? undefined : Number(tv), mv, `v of ${tenant} in org ${org} ${cls}, case ${n}`);
        }
      }
    }
  }

  it("place an org once after all of its tenants, whatever order SPOP gives them", async () => {
    for (let i = 0; i < 16; i++) await runCase(ORG_ORDER);
  });

  it("enter tenants together, whatever order SPOP gives them", async () => {
    for (let i = 0; i < 16; i++) await runCase(TENANT_ORDER);
  });

  it(`agree on ${RUNS} generated pools and event sequences`, { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, (c) => runCase(c)),
      {
        numRuns: RUNS,
        examples: PINNED,
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH, endOnFailure: true } : {}),
      },
    );
    assert.equal(caseNo >= RUNS, true);
  });

  it(`agree on ${RUNS} more with the finishes settled by the next dispatch call`, { timeout: 240_000 }, async () => {
    const first = caseNo;
    await fc.assert(
      fc.asyncProperty(caseArb, (c) => runCase(c, true)),
      {
        numRuns: RUNS,
        examples: PINNED,
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH, endOnFailure: true } : {}),
      },
    );
    assert.equal(caseNo - first >= RUNS, true);
  });
});
