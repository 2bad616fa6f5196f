import type { HealthState } from "../../src/backpressure/healthRule.ts";
import type { GateState } from "../../src/runtime/gateRule.ts";

/**
 * The tool gate's rule as one table: test/conformance/gate.test.ts checks
 * every row against the pure functions (src/runtime/gateRule.ts) and against
 * the scripts on a real Redis (acquirePermit-10.lua, releasePermit-8.lua), so
 * the two cannot drift.
 *
 * `state` is the gate as a caller finds it (leases live, waits unexpired).
 * `may` lists, per caller, whether it may take a permit now: `position` is
 * its place in its queue (A/B or Class C); a position equal to the queue's
 * length is a newcomer. `wakes` is who a change leading to this state wakes
 * (eligibleWaiters): the first `ab` A/B waiters and the first `c` C waiters.
 */
export interface GateCase {
  name: string;
  state: GateState & { waitingC: number };
  may: { batch: boolean; position: number; expected: boolean }[];
  wakes: { ab: number; c: number };
}

const s = (o: Partial<GateCase["state"]>): GateCase["state"] => ({
  mctc: 4,
  mctcBatch: 2,
  held: 0,
  heldC: 0,
  waitingAB: 0,
  waitingC: 0,
  ...o,
});

export const GATE_CASES: GateCase[] = [
  {
    name: "an idle gate lets anyone in",
    state: s({}),
    may: [
      { batch: false, position: 0, expected: true },
      { batch: true, position: 0, expected: true },
    ],
    wakes: { ab: 0, c: 0 },
  },
  {
    name: "callers go in FIFO order while permits are free",
    state: s({ held: 2, waitingAB: 3 }),
    may: [
      { batch: false, position: 0, expected: true },
      { batch: false, position: 1, expected: true },
      { batch: false, position: 2, expected: false },
      { batch: false, position: 3, expected: false },
    ],
    wakes: { ab: 2, c: 0 },
  },
  {
    name: "a full gate lets no one in and wakes no one",
    state: s({ held: 4, heldC: 1, waitingAB: 2, waitingC: 2 }),
    may: [
      { batch: false, position: 0, expected: false },
      { batch: false, position: 2, expected: false },
      { batch: true, position: 0, expected: false },
    ],
    wakes: { ab: 0, c: 0 },
  },
  {
    name: "Class C yields to any waiting A/B caller",
    state: s({ held: 1, waitingAB: 1, waitingC: 2 }),
    may: [
      { batch: false, position: 0, expected: true },
      { batch: false, position: 1, expected: true },
      { batch: true, position: 0, expected: false },
      { batch: true, position: 2, expected: false },
    ],
    wakes: { ab: 1, c: 0 },
  },
  {
    name: "Class C is held to mctcBatch",
    state: s({ held: 2, heldC: 2, waitingC: 1 }),
    may: [
      { batch: true, position: 0, expected: false },
      { batch: true, position: 1, expected: false },
      { batch: false, position: 0, expected: true },
    ],
    wakes: { ab: 0, c: 0 },
  },
  {
    name: "Class C waiters go up to the smaller of the free and the free batch permits",
    state: s({ held: 1, heldC: 1, waitingC: 3 }),
    may: [
      { batch: true, position: 0, expected: true },
      { batch: true, position: 1, expected: false },
      { batch: true, position: 3, expected: false },
      { batch: false, position: 0, expected: true },
    ],
    wakes: { ab: 0, c: 1 },
  },
  {
    name: "with free permits and no one waiting a newcomer of either class goes",
    state: s({ held: 3, heldC: 1 }),
    may: [
      { batch: false, position: 0, expected: true },
      { batch: true, position: 0, expected: true },
    ],
    wakes: { ab: 0, c: 0 },
  },
  {
    name: "over the limit (mctc lowered while permits were held) nobody goes",
    state: s({ mctc: 2, mctcBatch: 1, held: 3, heldC: 2, waitingAB: 1, waitingC: 1 }),
    may: [
      { batch: false, position: 0, expected: false },
      { batch: true, position: 0, expected: false },
    ],
    wakes: { ab: 0, c: 0 },
  },
  {
    name: "a tenant of an org takes no permit its org has not free, though its own are",
    state: s({ held: 1, waitingAB: 2, waitingC: 1, org: { mctc: 3, held: 2 } }),
    may: [
      { batch: false, position: 0, expected: true },
      { batch: false, position: 1, expected: false },
      { batch: true, position: 0, expected: false },
    ],
    wakes: { ab: 1, c: 0 },
  },
  {
    name: "an org at its mctc lets none of its tenants in, and wakes no one",
    state: s({ held: 0, waitingAB: 1, waitingC: 1, org: { mctc: 5, held: 5 } }),
    may: [
      { batch: false, position: 0, expected: false },
      { batch: true, position: 0, expected: false },
    ],
    wakes: { ab: 0, c: 0 },
  },
];

/**
 * The gate's look at the call's dependency (gateRefuses in src/backpressure/healthRule.ts and
 * acquirePermit-10.lua): the operator's mark (`override`), else the measured signal; null = no hash.
 * `refused`: the call gets no permit (UNHEALTHY), on a gate that would otherwise let it in.
 */
export interface GateHealthCase {
  name: string;
  override: HealthState | null;
  measured: HealthState | null;
  refused: boolean;
}

export const GATE_HEALTH_CASES: GateHealthCase[] = [
  { name: "no signal at all: the exec's own look decides", override: null, measured: null, refused: false },
  { name: "a first probe under way", override: null, measured: "unknown", refused: false },
  { name: "healthy", override: null, measured: "healthy", refused: false },
  { name: "marked degraded (by a probe or by another process's failed call)", override: null, measured: "degraded", refused: true },
  { name: "down", override: null, measured: "down", refused: true },
  { name: "an operator's down wins over a healthy probe", override: "down", measured: "healthy", refused: true },
  { name: "an operator's healthy wins over a degraded signal", override: "healthy", measured: "degraded", refused: false },
  { name: "an operator's healthy wins over a missing signal", override: "healthy", measured: null, refused: false },
  { name: "an operator's down with no probe", override: "down", measured: null, refused: true },
];
