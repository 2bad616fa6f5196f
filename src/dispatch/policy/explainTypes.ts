import type { WorkflowClass } from "../../../queues/keys.ts";
import type { BurstState, DispatchCaps, OrgCaps } from "./caps.ts";
import type { PoolState } from "./dispatchRule.ts";
import type { ShareOptions } from "./shares.ts";

/** The vocabulary of "why is it waiting" (explain.ts): the reason codes, a reason, and the state it is read from. */

export type ReasonCode =
  | "not_synced"
  | "paused"
  | "no_worker"
  | "tenant_urgent_cap"
  | "tenant_mca"
  | "org_urgent_cap"
  | "org_mca"
  | "pool_full"
  | "class_c_share"
  | "dependency_down"
  | "deadline_soon"
  | "turn";

export const REASON_CODES: readonly ReasonCode[] = [
  "not_synced",
  "paused",
  "no_worker",
  "tenant_urgent_cap",
  "tenant_mca",
  "org_urgent_cap",
  "org_mca",
  "pool_full",
  "class_c_share",
  "dependency_down",
  "deadline_soon",
  "turn",
];

export interface Holder {
  tenant: string;
  slots: number;
}

export interface Reason {
  code: ReasonCode;
  message: string;
  class?: WorkflowClass;
  pool?: string;
  pools?: string[];
  running?: number;
  mca?: number;
  burstMca?: number;
  mcaUrgent?: number;
  burst?: { state: BurstState; until: number | null };
  cooldownUntil?: number;
  capacity?: number;
  used?: number;
  usedA?: number;
  reserveA?: number;
  usedC?: number;
  maxC?: number;
  /** The org it belongs to (org caps; turn of a tenant of an org). */
  org?: string;
  /** Class C share: the tenants holding the pool's Class C slots; org caps: its tenants holding the org's; most first (admin only). */
  holders?: Holder[];
  /** turn: flows (tenants, orgs) ahead of its own in the pool's ready set (its org's, for a tenant of one); null when not known. */
  ahead?: number | null;
  /** turn, a tenant of an org: the org's other tenants ahead of it in the org's ready set; null when not known. */
  aheadInOrg?: number | null;
  dependency?: string;
  since?: number | null;
  source?: string | null;
  /** dependency_down: true while held back at dispatch (queued, or parked by the dispatcher). */
  heldBack?: boolean;
  parked?: number;
  deadlineAt?: number;
  inMs?: number;
  /** deadline_soon: what holds it meanwhile. */
  cause?: Reason;
}

export interface PoolView extends PoolState {
  pool: string;
  holdersC?: Holder[];
  /**
   * Per class: flows in the pool's ready set and how many rank before this tenant's (its org's, for a
   * tenant of an org; null: not in it); `inOrg`: the same in its org's ready set (`oready`).
   */
  ready?: Partial<Record<WorkflowClass, { size: number; ahead: number | null; inOrg?: { size: number; ahead: number | null } }>>;
}

/** The tenant's org as the script reads it: `tp:@<org>` and `run:@<org>`. */
export interface OrgState {
  org: string;
  /** `tp:@<org>`; null when missing (the org's flow never enters a pool's ready set). */
  caps: OrgCaps | null;
  /** `run:@<org>`: slots its tenants hold together, Class A and Class B+C. */
  running: { A: number; BC: number };
  /** Its tenants holding those slots, most first (from the slot leases; the admin's to see). */
  holders?: { A: Holder[]; BC: Holder[] };
}

export interface TenantState {
  now: number;
  /** `tp:<t>` as the script reads it; null when missing. */
  caps: DispatchCaps | null;
  /** `run:<t>`: slots held, Class A and Class B+C. */
  running: { A: number; BC: number };
  queued: Record<WorkflowClass, number>;
  /** Its org (caps.org), when it has one and it was read; undefined: no org check. */
  org?: OrgState;
  /** The tenant's allowed pools (caps.pools), in that order. */
  pools: PoolView[];
  shares: ShareOptions;
}

export interface DownDependency {
  dependency: string;
  since: number | null;
  source: string | null;
}
