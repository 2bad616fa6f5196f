import { Gauge } from "prom-client";
import type { NoisyReport } from "./noisyNeighbour.ts";
import type { TenantUsage, UsageSnapshot } from "./usageSnapshot.ts";
import type { Fairness, SampledUsage } from "./usageSampler.ts";
import { registry } from "../observability/metrics.ts";

/**
 * Per-tenant *state* for Prometheus (the dashboard's columns), read at scrape
 * time from the api process's usage sampler (at most one tick old), so every
 * api process reports the same Redis truth.
 *
 * Cardinality: only the FAIRLANE_METRICS_TOP_TENANTS (default 100) busiest
 * tenants at scrape time (running + queued + parked, ties by id) get their
 * own `tenant` label; the rest are summed into `tenant="_other"`, except the
 * fair-share ratio, which is not a quantity to add: `_other` carries the
 * lowest ratio among them (a starved small tenant still shows), and the
 * noisy-neighbour flags and impact, which are not quantities to add either:
 * `_other` is flagged if any of them is, and carries their highest impact.
 * Per scrape that is at most (N + 1) × 18 tenant series, whatever the tenant count;
 * series of a tenant that left the top N are dropped (gauges are reset and
 * rebuilt at each scrape). `fairlane_tenants_at_cap` counts every tenant.
 *
 * Only the api role serves these (it runs the sampler); other roles' /metrics
 * carry the event metrics of src/observability/metrics.ts.
 */
const TOP = Math.max(1, Number(process.env.FAIRLANE_METRICS_TOP_TENANTS ?? 100) || 100);
export const OTHER = "_other";

let source: ((maxAgeMs: number) => Promise<SampledUsage>) | undefined;

/** The api process hands its sampler over; the gauges read it at each scrape. */
export function setUsageSource(fn: ((maxAgeMs: number) => Promise<SampledUsage>) | undefined): void {
  source = fn;
}

const tenantClass = ["tenant", "class"] as const;
const tenant = ["tenant"] as const;
// Every gauge's collect (run before each scrape) waits for the same fill from one snapshot.
const g = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
  new Gauge<L>({ name, help, labelNames, registers: [registry], collect });

const gauges = {
  running: g("fairlane_tenant_running", "Workflows holding a slot (dispatched or running), by tenant and class", tenantClass),
  queued: g("fairlane_tenant_queued", "Workflows waiting in ingress, by tenant and class", tenantClass),
  mca: g("fairlane_tenant_mca", "The tenant's Max Concurrent Agents (B + C)", tenant),
  burstActive: g("fairlane_tenant_burst_active", "1 while the tenant's burst window is open (it may run up to burst.mca)", tenant),
  inFlight: g("fairlane_tenant_tool_calls_in_flight", "Tool calls holding a gate permit now (every process)", tenant),
  mctc: g("fairlane_tenant_mctc", "The tenant's Max Concurrent Tool Calls", tenant),
  waiting: g("fairlane_tenant_tool_calls_waiting", "Tool calls waiting for a gate permit", tenant),
  throttled: g("fairlane_tenant_throttled_per_minute", "THROTTLED answers per minute over the sampler's window", tenant),
  parked: g("fairlane_tenant_parked", "Workflows parked (pending-backpressure)", tenant),
  atCap: g("fairlane_tenant_at_cap", "1 while the tenant runs at its mca, urgent or mctc cap", tenant),
  fairShare: g(
    "fairlane_tenant_fair_share_ratio",
    "Slot-time received ÷ capped weighted fair share over the last minute, counted only while the tenant was backlogged (1 = its fair share); only tenants with a ratio; _other is the lowest among the unlabelled",
    tenant,
  ),
  noisy: g(
    "fairlane_tenant_noisy",
    "1 while the tenant holds well above its fair share of a full pool while others wait (noisyNeighbour.ts); absent otherwise",
    tenant,
  ),
  isolationIncomplete: g(
    "fairlane_tenant_isolation_incomplete",
    "1 while the tenant's load (slots held) moves other tenants' enqueue-to-start p99 (noisyNeighbour.ts); absent otherwise",
    tenant,
  ),
  isolationImpact: g(
    "fairlane_tenant_isolation_impact",
    "Rank correlation of the tenant's slots held with the other tenants' enqueue-to-start p99 over the last minute; only tenants that held slots",
    tenant,
  ),
  tenantsAtCap: g("fairlane_tenants_at_cap", "Tenants at a cap now (all tenants, no label)", []),
  noisyTenants: g("fairlane_noisy_tenants", "Tenants noisy now (all tenants, no label)", []),
  quietTenants: g("fairlane_quiet_tenants", "Tenants with work (running or queued) that are not noisy (all tenants, no label)", []),
  poolCapacity: g("fairlane_pool_capacity", "Slots live exec workers advertise", ["cell", "pool"] as const),
  poolUsed: g("fairlane_pool_used", "Slots held", ["cell", "pool"] as const),
  poolUsedA: g("fairlane_pool_used_class_a", "Slots held by Class A", ["cell", "pool"] as const),
  poolReserveA: g("fairlane_pool_reserve_class_a", "Slots reserved for Class A", ["cell", "pool"] as const),
  jain: g("fairlane_fairness_jain", "Jain's fairness index over backlogged tenants' weighted slot shares, last minute", []),
  worstShare: g(
    "fairlane_fairness_worst_share_ratio",
    "The lowest fair-share ratio among tenants backlogged in at least half of the last minute (the tenants Jain's index counts)",
    [],
  ),
};

const activity = (t: TenantUsage) => t.running.total + t.queued.total + t.parked;

/** The tenants that get their own label: the N busiest now (pure; exported for the cardinality test). */
export function labelledTenants(tenants: readonly TenantUsage[], n = TOP): Set<string> {
  return new Set(
    [...tenants]
      .sort((a, b) => activity(b) - activity(a) || (a.tenant < b.tenant ? -1 : 1))
      .slice(0, n)
      .map((t) => t.tenant),
  );
}

function fill(s: UsageSnapshot, fairness: Fairness, noisy: NoisyReport): void {
  for (const x of Object.values(gauges)) x.reset();
  const own = labelledTenants(s.tenants);
  const other = {
    running: { A: 0, B: 0, C: 0 },
    queued: { A: 0, B: 0, C: 0 },
    inFlight: 0,
    waiting: 0,
    throttled: 0,
    parked: 0,
    minShare: null as number | null,
  };
  let atCap = 0;
  for (const t of s.tenants) {
    if (t.atCap.any) atCap++;
    if (!own.has(t.tenant)) {
      for (const c of ["A", "B", "C"] as const) {
        other.running[c] += t.running[c];
        other.queued[c] += t.queued[c];
      }
      other.inFlight += t.tools.inFlight;
      other.waiting += t.tools.waiting;
      other.throttled += t.throttledPerMin;
      other.parked += t.parked;
      if (t.fairShare.ratio !== null) other.minShare = Math.min(other.minShare ?? Infinity, t.fairShare.ratio);
      continue;
    }
    const l = { tenant: t.tenant };
    for (const c of ["A", "B", "C"] as const) {
      gauges.running.set({ ...l, class: c }, t.running[c]);
      gauges.queued.set({ ...l, class: c }, t.queued[c]);
    }
    gauges.mca.set(l, t.mca);
    gauges.burstActive.set(l, t.burst.state === "open" ? 1 : 0);
    gauges.inFlight.set(l, t.tools.inFlight);
    gauges.mctc.set(l, t.tools.mctc);
    gauges.waiting.set(l, t.tools.waiting);
    gauges.throttled.set(l, t.throttledPerMin);
    gauges.parked.set(l, t.parked);
    gauges.atCap.set(l, t.atCap.any ? 1 : 0);
    if (t.fairShare.ratio !== null) gauges.fairShare.set(l, t.fairShare.ratio);
  }
  if (own.size < s.tenants.length) {
    const l = { tenant: OTHER };
    for (const c of ["A", "B", "C"] as const) {
      gauges.running.set({ ...l, class: c }, other.running[c]);
      gauges.queued.set({ ...l, class: c }, other.queued[c]);
    }
    gauges.inFlight.set(l, other.inFlight);
    gauges.waiting.set(l, other.waiting);
    gauges.throttled.set(l, other.throttled);
    gauges.parked.set(l, other.parked);
    if (other.minShare !== null) gauges.fairShare.set(l, other.minShare);
  }
  gauges.tenantsAtCap.set(atCap);
  fillNoisy(noisy, own, own.size < s.tenants.length);
  for (const p of s.pools) {
    const l = { cell: p.cell, pool: p.pool };
    gauges.poolCapacity.set(l, p.capacity);
    gauges.poolUsed.set(l, p.used);
    gauges.poolUsedA.set(l, p.usedA);
    gauges.poolReserveA.set(l, p.reserveA);
  }
  // No value, no series: reset() leaves an unlabelled gauge at 0, which would read as "as unfair as can be".
  if (fairness.index !== null) gauges.jain.set(fairness.index);
  else gauges.jain.remove();
  if (fairness.worst) gauges.worstShare.set(fairness.worst.ratio);
  else gauges.worstShare.remove();
}

/** The noisy-neighbour gauges: flags only while flagged, impact where it was computed; the unlabelled as one `_other`. */
function fillNoisy(n: NoisyReport, own: ReadonlySet<string>, hasOther: boolean): void {
  const l = (t: string) => ({ tenant: own.has(t) ? t : OTHER });
  for (const x of n.noisy) gauges.noisy.set(l(x.tenant), 1);
  for (const x of n.isolationIncomplete) gauges.isolationIncomplete.set(l(x.tenant), 1);
  let otherImpact: number | null = null;
  for (const [t, v] of n.impact) {
    if (own.has(t)) gauges.isolationImpact.set({ tenant: t }, v);
    else if (hasOther) otherImpact = Math.max(otherImpact ?? -1, v);
  }
  if (otherImpact !== null) gauges.isolationImpact.set({ tenant: OTHER }, otherImpact);
  gauges.noisyTenants.set(n.noisy.length);
  gauges.quietTenants.set(n.quiet);
}

let filling: Promise<void> | undefined;
async function collect(): Promise<void> {
  if (!source) return;
  filling ??= source(2_000)
    .then((u) => fill(u.snapshot, u.fairness, u.noisy))
    .catch(() => undefined)
    .finally(() => (filling = undefined));
  await filling;
}
