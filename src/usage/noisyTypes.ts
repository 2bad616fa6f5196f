/**
 * The noisy-neighbour signal's options (and their defaults), its input per tick and its report. The
 * rule they parameterise is described in noisyNeighbour.ts's header.
 */
import type { FairnessSample, TickShares } from "../dispatch/policy/fairness.ts";

export interface NoisyOptions {
  windowMs: number;
  maxTracked: number;
  minTicks: number;
  minRegimeTicks: number;
  minLatencySamples: number;
  impactThreshold: number;
  dominance: number;
  minIncreaseMs: number;
  minIncreaseRatio: number;
  clearTicks: number;
  noisyRatio: number;
  noisyExcessSlots: number;
  noisyMinTicks: number;
}

export const NOISY_DEFAULTS: NoisyOptions = {
  windowMs: 60_000,
  maxTracked: 100,
  minTicks: 10,
  minRegimeTicks: 3,
  minLatencySamples: 5,
  impactThreshold: 0.5,
  dominance: 0.5,
  minIncreaseMs: 100,
  minIncreaseRatio: 2,
  clearTicks: 3,
  noisyRatio: 1.2,
  noisyExcessSlots: 1,
  noisyMinTicks: 5,
};

/** One tenant this tick (a snapshot row, reduced). */
export interface NoisyInput {
  tenant: string;
  running: number;
  queued: number;
  /** Its enqueue→start p99 over the snapshot's latency window (ms), and the starts it is taken over. */
  p99: number | null;
  latencySamples: number;
}

export interface NoisyTick {
  at: number;
  tenants: readonly NoisyInput[];
  /** The fairness math's view of this tick: samples (for their group) and the backlogged tenants' fair shares. */
  samples: ReadonlyMap<string, FairnessSample>;
  shares: TickShares;
  /** Per group (FairnessSample.group, "" for none): its general slots (capacity less the Class A reserve) and how many are free. */
  groups: ReadonlyMap<string, { slots: number; free: number }>;
}

export interface NoisyTenant {
  tenant: string;
  /** Mean fraction of its group's general slots it held, and its fair share of them, over the contested ticks. */
  share: number;
  fairShare: number;
  contestedTicks: number;
  /** Its isolation impact now (null: not tracked, or not computable). */
  impact: number | null;
  since: number;
}

export interface IsolationIncomplete {
  tenant: string;
  impact: number;
  /** The others' p99 now, and their baseline while its load was low (ms). */
  othersP99Ms: number;
  baselineP99Ms: number;
  since: number;
}

export interface NoisyReport {
  windowMs: number;
  ticks: number;
  noisy: NoisyTenant[];
  /** Tenants with work (running or queued) that are not noisy (SQS's quiet groups). */
  quiet: number;
  isolationIncomplete: IsolationIncomplete[];
  /** Spearman's correlation of each tracked tenant's load with the others' p99, where computable. */
  impact: Map<string, number>;
}
