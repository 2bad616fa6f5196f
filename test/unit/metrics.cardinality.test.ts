import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { metrics, registry, setGateQueueDepthSource, TENANT_METRICS } from "../../src/observability/metrics.ts";
import { tenantLabel, tenantLabels } from "../../src/observability/tenantLabel.ts";
import { TIERS, type PolicySpec, type Tier } from "../../src/tenancy/policy.ts";
import { assertPromtoolClean, promtoolCheckMetrics } from "../helpers/promtool.ts";
import { tenantSource as source } from "../helpers/tenantSource.ts";

/**
 * The cardinality bound of docs/observability.md, measured: every tenant-labelled
 * metric is driven with every label value it can take (the worst case), for 10,000
 * tenants, through tenantLabel() as the recording sites call it, and the series
 * in the /metrics text are counted.
 */
const CLASSES = ["A", "B", "C"] as const;
const TOOL_OUTCOMES = [
  "ok",
  "THROTTLED",
  "RATE_LIMITED",
  "DEADLINE_EXCEEDED",
  "BUDGET_EXCEEDED",
  "TOOL_NOT_ALLOWED",
  "TOOL_ERROR",
  "ABORTED",
  "UNKNOWN_TOOL",
  "PARKED",
  "INTERNAL",
];
const RUN_OUTCOMES = [
  "completed",
  "parked",
  "CANCELLED",
  "DEADLINE_EXCEEDED",
  "BUDGET_EXCEEDED",
  "RATE_LIMITED",
  "TOOL_NOT_ALLOWED",
  "THROTTLED",
  "WORKFLOW_ERROR",
  "UNKNOWN_WORKFLOW_TYPE",
];
const ADMISSION_OUTCOMES = ["accepted", "duplicate", "backpressure_tenant", "backpressure_platform", "budget_exceeded"];
const PHASES = ["queue_wait", "gate_wait", "tool"];

/** What every recording site does for one tenant, with every outcome it can report. */
function driveTenant(t: string, tier: Tier): void {
  const tenant = tenantLabel(t, tier);
  for (const cls of CLASSES) {
    for (const outcome of ADMISSION_OUTCOMES) metrics.admissions.inc({ tenant, class: cls, outcome });
    for (const outcome of RUN_OUTCOMES) metrics.runs.inc({ tenant, class: cls, outcome });
    metrics.enqueueToStartByTenant.observe({ tenant, class: cls }, 0.2);
  }
  metrics.admissions.inc({ tenant, class: "none", outcome: "invalid" });
  metrics.poolWait.observe({ tenant }, 0.003);
  for (const phase of PHASES) metrics.deadlinePhase.inc({ tenant, phase }, 0.1);
  for (const outcome of TOOL_OUTCOMES) metrics.toolCalls.inc({ tenant, outcome });
  metrics.toolCallsInFlight.inc({ tenant });
  metrics.toolCallsInFlight.dec({ tenant });
  if (tenant === t) metrics.toolCallCeiling.set({ tenant }, 10);
  metrics.gateWait.observe({ tenant }, 0.05);
}

const tenantMetricNames = new Set(TENANT_METRICS.map((m) => (m as unknown as { name: string }).name));
const family = (line: string) => line.split(/[{ ]/)[0]!.replace(/_(bucket|sum|count)$/, "");

async function scrape(): Promise<{ text: string; total: number; tenantSeries: number; tenantValues: Set<string> }> {
  const text = await registry.metrics();
  const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
  const tenantSamples = samples.filter((l) => tenantMetricNames.has(family(l)));
  const tenantValues = new Set(tenantSamples.map((l) => /tenant="([^"]*)"/.exec(l)?.[1] ?? ""));
  return { text, total: samples.length, tenantSeries: tenantSamples.length, tenantValues };
}

async function measure(n: number, cap: number): Promise<Awaited<ReturnType<typeof scrape>>> {
  registry.resetMetrics();
  const specs: Record<string, PolicySpec> = {};
  const tiers = new Map<string, Tier>();
  for (let i = 0; i < n; i++) {
    const tier = TIERS[i % 3]!;
    specs[`tenant-${String(i).padStart(5, "0")}`] = { tier };
    tiers.set(`tenant-${String(i).padStart(5, "0")}`, tier);
  }
  tenantLabels.configure(cap);
  tenantLabels.bind(source(specs, `v${n}-${cap}`));
  for (const [t, tier] of tiers) driveTenant(t, tier);
  // Gate queue depth and parked-by-tenant are refreshed whole, for every tenant.
  setGateQueueDepthSource(async () => new Map([...tiers.keys()].map((t) => [t, 1])));
  metrics.parkedByTenant.reset();
  for (const t of tiers.keys()) metrics.parkedByTenant.set({ tenant: t }, 2);
  return scrape();
}

/** Series per tenant label value when every outcome occurs (docs/observability.md). */
const PER_OWN = 16 + 30 + 9 + 30 + 3 + 11 + 1 + 1 + 13 + 1 + 1; // 116
const PER_AGGREGATE = PER_OWN - 1; // no mctc ceiling for an aggregate

describe("metric cardinality with 10,000 tenants", () => {
  it("stays within (cap + 4) × per-tenant series, however many tenants there are", async () => {
    const small = await measure(1_000, 100);
    const large = await measure(10_000, 100);
    console.log(
      JSON.stringify({
        tenants1000: { total: small.total, tenantSeries: small.tenantSeries },
        tenants10000: { total: large.total, tenantSeries: large.tenantSeries, labelValues: large.tenantValues.size },
      }),
    );
    assert.equal(large.tenantValues.size, 100 + 3, "100 own labels and _other_<tier> for three tiers");
    assert.equal(large.tenantSeries, 100 * PER_OWN + 3 * PER_AGGREGATE, "every series accounted for");
    assert.ok(large.tenantSeries <= 100 * PER_OWN + 4 * PER_AGGREGATE, "the documented bound");
    assert.equal(large.tenantSeries, small.tenantSeries, "10× the tenants, not one series more");
    assert.ok(large.total - large.tenantSeries < 500, `the untenanted series are a small fixed set (${large.total - large.tenantSeries})`);

    // Enterprise tenants rank first and fill all 100 labels: every free tenant (i % 3 == 0) is in _other_free.
    const freeTenants = Math.ceil(10_000 / 3);
    assert.match(
      large.text,
      new RegExp(`fairlane_tool_calls_total\\{tenant="_other_free",outcome="ok"\\} ${freeTenants}\n`),
      "an aggregate counts its tenants' events",
    );
    assert.match(large.text, new RegExp(`fairlane_tool_gate_queue_depth\\{tenant="_other_free"\\} ${freeTenants}\n`), "gate depths add up");
    assert.match(
      large.text,
      new RegExp(`fairlane_parked_by_tenant\\{tenant="_other_free"\\} ${2 * freeTenants}\n`),
      "parked counts add up",
    );
  });

  it("scales with the cap, not the tenant count", async () => {
    const r = await measure(10_000, 10);
    assert.equal(r.tenantSeries, 10 * PER_OWN + 3 * PER_AGGREGATE);
  });

  it("the 10,000-tenant output passes Prometheus' own parser (promtool), when installed", async (t) => {
    const r = await measure(10_000, 100);
    const check = promtoolCheckMetrics(r.text);
    if (!check) return t.skip("promtool not installed (apt-get install prometheus)");
    assertPromtoolClean(check.status, check.output);
  });
});
