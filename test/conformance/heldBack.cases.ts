/**
 * Whether a queued workflow is held back at dispatch (parked instead of
 * started) because a dependency its type declares is down, and which one: the
 * first declared, in order, whose operator mark is "down", or whose probe
 * signal is "down" while no operator mark says "healthy". Two homes:
 * downDependency in queues/lua/dispatch-18.lua, which decides, and
 * readHealth + firstDown in src/workflows/explainRead.ts, which tell an
 * operator why a workflow waits. test/conformance/heldBack.test.ts writes each
 * row into Redis and asks both.
 *
 * Per declared dependency: `mark` is the operator's override state, `probe`
 * the probe/passive signal's state; absent means no such hash.
 */
export type Signal = { mark?: "down" | "healthy" | "degraded"; probe?: "unknown" | "healthy" | "degraded" | "down" };

export interface HeldBackCase {
  name: string;
  /** The type's declared dependencies, in declared order. */
  deps: Signal[];
  /** Index in `deps` of the dependency that holds it back, or null: it starts. */
  expected: number | null;
}

export const HELD_BACK_CASES: HeldBackCase[] = [
  { name: "a dependency whose probe says down holds the workflow back", deps: [{ probe: "down" }], expected: 0 },
  { name: "a degraded dependency does not: only down holds back at dispatch", deps: [{ probe: "degraded" }], expected: null },
  { name: "a dependency whose first probe is under way does not", deps: [{ probe: "unknown" }], expected: null },
  { name: "a dependency with no signal at all does not (no evidence of an outage)", deps: [{}], expected: null },
  { name: "an operator's down mark holds back even while probes say healthy", deps: [{ mark: "down", probe: "healthy" }], expected: 0 },
  { name: "an operator's down mark holds back with no probe signal", deps: [{ mark: "down" }], expected: 0 },
  { name: "an operator's healthy mark wins over a probe's down", deps: [{ mark: "healthy", probe: "down" }], expected: null },
  { name: "an operator mark other than healthy does not hide a probe's down", deps: [{ mark: "degraded", probe: "down" }], expected: 0 },
  {
    name: "the first declared dependency that is down is the one named",
    deps: [{ probe: "healthy" }, { probe: "down" }, { mark: "down" }],
    expected: 1,
  },
  { name: "a type that declares no dependency is never held back", deps: [], expected: null },
];
