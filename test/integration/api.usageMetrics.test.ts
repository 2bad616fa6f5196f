import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * The dashboard's per-tenant state on /metrics: the busiest tenants get their
 * own label (FAIRLANE_METRICS_TOP_TENANTS, default 100), the rest are summed
 * under tenant="_other", so totals stay exact and series stay bounded.
 */
describe("per-tenant usage gauges on /metrics", () => {
  let api: TestApi;
  const N = 130;
  const tenants: Record<string, PolicySpec> = Object.fromEntries(
    Array.from({ length: N }, (_, i) => [`t${String(i).padStart(3, "0")}`, { tier: "free" }]),
  );
  before(async () => {
    api = await startTestApi(tenants);
  });
  after(async () => {
    await api.stop();
  });

  it("labels at most 100 tenants and sums the rest into _other, with exact totals", async () => {
    // No dispatcher runs: each tenant's workflows stay queued. t000 gets 3 (the busiest), the others 1.
    for (const [i, t] of Object.keys(tenants).entries())
      await api.platform.admission.admitBulk(
        t,
        Array.from({ length: i === 0 ? 3 : 1 }, () => ({ type: "noop", class: "B" })),
        "0".repeat(32),
      );
    let text = "";
    for (let i = 0; i < 50; i++) {
      text = await (await fetch(`${api.base}/metrics`, { headers: { authorization: `Bearer ${api.adminToken}` } })).text();
      // The gauges serve the api's usage sample, at most one tick (1 s) old.
      if (text.includes('fairlane_tenant_queued{tenant="t000",class="B"} 3')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const queued = [...text.matchAll(/^fairlane_tenant_queued\{tenant="([^"]+)",class="B"\} (\d+)$/gm)].map((m) => ({
      tenant: m[1]!,
      n: Number(m[2]),
    }));
    assert.equal(queued.length, 101, "100 own labels and _other");
    assert.equal(
      queued.reduce((s, q) => s + q.n, 0),
      N + 2,
      "the sum over all series is every queued workflow",
    );
    assert.equal(queued.find((q) => q.tenant === "t000")?.n, 3, "the busiest tenant has its own label");
    assert.equal(queued.find((q) => q.tenant === "_other")?.n, N - 100);
    assert.match(text, /^fairlane_tenant_mca\{tenant="t000"\} 3$/m);
    assert.match(text, /^fairlane_pool_capacity\{cell="default",pool="default"\} 0$/m);
    const tenantSeries = text.split("\n").filter((l) => l.startsWith("fairlane_tenant_") && l.includes("tenant="));
    assert.ok(tenantSeries.length <= 101 * 16, `${tenantSeries.length} tenant series`);
  });
});
