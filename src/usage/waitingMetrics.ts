import { Gauge } from "prom-client";
import { REASON_CODES } from "../dispatch/policy/explain.ts";
import type { SampledUsage } from "./usageSampler.ts";
import type { UsageSnapshot } from "./usageSnapshot.ts";
import { registry } from "../observability/metrics.ts";

/**
 * `fairlane_waiting_workflows{reason}`: queued workflows by what holds them,
 * each tenant's queued count per class under its class's reason code
 * (src/dispatch/policy/explain.ts; TenantUsage.waitingBy), read at scrape
 * time from the api process's usage sampler like usageMetrics.ts. One series
 * per reason code, all present (0 when none): a bounded label set whatever the
 * tenant count. The per-workflow extras (its own down dependency, a near
 * deadline) are not in it: the sampler reads no single workflow.
 */
let source: ((maxAgeMs: number) => Promise<SampledUsage>) | undefined;

/** The api process hands its sampler over (next to setUsageSource). */
export function setWaitingSource(fn: ((maxAgeMs: number) => Promise<SampledUsage>) | undefined): void {
  source = fn;
}

const waiting = new Gauge<"reason">({
  name: "fairlane_waiting_workflows",
  help: "Queued workflows by the constraint holding their tenant's class (tenant_mca, class_c_share, pool_full, paused, no_worker, turn, ...)",
  labelNames: ["reason"],
  registers: [registry],
  collect,
});

/** Sums every tenant's queued workflows by reason (pure; exported for tests). */
export function waitingByReason(s: Pick<UsageSnapshot, "tenants">): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(REASON_CODES.map((c) => [c, 0]));
  for (const t of s.tenants) for (const [code, n] of Object.entries(t.waitingBy ?? {})) out[code] = (out[code] ?? 0) + (n ?? 0);
  return out;
}

let filling: Promise<void> | undefined;
async function collect(): Promise<void> {
  if (!source) return;
  filling ??= source(2_000)
    .then((u) => {
      waiting.reset();
      for (const [reason, n] of Object.entries(waitingByReason(u.snapshot))) waiting.set({ reason }, n);
    })
    .catch(() => undefined)
    .finally(() => (filling = undefined));
  await filling;
}
