import type { WorkflowClass } from "../../../queues/keys.ts";
import { orgEligible, type OrgCaps } from "./caps.ts";
import type { PoolView, Reason, TenantState } from "./explainTypes.ts";

/**
 * The org level of "why is it waiting" (explain.ts), pure. A tenant of an org is dispatched only
 * while its org is under its cap for the class too (dispatch-18.lua: the tenant's caps, then the
 * org's, `tp:@<org>` against `run:@<org>`; refreshOrg in includes/refreshTenant.lua keeps an org at
 * its cap out of the pool's ready sets), so the org's caps are checked right after the tenant's own:
 *   org_urgent_cap  Class A: the org's tenants run its mcaUrgent together
 *   org_mca         Class B/C: the org's tenants run its mca together (an org has no burst)
 * An org's `tp:@<org>` missing (never synced) holds it as not_synced. Its turn is two-level: the
 * org's flow among the pool's flows, then the tenant among the org's tenants (includes/flows.lua).
 */

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `tp:@<org>` as the script reads it (src/dispatch/tenantSync.ts orgCapsFields); null when missing. */
export function orgCapsFromHash(h: Record<string, string>): OrgCaps | null {
  if (h.mca === undefined) return null;
  return { weight: Number(h.weight), mca: Number(h.mca), mcaUrgent: Number(h.mcaUrgent) };
}

/** What the tenant's org holds of its Class `cls` work, once its own caps let it run; null when nothing. */
export function orgReason(s: TenantState, cls: WorkflowClass): Reason | null {
  const o = s.org;
  if (!o) return null;
  if (!o.caps)
    return {
      code: "not_synced",
      class: cls,
      org: o.org,
      message: `the dispatcher has not synced this tenant's org ${o.org} into its cell yet (is a dispatcher running for the cell?)`,
    };
  if (orgEligible(o.caps, o.running.A, o.running.BC, cls)) return null;
  const holders = cls === "A" ? o.holders?.A : o.holders?.BC;
  const who = holders?.length ? `; held by ${holders.map((h) => `${h.tenant} (${h.slots})`).join(", ")}` : "";
  const base = { class: cls, org: o.org, ...(holders ? { holders } : {}) };
  if (cls === "A")
    return {
      code: "org_urgent_cap",
      ...base,
      running: o.running.A,
      mcaUrgent: o.caps.mcaUrgent,
      message: `org ${o.org} at its mcaUrgent: ${o.running.A}/${o.caps.mcaUrgent} Class A running across its tenants, ${s.running.A} of them this tenant's${who}`,
    };
  return {
    code: "org_mca",
    ...base,
    running: o.running.BC,
    mca: o.caps.mca,
    message: `org ${o.org} at its mca: ${o.running.BC}/${o.caps.mca} Class B/C running across its tenants, ${s.running.BC} of them this tenant's${who}`,
  };
}

/**
 * What a tenant of org `org` waits behind in pool `p`, eligible: flows ahead of its org in the pool's
 * ready set, and the org's other tenants ahead of it in the org's own. Both unknown (the tenant's own
 * read counts no one else): the two turns it takes, without numbers.
 */
export function orgTurn(p: PoolView, cls: WorkflowClass, org: string): { parts: string[]; aheadInOrg: number | null } {
  const r = p.ready?.[cls];
  const ahead = r?.ahead ?? null;
  const aheadInOrg = r?.inOrg?.ahead ?? null;
  const parts: string[] = [];
  if (ahead) parts.push(`its org ${org} behind ${plural(ahead, "tenant or org", "tenants or orgs")} in Class ${cls}`);
  if (aheadInOrg) parts.push(`${plural(aheadInOrg, "other tenant")} of org ${org} ahead of it`);
  if (ahead === null && aheadInOrg === null)
    parts.push(`its org ${org} takes its turn among the pool's tenants and orgs, then this tenant among the org's tenants`);
  return { parts, aheadInOrg };
}
