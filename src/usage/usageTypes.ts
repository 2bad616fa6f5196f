import type { WorkflowClass } from "../../queues/keys.ts";
import type { ReasonCode } from "../dispatch/policy/explain.ts";
import type { AtCap, BurstState } from "./capState.ts";
import type { LatencySummary } from "./percentiles.ts";

/**
 * The usage snapshot: one read of every tenant's live usage (usageSnapshot.ts reads it), what the
 * dashboard, the usage API, the capacity report and the usage metrics show. Only ids, tenants and
 * counts: never a payload.
 */
export interface TenantUsage {
  tenant: string;
  tier: string;
  cell: string;
  weight: number;
  paused: boolean;
  running: Record<WorkflowClass | "total", number>;
  mca: number;
  burstMca: number;
  burst: { state: BurstState; until: number | null };
  mcaUrgent: number;
  tools: {
    inFlight: number;
    inFlightC: number;
    mctc: number;
    mctcBatch: number;
    waiting: number;
    avgWaitMs: number | null;
    acquiredPerMin: number;
  };
  throttledPerMin: number;
  queued: Record<WorkflowClass | "total", number>;
  parked: number;
  latency: LatencySummary;
  atCap: AtCap;
  /**
   * Slot-time received ÷ capped weighted fair share over the sampler's window,
   * only over the ticks it was backlogged in (fairShareRatios); null when it
   * was not backlogged (or its share was 0). Filled by the sampler, not here.
   */
  fairShare: { ratio: number | null; backloggedTicks: number };
  /**
   * What holds its queued work, from the dispatcher's state: the first class's
   * hold that is not just its turn (else `turn`); null with nothing queued.
   */
  held: { code: ReasonCode; message: string } | null;
  /** Queued workflows by the reason code holding their class (fairlane_waiting_workflows). */
  waitingBy: Partial<Record<ReasonCode, number>>;
}

export interface PoolUsage {
  cell: string;
  pool: string;
  workers: number;
  capacity: number;
  used: number;
  usedA: number;
  usedC: number;
  reserveA: number;
  /** The live workers' batch limits summed: Class C holds no more (its guaranteed minimum aside). */
  batchCapacity: number;
}

export interface DependencyUsage {
  cell: string;
  dependency: string;
  state: "healthy" | "degraded" | "down" | "missing";
  source: string | null;
  since: number | null;
  parked: number;
}

export interface UsageSnapshot {
  at: number;
  /** How long the read took (ms). */
  readMs: number;
  /** Window of the event rates and latency percentiles (ms). */
  windowMs: number;
  tenants: TenantUsage[];
  pools: PoolUsage[];
  dependencies: DependencyUsage[];
}
