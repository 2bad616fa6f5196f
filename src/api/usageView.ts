import type { NoisyReport } from "../usage/noisyNeighbour.ts";
import type { Fairness } from "../usage/usageSampler.ts";
import type { DependencyUsage, PoolUsage, TenantUsage, UsageSnapshot } from "../usage/usageSnapshot.ts";

/** How GET /v1/admin/usage sorts and summarises a snapshot, pure. */
export const USAGE_SORTS = ["tenant", "running", "mcaUse", "tools", "toolUse", "throttled", "queued", "parked", "p99"] as const;
export type UsageSort = (typeof USAGE_SORTS)[number];

const key: Record<UsageSort, (t: TenantUsage) => number | string> = {
  tenant: (t) => t.tenant,
  running: (t) => t.running.total,
  mcaUse: (t) => (t.running.B + t.running.C) / t.mca,
  tools: (t) => t.tools.inFlight,
  toolUse: (t) => t.tools.inFlight / t.tools.mctc,
  throttled: (t) => t.throttledPerMin,
  queued: (t) => t.queued.total,
  parked: (t) => t.parked,
  p99: (t) => t.latency.p99 ?? -1,
};

export function sortUsage(rows: TenantUsage[], sort: UsageSort, order: "asc" | "desc"): TenantUsage[] {
  const k = key[sort];
  const dir = order === "asc" ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = k(a);
    const y = k(b);
    const c = x < y ? -1 : x > y ? 1 : 0;
    return c * dir || a.tenant.localeCompare(b.tenant);
  });
}

export interface PlatformSummary {
  capacity: number;
  used: number;
  reserveA: { slots: number; usedA: number };
  usedC: number;
  pools: PoolUsage[];
  fairness: Fairness;
  noisy: NoisySummary;
  dependencies: DependencyUsage[];
  totals: { tenants: number; running: number; queued: number; parked: number; throttledPerMin: number; atCap: number };
}

/**
 * The dashboard's noisy-neighbour card (src/usage/noisyNeighbour.ts):
 * `tenants` hold far more than their fair share of a full pool while others
 * wait (shares are fractions of the group's general slots, over the window's
 * contested ticks); `isolationIncomplete` are those whose load moves the
 * other tenants' enqueue→start p99 (the alert). Times are epoch ms; each list
 * is the first NOISY_LIST, `count` says how many there are.
 */
export interface NoisySummary {
  windowMs: number;
  count: number;
  quiet: number;
  tenants: { tenant: string; share: number; fairShare: number; impact: number | null; since: number }[];
  isolationIncomplete: { tenant: string; impact: number; othersP99Ms: number; baselineP99Ms: number; since: number }[];
  isolationIncompleteCount: number;
}

export const NOISY_LIST = 20;

export function noisySummary(n: NoisyReport): NoisySummary {
  return {
    windowMs: n.windowMs,
    count: n.noisy.length,
    quiet: n.quiet,
    tenants: n.noisy
      .slice(0, NOISY_LIST)
      .map((x) => ({ tenant: x.tenant, share: x.share, fairShare: x.fairShare, impact: x.impact, since: x.since })),
    isolationIncomplete: n.isolationIncomplete.slice(0, NOISY_LIST),
    isolationIncompleteCount: n.isolationIncomplete.length,
  };
}

export function platformSummary(s: UsageSnapshot, fairness: Fairness, noisy: NoisyReport): PlatformSummary {
  const sum = (f: (p: PoolUsage) => number) => s.pools.reduce((n, p) => n + f(p), 0);
  const tsum = (f: (t: TenantUsage) => number) => s.tenants.reduce((n, t) => n + f(t), 0);
  return {
    capacity: sum((p) => p.capacity),
    used: sum((p) => p.used),
    reserveA: { slots: sum((p) => p.reserveA), usedA: sum((p) => p.usedA) },
    usedC: sum((p) => p.usedC),
    pools: s.pools,
    fairness,
    noisy: noisySummary(noisy),
    dependencies: s.dependencies,
    totals: {
      tenants: s.tenants.length,
      running: tsum((t) => t.running.total),
      queued: tsum((t) => t.queued.total),
      parked: tsum((t) => t.parked),
      throttledPerMin: Math.round(tsum((t) => t.throttledPerMin) * 10) / 10,
      atCap: tsum((t) => (t.atCap.any ? 1 : 0)),
    },
  };
}
