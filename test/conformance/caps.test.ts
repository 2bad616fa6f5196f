import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { createKeys, type CellKeys } from "../../queues/keys.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { aEligible, bcEligible, type BcDecision, type DispatchCaps } from "../../src/dispatch/policy/caps.ts";
import { capsFromHash } from "../../src/dispatch/policy/explain.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { CAPS_CASES, type CapsCase } from "./caps.cases.ts";
import { harnessLua } from "./luaHarness.ts";
import { capsArb, capsHash, ScriptPool, TEST_SHARES, type Caps } from "./pools.ts";

/**
 * A tenant's caps have two homes: bcEligible and aEligible
 * (src/dispatch/policy/caps.ts) and includes/tenantCaps.lua, which
 * dispatch-18.lua decides with (and refreshTenant.lua keeps the ready sets
 * by). Every row of the table is checked against both, the script side
 * through the real dispatch script, and against the pure rule on the caps hash
 * as explain.ts reads it (capsFromHash restates how the script reads tp:<t>);
 * fast-check then generates caps, burst starts, clocks and running counts,
 * first through the dispatch script, then many more through a harness that
 * evaluates the include alone.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 300);
const INCLUDE_RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 1000);

type Question = Omit<CapsCase, "name" | "expected" | "caps"> & { caps: Caps };

/**
 * A burst start and a clock for these caps: anywhere, or (half the time)
 * exactly at or one millisecond before an edge of the window or the cooldown,
 * where an off-by-one would show.
 */
function clockFor(c: Caps): fc.Arbitrary<{ burstStart: number | undefined; now: number }> {
  const anywhere = fc.record({
    burstStart: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined }),
    now: fc.integer({ min: 0, max: 30_000 }),
  });
  const atEdge = fc
    .record({
      burstStart: fc.integer({ min: 0, max: 20_000 }),
      edge: fc.constantFrom(0, c.burstMs, c.burstMs + c.cooldownMs),
      before: fc.boolean(),
    })
    .map(({ burstStart, edge, before }) => ({ burstStart, now: burstStart + edge - (before ? 1 : 0) }));
  return fc.oneof(anywhere, atEdge);
}

describe("tenant caps: caps.ts and tenantCaps.lua agree", () => {
  let redis: Redis;
  let cell: CellKeys;
  let caseNo = 0;

  before(async () => {
    redis = connect(await testRedisUrl());
    cell = createKeys(freshPrefix()).cell("default");
  });
  after(() => redis.quit());

  const full = (q: Question): DispatchCaps => ({
    ...q.caps,
    pools: ["default"],
    ...(q.burstStart === undefined ? {} : { burstStart: q.burstStart }),
  });

  /**
   * The dispatch script's answer: a tenant in its own pool of 10 free slots with these caps, burst
   * start and running count, and one workflow queued (Class B for a B/C question; Class A for an A
   * question, with burst.mca Class B/C running too, which must not hold Class A back). Whether one
   * dispatch call moves it is the decision; a window it opens is the burst start it writes; the
   * cooldown end is the timer it sets to look at the tenant again.
   */
  async function scriptDecision(q: Question): Promise<{ decision: BcDecision | boolean; explained: BcDecision | boolean }> {
    const n = ++caseNo;
    const tenant = `c${n}`;
    const pool = `caps${n}`;
    const script = await ScriptPool.open(redis, cell, pool, 10, TEST_SHARES, new FakeClock(q.now));
    await script.setCaps(tenant, q.caps);
    const before = q.burstStart === undefined ? null : String(q.burstStart);
    if (before !== null) await redis.hset(cell.tenantCaps(tenant), "burstStart", before);
    await redis.hset(cell.running(tenant), q.ask === "A" ? { A: q.running, BC: q.caps.burstMca } : { A: 0, BC: q.running });
    // The "why does it wait" answer reads the same hash (explain.ts capsFromHash) and decides by the pure rule.
    const read = capsFromHash(await redis.hgetall(cell.tenantCaps(tenant)));
    assert.ok(read, "tp:<t> as explain.ts reads it");
    const explained = decide(q, read);
    await script.enqueue(tenant, q.ask === "A" ? "A" : "B", 1);
    const started = await script.dispatch(1);
    assert.ok(
      started.every((s) => s.tenant === tenant),
      "only the tenant asked about",
    );
    if (q.ask === "A") return { decision: started.length === 1, explained };
    if (started.length === 1)
      return { decision: { eligible: true, startsBurst: (await redis.hget(cell.tenantCaps(tenant), "burstStart")) !== before }, explained };
    const timer = await redis.zscore(cell.timers, tenant);
    return { decision: { eligible: false, startsBurst: false, ...(timer === null ? {} : { retryAt: Number(timer) }) }, explained };
  }

  const decide = (q: Question, caps: DispatchCaps): BcDecision | boolean =>
    q.ask === "A" ? aEligible(caps, q.running) : bcEligible(caps, q.running, q.now);
  const pureDecision = (q: Question): BcDecision | boolean => decide(q, full(q));

  for (const c of CAPS_CASES) {
    it(c.name, async () => {
      const q: Question = { ...c, caps: { weight: 1, paused: false, ...c.caps } };
      assert.deepEqual(pureDecision(q), c.expected, "pure rule");
      const { decision, explained } = await scriptDecision(q);
      assert.deepEqual(decision, c.expected, "dispatch script");
      assert.deepEqual(explained, c.expected, "the pure rule on tp:<t> as explain.ts reads it");
    });
  }

  it(`decide ${RUNS} generated cases the same way through the dispatch script`, { timeout: 120_000 }, async () => {
    const arb = capsArb
      .map((c) => ({ ...c, paused: false })) // pausing is the dispatch rule's, not the caps'
      .chain((caps) =>
        fc.record({
          caps: fc.constant(caps),
          clock: clockFor(caps),
          running: fc.integer({ min: 0, max: 10 }),
          ask: fc.constantFrom("A" as const, "B/C" as const),
        }),
      )
      .map(({ clock, ...q }) => ({ ...q, ...clock }));
    await fc.assert(
      fc.asyncProperty(arb, async (q) => {
        const { decision, explained } = await scriptDecision(q);
        assert.deepEqual(decision, pureDecision(q), "dispatch script");
        assert.deepEqual(explained, pureDecision(q), "the pure rule on tp:<t> as explain.ts reads it");
      }),
      { numRuns: RUNS },
    );
  });

  // The include alone, evaluated with the caps as the script reads them from tp:<t>: every
  // decision, the cooldown end of eligible ones too, at the cost of one EVAL.
  const harness = harnessLua("tenantCaps.harness.lua");

  it("decide every generated case the same way (eligible, opens a burst, retry time, Class A)", { timeout: 120_000 }, async () => {
    const arb = capsArb
      .chain((caps) =>
        fc.record({
          caps: fc.constant(caps),
          clock: clockFor(caps),
          runA: fc.integer({ min: 0, max: 5 }),
          runBC: fc.integer({ min: 0, max: 10 }),
        }),
      )
      .map(({ clock, ...q }) => ({ ...q, ...clock }));
    await fc.assert(
      fc.asyncProperty(arb, async ({ caps, burstStart, now, runA, runBC }) => {
        const full: DispatchCaps = { ...caps, pools: ["default"], burstStart };
        const fields = capsHash("t", "default", caps);
        if (burstStart !== undefined) fields.burstStart = String(burstStart);
        const [ok, starts, retryAt, a] = (await redis.eval(harness, 0, JSON.stringify(fields), now, runA, runBC)) as number[];
        const want = bcEligible(full, runBC, now);
        assert.deepEqual(
          { eligible: ok === 1, startsBurst: starts === 1, retryAt: retryAt === -1 ? undefined : retryAt, a: a === 1 },
          { eligible: want.eligible, startsBurst: want.startsBurst, retryAt: want.retryAt, a: aEligible(full, runA) },
        );
      }),
      { numRuns: INCLUDE_RUNS },
    );
  });
});
