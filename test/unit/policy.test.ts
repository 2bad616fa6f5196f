import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolvePolicy, retentionSec, TIER_DEFAULTS, trailRetentionMs } from "../../src/tenancy/policy.ts";
import { parseTenantsDocument } from "../../src/tenancy/tenantsFile.ts";
import { loadTenantsFile } from "../../src/tenancy/tenantsFile.ts";
import { loadConfig } from "../../src/lib/config.ts";

describe("tenant policy", () => {
  it("fills every field from the tier's defaults", () => {
    const r = resolvePolicy({ tier: "free" });
    assert.ok(r.ok);
    assert.equal(r.policy.mca, TIER_DEFAULTS.free.mca);
    assert.deepEqual(r.policy.deadline, { runBudgetMs: 30_000, maxIterations: 2, toolRetries: 0 });
    assert.equal(r.policy.toolQueueDepth, 3 * r.policy.mctc, "tool queue depth defaults to 3 x mctc");
  });

  it("uses seed 001's deadline budgets per tier", () => {
    const budgets = (["free", "professional", "enterprise"] as const).map((tier) => {
      const r = resolvePolicy({ tier });
      assert.ok(r.ok);
      return [r.policy.deadline.runBudgetMs, r.policy.deadline.maxIterations, r.policy.deadline.toolRetries];
    });
    assert.deepEqual(budgets, [
      [30_000, 2, 0],
      [120_000, 5, 1],
      [300_000, 10, 2],
    ]);
  });

  it("keeps overrides and merges partial nested objects", () => {
    const r = resolvePolicy({ tier: "enterprise", mca: 150, burst: { mca: 250 }, mctc: 400, deadline: { runBudgetMs: 60_000 } });
    assert.ok(r.ok);
    assert.equal(r.policy.burst.mca, 250);
    assert.equal(r.policy.burst.seconds, TIER_DEFAULTS.enterprise.burst.seconds);
    assert.equal(r.policy.deadline.runBudgetMs, 60_000);
    assert.equal(r.policy.deadline.toolRetries, 2);
    assert.equal(r.policy.toolQueueDepth, 1200);
  });

  it("scales the burst by the tier's ratio when only mca is raised", () => {
    const r = resolvePolicy({ tier: "enterprise", mca: 100 });
    assert.ok(r.ok);
    assert.equal(r.policy.burst.mca, 150);
  });

  it("refuses a burst below mca, naming the field", () => {
    const r = resolvePolicy({ tier: "enterprise", mca: 150, burst: { mca: 100 } });
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.issues.some((i) => i.field === "burst.mca" && /mca \(150\)/.test(i.message)));
  });

  it("keeps ended workflows for the deployment's record TTL unless the tenant's erasureAfterDays says otherwise", () => {
    const keep = (spec: Record<string, unknown>) => {
      const r = resolvePolicy({ tier: "professional", ...spec });
      assert.ok(r.ok);
      return [r.policy.erasureAfterDays, retentionSec(r.policy)];
    };
    assert.deepEqual(keep({}), [null, null]);
    assert.deepEqual(keep({ erasureAfterDays: 30 }), [30, 30 * 86_400]);
    assert.deepEqual(keep({ erasureAfterDays: 0.5 }), [0.5, 43_200], "fractions of a day");
    assert.deepEqual(keep({ erasureAfterDays: 1e-9 }), [1e-9, 1], "never below one second");
    assert.deepEqual(keep({ erasureAfterDays: null }), [null, null], "null: back to the deployment's");
  });

  it("sends reviews to the shared pool with no SLA unless the tenant says otherwise; a partial review spec merges", () => {
    const r = resolvePolicy({ tier: "free" });
    assert.ok(r.ok);
    assert.deepEqual(r.policy.review, { pool: "shared", slaSeconds: null, onTimeout: "fail", escalateTo: null });
    const own = resolvePolicy({
      tier: "enterprise",
      review: { pool: "bank-a", slaSeconds: 3600, onTimeout: "escalate", escalateTo: "compliance" },
    });
    assert.ok(own.ok);
    assert.deepEqual(own.policy.review, { pool: "bank-a", slaSeconds: 3600, onTimeout: "escalate", escalateTo: "compliance" });
    const partial = resolvePolicy({ tier: "professional", review: { slaSeconds: 60 } });
    assert.ok(partial.ok && partial.policy.review.pool === "shared" && partial.policy.review.slaSeconds === 60);
    for (const [review, field] of [
      [{ pool: "Bank A" }, "review.pool"],
      [{ slaSeconds: 0 }, "review.slaSeconds"],
      [{ onTimeout: "ignore" }, "review.onTimeout"],
      [{ escalateTo: "x y" }, "review.escalateTo"],
      [{ reviewers: 3 }, "review"],
    ] as const) {
      const bad = resolvePolicy({ tier: "professional", review });
      assert.ok(!bad.ok && bad.issues.some((i) => i.field === field), `${JSON.stringify(review)} names ${field}`);
    }
  });

  it("keeps the audit trail 7 days (free, professional) or 30 (enterprise) unless the tenant says otherwise", () => {
    const days = (spec: Record<string, unknown>) => {
      const r = resolvePolicy(spec);
      assert.ok(r.ok);
      return [r.policy.auditRetentionDays, trailRetentionMs(r.policy)];
    };
    assert.deepEqual(days({ tier: "free" }), [7, 7 * 86_400_000]);
    assert.deepEqual(days({ tier: "enterprise" }), [30, 30 * 86_400_000]);
    assert.deepEqual(days({ tier: "professional", auditRetentionDays: 400 }), [400, 400 * 86_400_000], "past that: the export");
  });

  it("refuses mctcBatch above mctc, unknown fields and wrong types", () => {
    for (const [input, field] of [
      [{ tier: "free", mctc: 5, mctcBatch: 6 }, "mctcBatch"],
      [{ tier: "free", mcaa: 5 }, "(policy)"],
      [{ tier: "free", mca: "ten" }, "mca"],
      [{ tier: "gold" }, "tier"],
      [{ tier: "free", pools: ["EU West"] }, "pools.0"],
      [{ tier: "free", erasureAfterDays: 0 }, "erasureAfterDays"],
      [{ tier: "free", erasureAfterDays: 3651 }, "erasureAfterDays"],
      [{ tier: "free", auditRetentionDays: 0 }, "auditRetentionDays"],
      [{ tier: "enterprise", auditRetentionDays: 2555 }, "auditRetentionDays"],
    ] as const) {
      const r = resolvePolicy(input);
      assert.equal(r.ok, false, JSON.stringify(input));
      assert.ok(!r.ok && r.issues.some((i) => i.field === field), `${JSON.stringify(input)} -> ${JSON.stringify(!r.ok && r.issues)}`);
    }
  });
});

describe("tenants file", () => {
  it("refuses an invalid file whole, naming the tenant and the field", () => {
    assert.throws(
      () => parseTenantsDocument({ tenants: { good: { tier: "free" }, "bad-one": { tier: "professional", mca: -1 } } }),
      /tenant "bad-one": mca: /,
    );
    assert.throws(() => parseTenantsDocument({ tenants: { "Bad Id": { tier: "free" } } }), /tenant "Bad Id": id must match/);
    assert.throws(() => parseTenantsDocument({ nope: 1 }), /top-level "tenants:"/);
  });

  it("ships an example with the source documents' tenants", () => {
    const specs = loadTenantsFile(loadConfig({}).FAIRLANE_TENANTS_FILE);
    const meridian = resolvePolicy(specs.get("meridian-health"));
    assert.ok(meridian.ok);
    assert.deepEqual(
      [meridian.policy.tier, meridian.policy.mca, meridian.policy.burst.mca, meridian.policy.burst.seconds, meridian.policy.mctc],
      ["enterprise", 150, 250, 60, 400],
    );
    assert.deepEqual([...specs.values()].map((s) => s.tier).sort(), ["enterprise", "free", "professional"]);
  });
});
