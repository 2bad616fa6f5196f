import type { TenantSource } from "../../src/observability/tenantLabel.ts";
import { resolvePolicy, type PolicySpec } from "../../src/tenancy/policy.ts";
import type { TenantEntry } from "../../src/tenancy/registry.ts";

/** A policy registry's view for tenantLabels (pure: resolved specs and a version to move). */
export function tenantSource(
  specs: Record<string, PolicySpec>,
  version = "1",
): TenantSource & { set(v: string, s: Record<string, PolicySpec>): void } {
  let entries = toEntries(specs);
  let v = version;
  return {
    get currentVersion() {
      return v;
    },
    list: () => entries,
    set(nv, s) {
      v = nv;
      entries = toEntries(s);
    },
  };
}

function toEntries(specs: Record<string, PolicySpec>): TenantEntry[] {
  return Object.entries(specs).map(([tenant, spec]) => {
    const r = resolvePolicy(spec);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return { tenant, spec, policy: r.policy };
  });
}
