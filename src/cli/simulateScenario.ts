import type { WorkflowClass } from "../../queues/keys.ts";
import type { SimTenant } from "../dispatch/simulator.ts";
import type { ShareOptions } from "../dispatch/policy/shares.ts";

/**
 * A simulator scenario as `npm run simulate` understands it, whichever way it
 * was described (flags here, a YAML file in simulateFile.ts): a pool, how
 * long to run it, a seed, and every tenant already expanded and named. Pure;
 * toSimTenants turns it into what simulate() takes.
 */
export interface ScenarioTenant {
  name: string;
  weight: number;
  cls: WorkflowClass;
  mca: number;
  burst: { mca: number; seconds: number; cooldownSeconds: number };
  mcaUrgent: number;
  /** How many workflows; null for a backlog that never ends. */
  jobs: number | null;
  /** Arrivals per second from atMs on; null: all of its jobs at once. */
  rate: number | null;
  /** Each run's slot-time, fixed or uniform in [min, max]. */
  durationMs: number | [number, number];
  /** When its work arrives (idle before). */
  atMs: number;
}

export interface Scenario {
  /** "flags" or the YAML file's path. */
  source: string;
  slots: number;
  forMs: number;
  seed: number;
  shares: ShareOptions;
  tenants: ScenarioTenant[];
}

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** "45s", "1.5m", "200ms", "1h" -> ms, or an error message. */
export function parseDuration(s: string): { ms: number } | { error: string } {
  const m = DURATION.exec(s.trim());
  if (!m) return { error: `"${s}" is not a duration: a number and a unit ms, s, m or h, e.g. "45s"` };
  return { ms: Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]) };
}

/**
 * "45s" or a range "30s-60s" (uniform between the two), or an error message.
 * A run's duration needs minMs 1: a run of 0 ms would end before it started.
 */
export function parseDurationRange(s: string, minMs = 0): { ms: number | [number, number] } | { error: string } {
  const parts = s.split("-");
  if (parts.length > 2) return { error: `"${s}" is not a duration or a range like "30s-60s"` };
  const ends = parts.map(parseDuration);
  for (const e of ends) if ("error" in e) return e;
  const [lo, hi] = ends.map((e) => (e as { ms: number }).ms) as [number, number?];
  if (lo < minMs) return { error: `"${s}" must be at least ${minMs}ms` };
  if (hi === undefined) return { ms: lo };
  if (hi < lo) return { error: `"${s}": the range must go from the shorter to the longer` };
  return { ms: lo === hi ? lo : [lo, hi] };
}

/** Tenant names of a generated group: prefix + index, zero-padded so they sort ("t000".."t199"). */
export function groupNames(prefix: string, count: number, minDigits = 1): string[] {
  const width = Math.max(minDigits, String(count - 1).length);
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(width, "0")}`);
}

export interface FlagScenario {
  slots: number;
  tenants: number;
  weights: number[];
  durations: (number | [number, number])[];
  mca?: number;
  burstMca?: number;
  burstSeconds: number;
  cooldownSeconds: number;
  mcaUrgent?: number;
  cls: WorkflowClass;
  jobs?: number;
  rate?: number;
  forMs: number;
  seed: number;
  shares: ShareOptions;
}

/**
 * The flags' scenario: `tenants` tenants t000.., weights and durations cycling
 * over them, the same caps and workload for all. No --mca: a cap no bigger
 * than the pool, so it never binds. With --rate, tenant i of n first sends
 * work at i/n of an interval (1/rate). Returns an error naming the flag when the
 * flags contradict each other.
 */
export function scenarioFromFlags(f: FlagScenario): Scenario | { error: string } {
  const mca = f.mca ?? f.slots;
  const burstMca = f.burstMca ?? mca;
  if (burstMca < mca) return { error: `--burst-mca (${burstMca}) must be >= --mca (${mca})` };
  if (f.shares.batchMinShare > f.shares.batchMaxShare)
    return { error: `--batch-min-share (${f.shares.batchMinShare}) must be <= --batch-max-share (${f.shares.batchMaxShare})` };
  const tenants = groupNames("t", f.tenants, 3).map(
    (name, i): ScenarioTenant => ({
      name,
      weight: f.weights[i % f.weights.length]!,
      cls: f.cls,
      mca,
      burst: { mca: burstMca, seconds: f.burstSeconds, cooldownSeconds: f.cooldownSeconds },
      mcaUrgent: f.mcaUrgent ?? mca,
      jobs: f.jobs ?? null,
      rate: f.rate ?? null,
      durationMs: f.durations[i % f.durations.length]!,
      // Arrivals at a rate are staggered over one interval: tenants in lockstep would queue behind each other at every tick.
      atMs: f.rate ? Math.round((i * 1000) / f.rate / f.tenants) : 0,
    }),
  );
  return { source: "flags", slots: f.slots, forMs: f.forMs, seed: f.seed, shares: f.shares, tenants };
}

export function toSimTenants(s: Scenario): Record<string, SimTenant> {
  return Object.fromEntries(
    s.tenants.map((t) => [
      t.name,
      {
        caps: {
          weight: t.weight,
          mca: t.mca,
          burstMca: t.burst.mca,
          burstMs: t.burst.seconds * 1000,
          cooldownMs: t.burst.cooldownSeconds * 1000,
          mcaUrgent: t.mcaUrgent,
          paused: false,
        },
        cls: t.cls,
        jobs: t.jobs ?? Infinity,
        durationMs: t.durationMs,
        atMs: t.atMs,
        ...(t.rate !== null ? { ratePerSec: t.rate } : {}),
      } satisfies SimTenant,
    ]),
  );
}
