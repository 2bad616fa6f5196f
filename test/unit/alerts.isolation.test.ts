import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { REPO_ROOT } from "../../src/lib/config.ts";

/**
 * The isolation alert (deploy/prometheus/alerts.yml FairlaneIsolationIncomplete)
 * under Prometheus' own rule evaluator: deploy/prometheus/alerts.test.yml feeds
 * it a tenant flagged for 2 minutes straight (fires), one flagged on and off
 * (does not) and a noisy tenant with a high impact but no flag (does not).
 */
const rules = (
  parse(readFileSync(join(REPO_ROOT, "deploy/prometheus/alerts.yml"), "utf8")) as {
    groups: { rules: { alert: string; expr: string; for?: string }[] }[];
  }
).groups.flatMap((g) => g.rules);

describe("the isolation-incomplete alert", () => {
  it("alerts on the flag alone, per tenant, after it has held for 2 minutes", () => {
    const rule = rules.find((r) => r.alert === "FairlaneIsolationIncomplete");
    assert.ok(rule, "FairlaneIsolationIncomplete is in alerts.yml");
    assert.equal(rule.expr.trim(), "max by (tenant) (fairlane_tenant_isolation_incomplete) == 1");
    assert.equal(rule.for, "2m");
  });

  it("fires for a tenant that stays flagged and not for one that flickers or is only noisy (promtool test rules)", (t) => {
    const r = spawnSync("promtool", ["test", "rules", join(REPO_ROOT, "deploy/prometheus/alerts.test.yml")], { encoding: "utf8" });
    if (r.error) return t.skip("promtool not installed (apt-get install prometheus)");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
  });
});
