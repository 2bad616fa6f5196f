import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TenantLabels } from "../../src/observability/tenantLabel.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { tenantSource as source } from "../helpers/tenantSource.ts";

describe("bounded tenant labels", () => {
  it("gives its own label to at most max tenants, the largest first, the same in every process", () => {
    const specs: Record<string, PolicySpec> = {
      "free-a": { tier: "free" },
      "pro-light": { tier: "professional", weight: 1 },
      "pro-heavy": { tier: "professional", weight: 8 },
      "ent-b": { tier: "enterprise" },
      "ent-a": { tier: "enterprise" },
    };
    const a = new TenantLabels(3);
    const b = new TenantLabels(3);
    a.bind(source(specs));
    b.bind(source(Object.fromEntries(Object.entries(specs).reverse())));
    for (const l of [a, b]) {
      assert.deepEqual(
        Object.keys(specs).map((t) => l.label(t)),
        ["_other_free", "_other_professional", "pro-heavy", "ent-b", "ent-a"],
      );
      assert.equal(l.labelled, 3);
    }
  });

  it("labels pinned tenants first, and unknown tenants _other", () => {
    const l = new TenantLabels(2, ["free-a", "missing"]);
    l.bind(source({ "free-a": { tier: "free" }, "ent-a": { tier: "enterprise" }, "ent-b": { tier: "enterprise" } }));
    assert.equal(l.label("free-a"), "free-a");
    assert.equal(l.label("ent-a"), "ent-a");
    assert.equal(l.label("ent-b"), "_other_enterprise");
    assert.equal(l.label("nobody"), "_other");
    assert.equal(l.label("nobody", "professional"), "_other_professional", "the caller's tier names the aggregate");
  });

  it("reports tenants that lose their label when the registry changes", () => {
    const s = source({ "pro-a": { tier: "professional" }, "pro-b": { tier: "professional" } });
    const l = new TenantLabels(2);
    l.bind(s);
    const demoted: string[] = [];
    l.onDemoted((t) => demoted.push(...t));
    assert.equal(l.label("pro-b"), "pro-b");
    s.set("2", { "pro-a": { tier: "professional" }, "pro-b": { tier: "professional" }, "ent-new": { tier: "enterprise" } });
    assert.equal(l.label("pro-b"), "_other_professional");
    assert.deepEqual(demoted, ["pro-b"]);
  });

  it("without a registry, labels the first max tenants seen and aggregates the rest", () => {
    const l = new TenantLabels(2);
    assert.deepEqual(
      ["t1", "t2", "t3", "t1"].map((t) => l.label(t, "free")),
      ["t1", "t2", "_other_free", "t1"],
    );
  });
});
