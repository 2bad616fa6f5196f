import { PolicySpecSchema, type PolicyIssue, type PolicySpec } from "./policy.ts";

/**
 * A partial policy change (PATCH /v1/admin/tenants/:tenant, `fairlane set`),
 * pure: the patch is validated field by field against the spec schema, then
 * merged into the stored spec — the nested objects `burst`, `deadline`,
 * `budget` and `review` merge key by key, every other field is replaced. The caller
 * validates the merged spec whole (cross-field rules: burst.mca >= mca, ...).
 */
const NESTED = new Set(["burst", "deadline", "budget", "review"]);
const PatchSchema = PolicySpecSchema.partial();

export function applySpecPatch(spec: PolicySpec, patch: unknown): { ok: true; spec: PolicySpec } | { ok: false; issues: PolicyIssue[] } {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch))
    return { ok: false, issues: [{ field: "(body)", message: "must be a JSON object of policy fields to change" }] };
  if (Object.keys(patch).length === 0) return { ok: false, issues: [{ field: "(body)", message: "names no field to change" }] };
  const parsed = PatchSchema.safeParse(patch);
  if (!parsed.success)
    return { ok: false, issues: parsed.error.issues.map((i) => ({ field: i.path.join(".") || "(body)", message: i.message })) };
  const merged: Record<string, unknown> = { ...spec };
  for (const [k, v] of Object.entries(parsed.data)) {
    if (v === undefined) continue;
    const old = merged[k];
    merged[k] = NESTED.has(k) && old && typeof old === "object" ? { ...(old as object), ...(v as object) } : v;
  }
  return { ok: true, spec: merged as PolicySpec };
}
