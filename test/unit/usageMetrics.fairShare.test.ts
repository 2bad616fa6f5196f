import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { assertPromtoolClean, promtoolCheckMetrics } from "../helpers/promtool.ts";
import { registry } from "../../src/observability/metrics.ts";
import { setUsageSource } from "../../src/usage/usageMetrics.ts";
import type { Fairness, SampledUsage } from "../../src/usage/usageSampler.ts";
import type { TenantUsage } from "../../src/usage/usageSnapshot.ts";

/**
 * The fair-share gauges at a scrape, from a sample handed over as the api's
 * sampler would: a ratio per labelled tenant that has one, the lowest of the
 * unlabelled ones under tenant="_other" (a ratio is not summed), and the worst.
 */
const row = (tenant: string, queued: number, ratio: number | null): TenantUsage =>
  ({
    tenant,
    mca: 3,
    burst: { state: "none", until: null },
    running: { A: 0, B: 1, C: 0, total: 1 },
    queued: { A: 0, B: queued, C: 0, total: queued },
    tools: { inFlight: 0, mctc: 10, waiting: 0 },
    throttledPerMin: 0,
    parked: 0,
    atCap: { any: false },
    fairShare: { ratio, backloggedTicks: ratio === null ? 0 : 60 },
  }) as unknown as TenantUsage;

function sample(tenants: TenantUsage[], worst: Fairness["worst"]): SampledUsage {
  return {
    snapshot: { at: 0, readMs: 0, windowMs: 60_000, tenants, pools: [], dependencies: [] },
    fairness: { index: 0.9, tenants: tenants.length, windowMs: 60_000, ticks: 60, worst },
    noisy: { windowMs: 60_000, ticks: 60, noisy: [], quiet: 0, isolationIncomplete: [], impact: new Map() },
  };
}

const series = (text: string, name: string) =>
  [...text.matchAll(new RegExp(`^${name}(?:\\{tenant="([^"]+)"\\})? (\\S+)$`, "gm"))].map((m) => ({ tenant: m[1], value: Number(m[2]) }));

describe("fair-share gauges on /metrics", () => {
  after(() => setUsageSource(undefined));

  it("labels the busiest tenants' ratios, gives _other the lowest of the rest, and exports the worst", async () => {
    // 101 busy tenants (10 queued each, so the default 100 busiest are busy-000..099) and two small ones.
    const tenants = Array.from({ length: 101 }, (_, i) => row(`busy-${String(i).padStart(3, "0")}`, 10, i === 0 ? null : 1 + i / 1000));
    tenants.push(row("small", 1, 0.3), row("quiet", 1, null));
    setUsageSource(async () => sample(tenants, { tenant: "busy-001", ratio: 1.001 }));
    const text = await registry.metrics();

    const ratios = series(text, "fairlane_tenant_fair_share_ratio");
    assert.equal(ratios.length, 99 + 1, "99 labelled tenants with a ratio (busy-000 has none) and _other");
    assert.equal(
      ratios.find((r) => r.tenant === "busy-000"),
      undefined,
      "no ratio, no series",
    );
    assert.equal(ratios.find((r) => r.tenant === "busy-042")?.value, 1.042);
    assert.equal(ratios.find((r) => r.tenant === "_other")?.value, 0.3, "the starved small tenant shows through _other");
    assert.deepEqual(series(text, "fairlane_fairness_worst_share_ratio"), [{ tenant: undefined, value: 1.001 }]);
    assert.deepEqual(series(text, "fairlane_fairness_jain"), [{ tenant: undefined, value: 0.9 }]);
    const check = promtoolCheckMetrics(text);
    if (check) assertPromtoolClean(check.status, check.output);
  });

  it("exports no ratio, no worst and no Jain's index (not a 0) when no tenant was backlogged", async () => {
    setUsageSource(async () => {
      const s = sample([row("a", 0, null)], null);
      s.fairness.index = null;
      return s;
    });
    const text = await registry.metrics();
    assert.deepEqual(series(text, "fairlane_tenant_fair_share_ratio"), []);
    assert.deepEqual(series(text, "fairlane_fairness_worst_share_ratio"), []);
    assert.deepEqual(series(text, "fairlane_fairness_jain"), []);
  });
});
