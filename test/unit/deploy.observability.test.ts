import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { REPO_ROOT } from "../../src/lib/config.ts";
import { registry } from "../../src/observability/metrics.ts";

/**
 * deploy/grafana/fairlane.json and deploy/prometheus/*.yml name only metrics
 * that exist: Fairlane's event metrics (this registry) or the per-tenant usage
 * gauges read at scrape (usageMetrics.ts, listed in docs/observability.md);
 * and Prometheus' own promtool accepts the rules, the config and every query.
 */
const USAGE_GAUGES = [
  "fairlane_tenant_running",
  "fairlane_tenant_mca",
  "fairlane_tenant_tool_calls_in_flight",
  "fairlane_tenant_mctc",
  "fairlane_tenant_queued",
  "fairlane_tenant_parked",
  "fairlane_tenant_at_cap",
  "fairlane_pool_capacity",
  "fairlane_pool_used",
  "fairlane_pool_used_class_a",
  "fairlane_fairness_jain",
  "fairlane_tenant_fair_share_ratio",
  "fairlane_fairness_worst_share_ratio",
  "fairlane_tenant_noisy",
  "fairlane_tenant_isolation_incomplete",
  "fairlane_tenant_isolation_impact",
  "fairlane_noisy_tenants",
  "fairlane_quiet_tenants",
];

const read = (p: string) => readFileSync(join(REPO_ROOT, p), "utf8");

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { refId: string; expr: string; datasource?: unknown }[];
  datasource?: unknown;
}

async function knownNames(): Promise<Set<string>> {
  const names = new Set(USAGE_GAUGES);
  for (const m of /^# TYPE (\S+) (\S+)$/gm[Symbol.matchAll](await registry.metrics())) {
    names.add(m[1]!);
    if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m[1]! + s);
  }
  return names;
}

const metricNames = (expr: string) => [...new Set(expr.match(/\bfairlane_[a-z0-9_]+/g) ?? [])];

function promtool(args: string[]): { status: number | null; output: string } | undefined {
  const r = spawnSync("promtool", args, { encoding: "utf8" });
  return r.error ? undefined : { status: r.status, output: r.stdout + r.stderr };
}

const dashboard = JSON.parse(read("deploy/grafana/fairlane.json")) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string }[] };
};
const alerts = parse(read("deploy/prometheus/alerts.yml")) as {
  groups: { name: string; rules: { alert: string; expr: string; for?: string; labels?: Record<string, string> }[] }[];
};
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
const rules = alerts.groups.flatMap((g) => g.rules);

describe("the example Grafana dashboard and Prometheus rules", () => {
  it("is a Grafana dashboard: uid, title, schema version, panels with unique ids, a grid position and queries", () => {
    assert.match(dashboard.uid, /^[a-z0-9-]{1,40}$/);
    assert.ok(dashboard.title && Number.isInteger(dashboard.schemaVersion));
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    for (const p of dashboard.panels) {
      assert.ok(p.type && p.title && p.gridPos && p.gridPos.w <= 24 && p.gridPos.x + p.gridPos.w <= 24, p.title);
      if (p.type !== "row") assert.ok(p.targets?.length && p.targets.every((t) => t.refId && t.expr), p.title);
    }
    assert.deepEqual(
      dashboard.templating.list.map((v) => v.name),
      ["datasource", "tenant"],
    );
  });

  it("has the four alerts the issue asks for", () => {
    const names = rules.map((r) => r.alert);
    for (const a of ["FairlaneTenantAtCap", "FairlaneClassAP99OverTarget", "FairlaneDependencyDown", "FairlaneParkedBacklogGrowing"])
      assert.ok(names.includes(a), a);
    assert.equal(rules.find((r) => r.alert === "FairlaneTenantAtCap")!.for, "5m");
  });

  it("names only metrics that exist", async () => {
    const known = await knownNames();
    for (const q of [
      ...queries.map((x) => ({ where: `panel "${x.panel}"`, expr: x.expr })),
      ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ]) {
      const names = metricNames(q.expr);
      assert.ok(names.length, `${q.where} queries a Fairlane metric`);
      for (const n of names) assert.ok(known.has(n), `${q.where}: ${n} is neither an event metric nor a usage gauge`);
    }
  });

  it("passes promtool: the rules, the scrape config, and every dashboard query as PromQL", (t) => {
    if (!promtool(["--version"])) return t.skip("promtool not installed (apt-get install prometheus)");
    const dir = mkdtempSync(join(tmpdir(), "fl-prom-"));
    try {
      const rulesCheck = promtool(["check", "rules", join(REPO_ROOT, "deploy/prometheus/alerts.yml")])!;
      assert.equal(rulesCheck.status, 0, rulesCheck.output);
      // The scrape config with its token file where promtool can stat it.
      writeFileSync(join(dir, "token"), "x".repeat(32));
      writeFileSync(
        join(dir, "prometheus.yml"),
        read("deploy/prometheus/prometheus.yml").replaceAll("/etc/prometheus/fairlane-metrics-token", join(dir, "token")),
      );
      copyFileSync(join(REPO_ROOT, "deploy/prometheus/alerts.yml"), join(dir, "alerts.yml"));
      const config = promtool(["check", "config", join(dir, "prometheus.yml")])!;
      assert.equal(config.status, 0, config.output);
      // Grafana's queries as recording rules: promtool parses each one.
      const asRules = {
        groups: [
          { name: "grafana", rules: queries.map((q, i) => ({ record: `grafana:query_${i}`, expr: q.expr.replaceAll("$tenant", ".*") })) },
        ],
      };
      writeFileSync(join(dir, "grafana-queries.yml"), JSON.stringify(asRules));
      const parsed = promtool(["check", "rules", join(dir, "grafana-queries.yml")])!;
      assert.equal(parsed.status, 0, parsed.output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
