import type { DispatchCaps } from "../../src/dispatch/policy/caps.ts";
import { jainIndex } from "../../src/dispatch/policy/fairness.ts";

export const caps = (o: Partial<DispatchCaps> = {}): Omit<DispatchCaps, "burstStart"> => ({
  weight: 1,
  mca: 1000,
  burstMca: 1000,
  burstMs: 0,
  cooldownMs: 0,
  mcaUrgent: 1000,
  paused: false,
  pools: ["default"],
  ...o,
});

/** Jain's fairness index of x: 1 when all equal, 1/n when one has everything. */
export const jain = (xs: number[]): number => jainIndex(xs) ?? 1;
