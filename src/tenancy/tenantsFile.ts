import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { TENANT_ID } from "../../queues/names.ts";
import { formatIssues, resolvePolicy, type PolicySpec } from "./policy.ts";

/**
 * Reads the tenants file (YAML):
 *   tenants:
 *     <tenant-id>: { tier: enterprise, mca: 150, ... }
 * and refuses it whole, naming the tenant and field, if any entry is invalid.
 */
export function loadTenantsFile(path: string): Map<string, PolicySpec> {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`tenants file ${path}: ${(err as Error).message}`);
  }
  return parseTenantsDocument(doc, path);
}

export function parseTenantsDocument(doc: unknown, source = "tenants file"): Map<string, PolicySpec> {
  const tenants = (doc as { tenants?: unknown } | null)?.tenants;
  if (!tenants || typeof tenants !== "object" || Array.isArray(tenants))
    throw new Error(`${source}: expected a top-level "tenants:" mapping of tenant id to policy`);
  const out = new Map<string, PolicySpec>();
  const errors: string[] = [];
  for (const [tenant, raw] of Object.entries(tenants)) {
    if (!TENANT_ID.test(tenant)) {
      errors.push(`tenant "${tenant}": id must match ${TENANT_ID} (lowercase letters, digits, - and _)`);
      continue;
    }
    const r = resolvePolicy(raw);
    if (r.ok) out.set(tenant, r.spec);
    else errors.push(`tenant "${tenant}": ${formatIssues(r.issues)}`);
  }
  if (errors.length) throw new Error(`${source} is invalid:\n  ${errors.join("\n  ")}`);
  return out;
}
