import type { UsageRollups } from "../observability/usageRollup.ts";
import { emptyEvidence } from "../observability/usageRollup.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { recommend, type TenantRecommendation } from "./recommend.ts";

/**
 * The capacity report (GET /v1/admin/capacity-report?window=, `fairlane capacity`):
 * every tenant's recommendation over the window, from the recorded 10-minute
 * rollups (src/observability/usageRollup.ts). Raises first, then lowers.
 */
export interface CapacityReport {
  window: string;
  from: string;
  to: string;
  periods: number;
  tenants: TenantRecommendation[];
}

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MAX_WINDOW_MS = 7 * UNIT_MS.d;

/** "90m", "6h", "7d" -> ms, or an error message naming the rule. Pure. */
export function parseWindow(s: string): { ms: number } | { error: string } {
  const m = /^([1-9]\d{0,4})([mhd])$/.exec(s);
  if (!m) return { error: 'window must be a number and a unit m, h or d, e.g. "1h", "24h", "7d"' };
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_WINDOW_MS) return { error: "window must be at most 7d (rollups are kept 8 days)" };
  return { ms };
}

const rank = (r: TenantRecommendation) => (r.mca.action === "raise" || r.mctc.action === "raise" ? 0 : r.mca.action === "lower" || r.mctc.action === "lower" ? 1 : 2);

export async function capacityReport(rollups: UsageRollups, entries: TenantEntry[], window: string, windowMs: number, now: number): Promise<CapacityReport> {
  const from = now - windowMs;
  const cells = [...new Set(["default", ...entries.map((e) => e.policy.cell)])];
  const { evidence, periods } = await rollups.read(cells, from, now);
  const tenants = entries
    .map((e) => recommend(e.tenant, evidence.get(e.tenant) ?? emptyEvidence(), { mca: e.policy.mca, mctc: e.policy.mctc }))
    .sort((a, b) => rank(a) - rank(b) || a.tenant.localeCompare(b.tenant));
  return { window, from: new Date(from).toISOString(), to: new Date(now).toISOString(), periods, tenants };
}
