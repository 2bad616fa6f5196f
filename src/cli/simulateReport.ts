import type { SimResult, SimTenantResult } from "../dispatch/simulator.ts";
import { jainIndex } from "../dispatch/policy/fairness.ts";
import { poolShares } from "../dispatch/policy/shares.ts";
import { formatPairs, formatTable } from "./table.ts";
import type { Scenario, ScenarioTenant } from "./simulateScenario.ts";

/**
 * What `npm run simulate` prints, pure: a row per tenant, or — past
 * ROWS_LIMIT tenants, where a row each would bury the answer — a row per group
 * of tenants with the same weight, class and cap plus the worst 10; then the
 * summary (Jain's index, worst share, pool use, simulated vs wall time).
 * `--json` prints jsonReport instead, for scripts.
 */
export const ROWS_LIMIT = 30;

export interface Run {
  scenario: Scenario;
  result: SimResult;
  /** Wall-clock time simulate() took. */
  wallMs: number;
}

/** 0, 850ms, 45s, 12.5m, 1.25h: run and wait times, and slot-time (slot-ms). */
export function formatMs(ms: number): string {
  const fixed = (x: number, digits: number) => x.toFixed(digits).replace(/\.?0+$/, "");
  if (ms === 0) return "0";
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${fixed(ms / 1_000, 1)}s`;
  if (ms < 3_600_000) return `${fixed(ms / 60_000, 1)}m`;
  return `${fixed(ms / 3_600_000, 2)}h`;
}

export const formatShare = (share: number | null) => (share === null ? "-" : `${share.toFixed(2)}×`);

/** The cap that bounds the tenant's class: mcaUrgent for Class A, else mca, "→burst" when it may burst. */
export function capLabel(t: ScenarioTenant): string {
  if (t.cls === "A") return String(t.mcaUrgent);
  return t.burst.mca > t.mca && t.burst.seconds > 0 ? `${t.mca}→${t.burst.mca}` : String(t.mca);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const TENANT_HEADERS = ["TENANT", "CLASS", "WEIGHT", "CAP", "STARTS", "MAX RUN", "SLOT-TIME", "BACKLOGGED", "SHARE", "P50", "P95", "P99"];
const TENANT_RIGHT = [false, false, true, true, true, true, true, true, true, true, true, true];

function tenantRow(t: ScenarioTenant, r: SimTenantResult, forMs: number): string[] {
  const lat = (p: "p50" | "p95" | "p99") => (r.latency ? formatMs(r.latency[p]) : "-");
  return [
    t.name,
    t.cls,
    String(t.weight),
    capLabel(t),
    r.starts.toLocaleString("en-US"),
    String(r.maxRunning),
    formatMs(r.slotMs),
    `${Math.round((100 * r.backloggedMs) / forMs)}%`,
    formatShare(r.share),
    lat("p50"),
    lat("p95"),
    lat("p99"),
  ];
}

/** How its work comes: "backlog", "5,000 at once", "2.78/s", "5,000 at 2.78/s"; then each run's duration. */
export function workLabel(t: ScenarioTenant): string {
  const jobs = t.jobs === null ? null : t.jobs.toLocaleString("en-US");
  const how = t.rate === null ? (jobs === null ? "backlog" : `${jobs} at once`) : jobs === null ? `${t.rate}/s` : `${jobs} at ${t.rate}/s`;
  const d = t.durationMs;
  return `${how}, ${typeof d === "number" ? formatMs(d) : `${formatMs(d[0])}-${formatMs(d[1])}`} runs`;
}

function groupTable(run: Run): string {
  // Tenants alike in all but name and arrival time; a file's groups (count: n) come out as one each.
  const groups = new Map<string, ScenarioTenant[]>();
  for (const t of run.scenario.tenants) {
    const key = `weight ${t.weight} · ${t.cls} · cap ${capLabel(t)} · ${workLabel(t)}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const rows = [...groups].map(([key, ts]) => {
    const rs = ts.map((t) => run.result.tenants[t.name]!);
    const shares = rs.flatMap((r) => (r.share === null ? [] : [r.share]));
    const lats = rs.flatMap((r) => (r.latency ? [r.latency] : []));
    const lat = (f: () => number) => (lats.length ? formatMs(f()) : "-");
    return [
      key,
      String(ts.length),
      rs.reduce((s, r) => s + r.starts, 0).toLocaleString("en-US"),
      shares.length ? formatShare(Math.min(...shares)) : "-",
      shares.length ? formatShare(median(shares)) : "-",
      shares.length ? formatShare(Math.max(...shares)) : "-",
      lat(() => median(lats.map((l) => l.p50))),
      lat(() => median(lats.map((l) => l.p95))),
      lat(() => Math.max(...lats.map((l) => l.p99))),
    ];
  });
  return formatTable(["GROUP", "TENANTS", "STARTS", "SHARE MIN", "MEDIAN", "MAX", "P50 (MEDIAN)", "P95 (MEDIAN)", "P99 (WORST)"], rows, [
    false,
    true,
    true,
    true,
    true,
    true,
    true,
    true,
    true,
  ]);
}

export function textReport(run: Run, all: boolean): string {
  const { scenario: s, result } = run;
  const byName = new Map(s.tenants.map((t) => [t.name, t]));
  const rowsOf = (names: string[]) =>
    formatTable(
      TENANT_HEADERS,
      names.map((n) => tenantRow(byName.get(n)!, result.tenants[n]!, s.forMs)),
      TENANT_RIGHT,
    );
  const out: string[] = [];
  const title = `${s.tenants.length} tenant${s.tenants.length === 1 ? "" : "s"} on ${s.slots} slots for ${formatMs(s.forMs)} (${s.source}, seed ${s.seed})`;
  if (all || s.tenants.length <= ROWS_LIMIT) out.push(`${title}\n\n${rowsOf(s.tenants.map((t) => t.name))}`);
  else {
    // The lowest shares first; tenants never backlogged have no share and are left out.
    const worst = s.tenants
      .map((t) => t.name)
      .filter((n) => result.tenants[n]!.share !== null)
      .sort((a, b) => result.tenants[a]!.share! - result.tenants[b]!.share!)
      .slice(0, 10);
    out.push(`${title}, by group (--all for every tenant)\n\n${groupTable(run)}`);
    if (worst.length) out.push(`${worst.length === 1 ? "the lowest share" : `the ${worst.length} lowest shares`}\n\n${rowsOf(worst)}`);
  }
  out.push(summary(run));
  return out.join("\n");
}

/**
 * Jain's index over the tenants backlogged at least half the simulated time,
 * as the dashboard counts (weightedSlotFairness). A tenant backlogged only now
 * and then was waiting for a run to end somewhere so a slot would free — runs
 * are not preempted — and holds little while it waits, so its share is low
 * however fair the rule; its latencies say more.
 */
export function mostlyBacklogged(run: Run): { jain: number | null; tenants: number } {
  const xs = Object.values(run.result.tenants).flatMap((t) =>
    t.share !== null && t.backloggedMs * 2 >= run.scenario.forMs ? [t.share] : [],
  );
  return { jain: jainIndex(xs), tenants: xs.length };
}

function summary(run: Run): string {
  const { scenario: s, result, wallMs } = run;
  const counted = Object.values(result.tenants).filter((t) => t.share !== null).length;
  const mostly = mostlyBacklogged(run);
  const starts = Object.values(result.tenants).reduce((n, t) => n + t.starts, 0);
  const used = Object.values(result.tenants).reduce((n, t) => n + t.slotMs, 0) / (s.slots * s.forMs);
  const { reserveA, minC, maxC } = poolShares(s.slots, s.shares);
  return formatPairs([
    [
      "Jain's index of shares",
      result.jain === null
        ? "- (no tenant was ever backlogged)"
        : `${result.jain.toFixed(4)} over ${counted} backlogged tenant${counted === 1 ? "" : "s"} (1 = every one got its entitlement)`,
    ],
    ...(mostly.tenants < counted
      ? ([
          [
            "  backlogged ≥ half the time",
            `${mostly.jain === null ? "-" : mostly.jain.toFixed(4)} over ${mostly.tenants} (as the dashboard counts); the other ${counted - mostly.tenants} mostly waited for a slot to free: read their latencies`,
          ],
        ] as [string, string][])
      : []),
    ["worst share", result.worst ? `${formatShare(result.worst.share)} (${result.worst.tenant})` : "-"],
    [
      "pool",
      `${s.slots} slots: ${reserveA} reserved for Class A, Class C ${minC} to ${maxC}; ${(used * 100).toFixed(1)}% of slot-time used`,
    ],
    [
      "simulated",
      `${formatMs(s.forMs)}, ${starts.toLocaleString("en-US")} starts, in ${(wallMs / 1000).toFixed(2)}s of wall time (${Math.round(s.forMs / Math.max(wallMs, 1)).toLocaleString("en-US")}× real time)`,
    ],
  ]);
}

/** The whole run for scripts: the scenario as understood (a backlog that never ends: jobs null), the simulator's result as is, wall time. */
export function jsonReport(run: Run): string {
  const { source, slots, forMs, seed, shares, tenants } = run.scenario;
  const scenario = {
    source,
    slots,
    forMs,
    seed,
    shares,
    tenants: Object.fromEntries(tenants.map(({ name, cls, ...t }) => [name, { class: cls, ...t }])),
  };
  return (
    JSON.stringify({ scenario, result: run.result, mostlyBacklogged: mostlyBacklogged(run), wallMs: Math.round(run.wallMs) }, null, 2) +
    "\n"
  );
}
