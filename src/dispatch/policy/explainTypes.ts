import type { WorkflowClass } from "../../../queues/keys.ts";
import type { BurstState, DispatchCaps } from "./caps.ts";
import type { PoolState } from "./dispatchRule.ts";
import type { ShareOptions } from "./shares.ts";

/** The vocabulary of "why is it waiting" (explain.ts): the reason codes, a reason, and the state it is read from. */

export type ReasonCode =
  | "not_synced"
  | "paused"
  | "no_worker"
  | "tenant_urgent_cap"
  | "tenant_mca"
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
  /** Class C share: the tenants holding the pool's Class C slots, most first. */
  holders?: Holder[];
  /** turn: tenants ahead of it in the pool's ready set; null when not known. */
  ahead?: number | null;
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
  /** Per class: tenants in the pool's ready set and how many rank before this tenant (null: it is not in it). */
  ready?: Partial<Record<WorkflowClass, { size: number; ahead: number | null }>>;
}

export interface TenantState {
  now: number;
  /** `tp:<t>` as the script reads it; null when missing. */
  caps: DispatchCaps | null;
  /** `run:<t>`: slots held, Class A and Class B+C. */
  running: { A: number; BC: number };
  queued: Record<WorkflowClass, number>;
  /** The tenant's allowed pools (caps.pools), in that order. */
  pools: PoolView[];
  shares: ShareOptions;
}

export interface DownDependency {
  dependency: string;
  since: number | null;
  source: string | null;
}
