import { setTimeout as sleep } from "node:timers/promises";
import { defineWorkflow } from "./registry.ts";

/**
 * `noop`: returns after `payload.durationMs` (default 0), or as soon as its
 * signal fires (deadline, cancel, preemption). The synthetic workload of the
 * benchmarks and drills.
 */
export const noop = defineWorkflow("noop", async (ctx) => {
  const ms = Number(ctx.payload.durationMs ?? 0);
  if (ms > 0) await sleep(ms, undefined, { signal: ctx.signal }).catch(() => undefined);
  return { sleptMs: ms, aborted: ctx.signal.aborted ? String(ctx.signal.reason) : null };
});
