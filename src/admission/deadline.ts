import type { WorkflowClass } from "../../queues/keys.ts";

/**
 * A workflow's absolute deadline (DESIGN.md, "Deadlines"). Pure.
 * Class A and B: min(producer's deadlineAt, admission + tier run budget).
 * Class C: the run budget starts at dispatch, so without a producer deadline
 * there is none yet (null); `atDispatch` fixes it then. A deadline only ever
 * shrinks.
 */
export function deadlineAtAdmission(cls: WorkflowClass, now: number, runBudgetMs: number, requested: number | undefined): number | null {
  if (cls === "C") return requested ?? null;
  const budget = now + runBudgetMs;
  return requested === undefined ? budget : Math.min(requested, budget);
}

export function deadlineAtDispatch(current: number | null, dispatchedAt: number, runBudgetMs: number): number {
  const budget = dispatchedAt + runBudgetMs;
  return current === null ? budget : Math.min(current, budget);
}
