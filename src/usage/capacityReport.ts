import type { UsageRollups } from "./usageRollup.ts";
import { emptyEvidence } from "./usageRollup.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { DEFAULT_RECOMMEND, formatSpan, recommend, type RecommendOptions, type TenantRecommendation } from "./recommend.ts";

/**
 * The capacity report (GET /v1/admin/capacity-report?window=, `fairlane capacity`):
 * every tenant's recommendation over the window, from the recorded 10-minute
 * rollups (src/usage/usageRollup.ts). Raises first, then lowers.
 * `enoughData` is false while any tenant has been observed for less than
 * `minEvidence` (FAIRLANE_CAPACITY_MIN_EVIDENCE); those tenants get no raise or
 * lower, only what is known, and `note` says so in one line.
 */
export interface CapacityReport {
  window: string;
  from: string;
  to: string;
  periods: number;
  /** The minimum evidence window, e.g. "24h". */
  minEvidence: string;
  enoughData: boolean;
  /** Present when some tenant's data is below the minimum: why there is no recommendation. */
  note?: string;
  tenants: TenantRecommendation[];
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MAX_WINDOW_MS = 7 * UNIT_MS.d;

/** "30s", "90m", "6h", "7d" -> ms, or undefined. Pure. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d{1,5})([smhd])$/.exec(s);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

/** "90m", "6h", "7d" -> ms, or an error message naming the rule. Pure. */
export function parseWindow(s: string): { ms: number } | { error: string } {
  const m = /^([1-9]\d{0,4})([mhd])$/.exec(s);
  if (!m) return { error: 'window must be a number and a unit m, h or d, e.g. "1h", "24h", "7d"' };
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_WINDOW_MS) return { error: "window must be at most 7d (rollups are kept 8 days)" };
  return { ms };
}

export interface CapacityReportOptions extends RecommendOptions {
  /** minEvidenceMs as configured, for the report to show. */
  minEvidence: string;
}

export const DEFAULT_REPORT: CapacityReportOptions = { ...DEFAULT_RECOMMEND, minEvidence: "20h" };

const rank = (r: TenantRecommendation) =>
  r.mca.action === "raise" || r.mctc.action === "raise" ? 0 : r.mca.action === "lower" || r.mctc.action === "lower" ? 1 : 2;

export async function capacityReport(
  rollups: UsageRollups,
  entries: TenantEntry[],
  window: string,
  windowMs: number,
  now: number,
  o: CapacityReportOptions = DEFAULT_REPORT,
): Promise<CapacityReport> {
  const from = now - windowMs;
  const cells = [...new Set(["default", ...entries.map((e) => e.policy.cell)])];
  const { evidence, periods } = await rollups.read(cells, from, now);
  const tenants = entries
    .map((e) => recommend(e.tenant, evidence.get(e.tenant) ?? emptyEvidence(), { mca: e.policy.mca, mctc: e.policy.mctc }, o))
    .sort((a, b) => rank(a) - rank(b) || a.tenant.localeCompare(b.tenant));
  const thin = tenants.filter((t) => !t.enoughData);
  const most = Math.max(0, ...thin.map((t) => t.evidence.observedMs));
  const note = !thin.length
    ? undefined
    : windowMs < o.minEvidenceMs
      ? `not enough data: the window ${window} is shorter than the minimum evidence ${o.minEvidence} (FAIRLANE_CAPACITY_MIN_EVIDENCE); showing what is known, recommending nothing`
      : `not enough data for ${thin.length} of ${tenants.length} tenants: at most ${formatSpan(most)} observed, need ${o.minEvidence} (FAIRLANE_CAPACITY_MIN_EVIDENCE); they get no raise or lower, only what is known`;
  return {
    window,
    from: new Date(from).toISOString(),
    to: new Date(now).toISOString(),
    periods,
    minEvidence: o.minEvidence,
    enoughData: !thin.length,
    ...(note ? { note } : {}),
    tenants,
  };
}
