import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import { acquirePermit, releasePermit } from "../../queues/lua/permits.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { eligibleWaiters, mayAcquire } from "../../src/runtime/gateRule.ts";
import { openGateChannel, type GateChannel } from "../helpers/gate.ts";
import { gateRefuses } from "../../src/backpressure/healthRule.ts";
import { GATE_CASES, GATE_HEALTH_CASES, type GateCase } from "./gate.cases.ts";

/**
 * The tool gate's rule has two homes: mayAcquire and eligibleWaiters
 * (src/runtime/gateRule.ts) and the scripts (acquirePermit-10.lua,
 * releasePermit-8.lua with includes/gate.lua). Every row of the table is
 * checked against both; then fast-check generates gate states and asks both
 * the same questions: may this caller take a permit, and whom does a release
 * that leaves the gate in this state wake. The gate's look at the call's
 * dependency (gateRefuses) has its own table, checked against both the same way.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 300);

type State = GateCase["state"];

describe("tool gate: the pure rule and the scripts agree", () => {
  let redis: Redis;
  let cell: CellKeys;
  let channel: GateChannel;
  const clock = new FakeClock(1_700_000_000_000);
  let tenantNo = 0;
  const published = () => channel.published();

  before(async () => {
    channel = await openGateChannel();
    ({ redis, cell } = channel);
  });
  after(() => channel.close());

  /** A new tenant whose gate is in state `st`: A/B holders h*, C holders hc*, A/B waiters w0.. and C waiters c0.. in FIFO order. */
  async function seed(st: State, extraHolder?: string): Promise<string> {
    const tenant = `g${++tenantNo}`;
    const g = cell.gate(tenant);
    const lease = clock.now() + 60_000;
    const p = redis.multi();
    for (let i = 0; i < st.held - st.heldC; i++) p.zadd(g.held, lease, `h${i}`);
    for (let i = 0; i < st.heldC; i++) p.zadd(g.held, lease, `hc${i}`).zadd(g.heldC, lease, `hc${i}`);
    if (extraHolder) p.zadd(g.held, lease, extraHolder);
    if (st.org) {
      // The org's holders: this tenant's, and the other tenants' (o*).
      const org = cell.gate(`@${tenant}-org`).held;
      for (let i = 0; i < st.held - st.heldC; i++) p.zadd(org, lease, `h${i}`);
      for (let i = 0; i < st.heldC; i++) p.zadd(org, lease, `hc${i}`);
      for (let i = 0; i < st.org.held - st.held; i++) p.zadd(org, lease, `o${i}`);
      if (extraHolder) p.zadd(org, lease, extraHolder);
    }
    let seq = 0;
    for (let i = 0; i < st.waitingAB; i++) p.zadd(g.wait, ++seq, `w${i}`).zadd(g.waitExp, lease, `w${i}`);
    for (let i = 0; i < st.waitingC; i++) p.zadd(g.waitC, ++seq, `c${i}`).zadd(g.waitExp, lease, `c${i}`);
    p.set(g.seq, seq);
    await p.exec();
    return tenant;
  }

  const limitsOf = (st: State, tenant: string) => ({
    mctc: st.mctc,
    mctcBatch: st.mctcBatch,
    depth: 100,
    ...(st.org ? { org: { name: `${tenant}-org`, mctc: st.org.mctc } } : {}),
  });

  /** The script's answer to "may the caller at `position` of its queue take a permit now", on a fresh copy of the gate. */
  async function scriptMay(st: State, batch: boolean, position: number): Promise<boolean> {
    const tenant = await seed(st);
    const waiting = batch ? st.waitingC : st.waitingAB;
    const id = position < waiting ? `${batch ? "c" : "w"}${position}` : "newcomer";
    const now = clock.now();
    const out = await acquirePermit(redis, cell, tenant, {
      id,
      batch,
      now,
      leaseUntil: now + 15_000,
      waitUntil: now + 60_000,
      limits: limitsOf(st, tenant),
    });
    if (out.kind !== "acquired")
      assert.equal(out.kind, id === "newcomer" ? "queued" : "waiting", `a refused caller keeps or takes its place, ${JSON.stringify(out)}`);
    return out.kind === "acquired";
  }

  /** Whom the script wakes when a release leaves the gate in state `st`: the ids it publishes. */
  async function scriptWakes(st: State): Promise<string[]> {
    await published(); // earlier acquires may have woken others; only this release counts
    const tenant = await seed(st, "x");
    assert.equal(await releasePermit(redis, cell, tenant, { id: "x", batch: false, now: clock.now(), limits: limitsOf(st, tenant) }), true);
    return published();
  }

  /** The ids eligibleWaiters names, in the order the script publishes them: A/B from the head, then C. */
  const wakeIds = (w: { ab: number; c: number }) => [
    ...Array.from({ length: w.ab }, (_, k) => `w${k}`),
    ...Array.from({ length: w.c }, (_, k) => `c${k}`),
  ];

  for (const c of GATE_CASES) {
    it(c.name, async () => {
      for (const m of c.may) {
        assert.equal(mayAcquire(c.state, m.batch, m.position), m.expected, `pure rule: ${JSON.stringify(m)}`);
        assert.equal(await scriptMay(c.state, m.batch, m.position), m.expected, `script: ${JSON.stringify(m)}`);
      }
      assert.deepEqual(eligibleWaiters(c.state), c.wakes, "pure rule: whom a release wakes");
      const ids = wakeIds(c.wakes);
      assert.deepEqual(
        await scriptWakes(c.state),
        ids.length ? [ids.join(" ")] : [],
        "script: one message naming the waiters that may go, or none",
      );
    });
  }

  it("wakes exactly the waiters that may go, no one else", () => {
    for (const c of GATE_CASES) {
      const { ab, c: cw } = eligibleWaiters(c.state);
      for (let p = 0; p < c.state.waitingAB; p++) assert.equal(p < ab, mayAcquire(c.state, false, p), `${c.name}: A/B waiter ${p}`);
      for (let p = 0; p < c.state.waitingC; p++) assert.equal(p < cw, mayAcquire(c.state, true, p), `${c.name}: C waiter ${p}`);
    }
  });

  for (const h of GATE_HEALTH_CASES) {
    it(`dependency health: ${h.name}`, async () => {
      assert.equal(gateRefuses(h.override, h.measured), h.refused, "pure rule");
      const tenant = await seed({ mctc: 4, mctcBatch: 2, held: 0, heldC: 0, waitingAB: 0, waitingC: 0 });
      const dep = `dep-${tenant}`;
      if (h.override) await redis.hset(cell.healthOverride(dep), { state: h.override, source: "operator" });
      if (h.measured) await redis.hset(cell.health(dep), { state: h.measured, source: "probe" });
      const now = clock.now();
      const req = {
        id: "x",
        batch: false,
        now,
        leaseUntil: now + 15_000,
        waitUntil: now + 60_000,
        limits: { mctc: 4, mctcBatch: 2, depth: 100 },
      };
      const out = await acquirePermit(redis, cell, tenant, { ...req, dependency: dep });
      assert.deepEqual(out, h.refused ? { kind: "unhealthy", state: h.override ?? h.measured } : { kind: "acquired" }, "script");
      assert.equal(await redis.zcard(cell.gate(tenant).held), h.refused ? 0 : 1, "a refused call holds no permit");
      // A call that names no dependency is not looked at.
      assert.deepEqual(await acquirePermit(redis, cell, tenant, { ...req, id: "y" }), { kind: "acquired" });
    });
  }

  it(`agree on ${RUNS} generated gates: who may take a permit, and whom a release wakes`, { timeout: 120_000 }, async () => {
    // mctcBatch <= mctc as the policy requires; held mostly near mctc, sometimes above it (mctc lowered
    // while permits were held), heldC near mctcBatch: where the boundaries are.
    const stateArb: fc.Arbitrary<State> = fc
      .record({ mctc: fc.integer({ min: 1, max: 6 }), batchShare: fc.integer({ min: 1, max: 6 }) })
      .chain(({ mctc, batchShare }) => {
        const mctcBatch = Math.min(batchShare, mctc);
        return fc
          .record({
            held: fc.integer({ min: 0, max: mctc + 1 }),
            heldC: fc.integer({ min: 0, max: mctcBatch + 1 }),
            waitingAB: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 })),
            waitingC: fc.integer({ min: 0, max: 4 }),
            // A tenant of an org whose mctc bounds it: the org's holders include this tenant's.
            org: fc.option(fc.record({ mctc: fc.integer({ min: 1, max: 8 }), others: fc.integer({ min: 0, max: 6 }) })),
          })
          .map((s) => ({
            mctc,
            mctcBatch,
            held: s.held,
            heldC: Math.min(s.heldC, s.held),
            waitingAB: s.waitingAB,
            waitingC: s.waitingC,
            ...(s.org ? { org: { mctc: s.org.mctc, held: s.held + s.org.others } } : {}),
          }));
      });
    const arb = fc.record({ state: stateArb, batch: fc.boolean(), place: fc.integer({ min: 0, max: 4 }) });
    await fc.assert(
      fc.asyncProperty(arb, async ({ state, batch, place }) => {
        // Any waiter of the caller's queue, or a newcomer (position = the queue's length).
        const position = Math.min(place, batch ? state.waitingC : state.waitingAB);
        assert.equal(
          await scriptMay(state, batch, position),
          mayAcquire(state, batch, position),
          `may acquire: ${JSON.stringify({ state, batch, position })}`,
        );
        const ids = wakeIds(eligibleWaiters(state));
        assert.deepEqual(await scriptWakes(state), ids.length ? [ids.join(" ")] : [], `wakes: ${JSON.stringify(state)}`);
      }),
      { numRuns: RUNS },
    );
  });
});
