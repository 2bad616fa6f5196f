import { z } from "zod";
import type { PolicyIssue } from "./policy.ts";

/**
 * Organisations: a parent (a holding company, a hospital group) over several tenants, with caps
 * of its own that bound the sum over its tenants, so ten banks of one holding cannot exceed its
 * contract through ten tenants. A tenant joins one with `org` in its policy. Every cap is
 * optional (null: the org does not bound it); `weight` is its share of a pool against other orgs
 * and lone tenants (two-level fair queuing: docs/concepts.md "Organisations").
 */
const posInt = z.number().int().positive();

export const OrgPolicySchema = z.strictObject({
  weight: z
    .number()
    .positive()
    .max(1000)
    .default(1)
    .meta({ description: "Its share of a pool against other orgs and lone tenants (two-level fair queuing); default 1." }),
  mca: posInt.nullable().default(null).meta({ description: "Class B/C workflows its tenants may run at once, together; null: no bound." }),
  mcaUrgent: z
    .number()
    .int()
    .nonnegative()
    .nullable()
    .default(null)
    .meta({ description: "Class A workflows its tenants may run at once, together; null: no bound." }),
  mctc: posInt
    .nullable()
    .default(null)
    .meta({ description: "Tool calls its tenants may have in flight at once, together (the tool gate); null: no bound." }),
  budget: z
    .strictObject({
      monthlyUsd: z
        .number()
        .nonnegative()
        .nullable()
        .default(null)
        .meta({ description: "What its tenants may spend together in a UTC month, in USD; null: no bound." }),
    })
    .default({ monthlyUsd: null }),
  description: z.string().max(200).optional().meta({ description: "Free text for operators (at most 200 characters)." }),
});
export type OrgPolicy = z.infer<typeof OrgPolicySchema>;

export interface OrgEntry {
  org: string;
  policy: OrgPolicy;
}

/** A cap no org reaches: what "no bound" is in the dispatch script's numbers. */
export const UNBOUNDED = 1_000_000_000;

export function resolveOrg(input: unknown): { ok: true; policy: OrgPolicy } | { ok: false; issues: PolicyIssue[] } {
  const r = OrgPolicySchema.safeParse(input);
  if (r.success) return { ok: true, policy: r.data };
  return { ok: false, issues: r.error.issues.map((i) => ({ field: i.path.join(".") || "(org)", message: i.message })) };
}
