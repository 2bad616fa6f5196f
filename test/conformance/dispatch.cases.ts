import assert from "node:assert/strict";
import type { WorkflowClass } from "../../queues/keys.ts";
import type { PoolState } from "../../src/dispatch/policy/dispatchRule.ts";
import type { ShareOptions } from "../../src/dispatch/policy/shares.ts";
import type { Caps } from "./pools.ts";

/**
 * The dispatch rule as two tables, each row checked against both homes by
 * test/conformance/dispatch.test.ts: the pure rule (chooseClass and
 * PoolDispatch, src/dispatch/policy/dispatchRule.ts) and the scripts on a
 * real Redis (dispatch-18.lua, with admitWorkflow and finishRun).
 *
 * CLASS_CASES: which class a free slot goes to, from the pool's counts and
 * the classes that have a tenant ready. DISPATCH_CASES: scenarios on one pool
 * (tenants, admissions, dispatch calls, finishes, time passing) with what the
 * dispatch calls must start; both homes must also start exactly the same
 * workflows in the same order.
 */
export interface ClassCase {
  name: string;
  pool: PoolState;
  ready: WorkflowClass[];
  expected: WorkflowClass | null;
}

const ALL: WorkflowClass[] = ["A", "B", "C"];

export const CLASS_CASES: ClassCase[] = [
  { name: "Class A takes any free slot, the reserve too", pool: { capacity: 10, used: 9, usedA: 0, usedC: 0 }, ready: ALL, expected: "A" },
  {
    name: "the last slot is Class A's reserve: B and C wait",
    pool: { capacity: 10, used: 9, usedA: 0, usedC: 0 },
    ready: ["B", "C"],
    expected: null,
  },
  {
    name: "a full pool starts nothing, not even Class A",
    pool: { capacity: 10, used: 10, usedA: 1, usedC: 0 },
    ready: ALL,
    expected: null,
  },
  {
    name: "Class C below its guaranteed minimum share goes before Class B",
    pool: { capacity: 10, used: 4, usedA: 0, usedC: 0 },
    ready: ["B", "C"],
    expected: "C",
  },
  {
    name: "Class B goes before Class C once C holds its minimum",
    pool: { capacity: 10, used: 4, usedA: 0, usedC: 1 },
    ready: ["B", "C"],
    expected: "B",
  },
  {
    name: "Class C alone takes general slots up to its maximum share",
    pool: { capacity: 10, used: 4, usedA: 0, usedC: 4 },
    ready: ["C"],
    expected: "C",
  },
  {
    name: "Class C at its maximum share waits even with slots free",
    pool: { capacity: 10, used: 5, usedA: 0, usedC: 5 },
    ready: ["C"],
    expected: null,
  },
  {
    name: "running Class A does not count against the general slots",
    pool: { capacity: 10, used: 9, usedA: 1, usedC: 0 },
    ready: ["B"],
    expected: "B",
  },
  {
    name: "a one-slot pool has no reserve: Class B may take it",
    pool: { capacity: 1, used: 0, usedA: 0, usedC: 0 },
    ready: ["B"],
    expected: "B",
  },
  { name: "a pool without live workers starts nothing", pool: { capacity: 0, used: 0, usedA: 0, usedC: 0 }, ready: ALL, expected: null },
  {
    name: "Class C at the workers' batch limit waits below its maximum share (their event loops lag)",
    pool: { capacity: 10, used: 3, usedA: 0, usedC: 3, batchCapacity: 3 },
    ready: ["C"],
    expected: null,
  },
  {
    name: "below the batch limit Class C takes a general slot as before",
    pool: { capacity: 10, used: 2, usedA: 0, usedC: 2, batchCapacity: 3 },
    ready: ["C"],
    expected: "C",
  },
  {
    name: "a batch limit holds Class C only: Class B takes the slot",
    pool: { capacity: 10, used: 3, usedA: 0, usedC: 3, batchCapacity: 3 },
    ready: ["B", "C"],
    expected: "B",
  },
  {
    name: "a batch limit of 0 never takes Class C below its guaranteed minimum",
    pool: { capacity: 10, used: 0, usedA: 0, usedC: 0, batchCapacity: 0 },
    ready: ["B", "C"],
    expected: "C",
  },
];

/**
 * A pool's capacity: the sum of its live exec workers' concurrency, capped by
 * FAIRLANE_CAPACITY_CAP when that is not 0. The script computes it for every
 * call (and returns it); poolCapacity (src/dispatch/policy/explain.ts)
 * restates it for the "why does it wait" answer.
 */
export interface CapacityCase {
  name: string;
  concurrencies: number[];
  capacityCap: number;
  expected: number;
}

export const CAPACITY_CASES: CapacityCase[] = [
  { name: "a pool's capacity is the sum of its live workers' concurrency", concurrencies: [4, 8, 1], capacityCap: 0, expected: 13 },
  { name: "the capacity cap bounds it", concurrencies: [4, 8, 1], capacityCap: 10, expected: 10 },
  { name: "a cap above the sum changes nothing", concurrencies: [4, 8], capacityCap: 50, expected: 12 },
  { name: "a pool without workers has no capacity, capped or not", concurrencies: [], capacityCap: 10, expected: 0 },
];

/** One step of a scenario; every dispatch call may move up to `maxMoves` (default 100). */
export type Step =
  | { admit: string; cls?: WorkflowClass; n: number }
  | { dispatch: { moved: number; tenants?: number; of?: Record<string, number> }; maxMoves?: number }
  /** Every started workflow finishes now. */
  | { finishAll: true }
  | { advance: number }
  | { caps: string; set: Partial<Caps> }
  /**
   * `ticks` times: dispatch, let time pass `tickMs` (default: `runMs` when it is one number), finish
   * what has run its `runMs` (per tenant, or the same for all). Starts are added up per tenant in
   * tallies[`tally`].
   */
  | { ticks: number; runMs: number | Record<string, number>; tickMs?: number; tally: string }
  | { check: (tallies: Record<string, Record<string, number>>) => void };

export interface DispatchCase {
  name: string;
  capacity: number;
  shares?: Partial<ShareOptions>;
  tenants: Record<string, Partial<Caps>>;
  steps: Step[];
}

/** Caps a case does not name: no cap is reached unless the case says so. */
export const CASE_CAPS: Caps = { weight: 1, mca: 1000, burstMca: 1000, burstMs: 0, cooldownMs: 0, mcaUrgent: 1000, paused: false };

const within = (got: number | undefined, want: number, by: number, what: string) =>
  assert.ok(Math.abs((got ?? 0) - want) <= by, `${what}: ${got} not within ${by} of ${want}`);

export const DISPATCH_CASES: DispatchCase[] = [
  {
    name: "a tenant moves no more workflows than its mca, and a freed slot goes to its next",
    capacity: 10,
    tenants: { capped: { mca: 2, burstMca: 2 } },
    steps: [
      { admit: "capped", n: 5 },
      { dispatch: { moved: 2 } },
      { dispatch: { moved: 0 } },
      { finishAll: true },
      { dispatch: { moved: 2 } },
    ],
  },
  {
    name: "a tenant bursts to burst.mca inside the window, then holds to mca through the cooldown",
    capacity: 20,
    tenants: { bursty: { weight: 2, mca: 2, burstMca: 4, burstMs: 1_000, cooldownMs: 5_000 } },
    steps: [
      { admit: "bursty", n: 12 },
      { dispatch: { moved: 4 } }, // the window opens
      { finishAll: true },
      { advance: 1_500 }, // window over, cooldown on
      { dispatch: { moved: 2 } }, // only mca during the cooldown
      { finishAll: true },
      { advance: 5_000 }, // cooldown over
      { dispatch: { moved: 4 } }, // a new window
    ],
  },
  {
    name: "Class A is served first and the reserve is kept for it",
    capacity: 5,
    tenants: { batch: { mca: 100 }, urgent: { weight: 2, mcaUrgent: 5 } },
    steps: [
      { admit: "batch", cls: "B", n: 10 },
      { dispatch: { moved: 4 } }, // 1 of 5 slots is the Class A reserve
      { admit: "urgent", cls: "A", n: 1 },
      { dispatch: { moved: 1, of: { urgent: 1 } } },
    ],
  },
  {
    name: "Class C is held to its share of the pool",
    capacity: 10,
    tenants: { night: { mca: 100 } },
    steps: [{ admit: "night", cls: "C", n: 20 }, { dispatch: { moved: 5 } }], // batchMaxShare 50% of 10
  },
  {
    name: "a paused tenant's work stays queued, and moves once it is resumed",
    capacity: 10,
    tenants: { sleepy: { mca: 3, paused: true } },
    steps: [
      { admit: "sleepy", n: 2 },
      { dispatch: { moved: 0 } },
      { caps: "sleepy", set: { paused: false } },
      { dispatch: { moved: 2, of: { sleepy: 2 } } },
    ],
  },
  {
    name: "equal-weight tenants get one slot each before anyone gets a second (least recently served)",
    capacity: 3,
    tenants: { f1: { mca: 5 }, f2: { mca: 5 }, f3: { mca: 5 } },
    steps: [
      { admit: "f1", n: 5 },
      { admit: "f2", n: 5 },
      { admit: "f3", n: 5 },
      { dispatch: { moved: 2, tenants: 2 } }, // 3 slots less 1 reserved for Class A: one each
    ],
  },
  {
    name: "a tenant back from 10 idle minutes gets its fair share, not the whole pool",
    capacity: 10, // 9 general slots
    shares: { batchMaxShare: 1 },
    tenants: { busy1: { weight: 2, mca: 50 }, busy2: { weight: 2, mca: 50 }, back: { weight: 2, mca: 50 } },
    steps: [
      { admit: "back", cls: "C", n: 3 },
      { admit: "busy1", cls: "C", n: 200 },
      { admit: "busy2", cls: "C", n: 200 },
      { ticks: 1, runMs: 60_000, tally: "warm-up" },
      { ticks: 10, runMs: 60_000, tally: "idle" }, // ten minutes in which only busy1 and busy2 have work
      { admit: "back", cls: "C", n: 100 },
      { ticks: 1, runMs: 60_000, tally: "first" },
      { ticks: 9, runMs: 60_000, tally: "rest" },
      {
        check: (t) => {
          // It starts level with the others' frontier: at most one of their runs ahead (their runs
          // in flight are charged already), never ten minutes ahead.
          assert.ok((t.first!.back ?? 0) <= 4, `first round back: ${JSON.stringify(t.first)}`);
          for (const x of ["busy1", "busy2", "back"]) within((t.first![x] ?? 0) + (t.rest![x] ?? 0), 30, 3, `${x}, a third each`);
        },
      },
    ],
  },
  {
    name: "slot-time is charged, not starts: a tenant of 10x longer runs gets a tenth of the starts",
    capacity: 9, // 8 general slots
    tenants: { quick: { weight: 2, mca: 50 }, slow: { weight: 2, mca: 50 } },
    steps: [
      { admit: "quick", n: 3_000 },
      { admit: "slow", n: 300 },
      { ticks: 400, tickMs: 100, runMs: { quick: 100, slow: 1_000 }, tally: "starts" },
      {
        check: ({ starts }) => {
          const ratio = starts!.quick! / starts!.slow!;
          assert.ok(ratio >= 9 && ratio <= 11, `starts quick / slow ${ratio.toFixed(2)} (${JSON.stringify(starts)})`);
        },
      },
    ],
  },
  {
    // A call reads a ready set's first members once (up to 32: includes/headWindow.lua) and keeps them as it
    // serves: here 40 tenants, one of them weighted 8 (served again and again from inside the window), the
    // others taking turns behind it; each call moves more workflows than the window holds.
    name: "more ready tenants than a call reads of a ready set at once: the same order as the whole set",
    capacity: 300,
    tenants: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`many${i}`, { weight: i === 7 ? 8 : 1 + (i % 3), mca: 50 }])),
    steps: [
      ...Array.from({ length: 40 }, (_, i): Step => ({ admit: `many${i}`, n: i === 7 ? 40 : 5 })),
      { dispatch: { moved: 100 }, maxMoves: 100 },
      { dispatch: { moved: 60 }, maxMoves: 60 },
      { finishAll: true },
      { dispatch: { moved: 75 }, maxMoves: 100 },
    ],
  },
];
