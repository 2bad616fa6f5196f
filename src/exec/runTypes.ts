import type { Job } from "bullmq";
import type { Logger } from "pino";
import type { CellKeys, WorkflowClass } from "../../queues/keys.ts";
import type { StartOutcome } from "../../queues/lua/runLifecycle.ts";
import type { LegacyJobData as QueuedLegacyJobData } from "../../queues/jobData.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { LatencyTally } from "../../queues/latencyTally.ts";
import type { RunAbort } from "./runAbort.ts";
import type { RunHandoff } from "./execBackend.ts";
import type { AbortReason, RuntimeDeps } from "../runtime/workflowContext.ts";

/** A job admitted before its record kept the trace context: its envelope, with the policy admission saw. */
export type LegacyJobData = QueuedLegacyJobData<RuntimePolicy>;

/** The exec runner's types: what a run is given, what it carries while it runs, how its handler ended. */

/** What a run needs beyond the runtime's dependencies (RuntimeDeps: Redis, gate, budgets, models, health...). */
export interface RunDeps extends RuntimeDeps {
  log: Logger;
  pool: string;
  workerId: string;
  recordTtlSec: number;
  /** Running workflows of this process, so signals (preempt, cancel) can reach them. */
  running: Map<string, RunAbort>;
  /** The Class C ones among them (the batch limit grows only while Class C uses it: src/exec/batchLimit.ts). */
  runningC?: Set<string>;
  /** The exec consumer's hand-off (execBackend.ts): the start its fetch made, the outcome its finish writes. */
  handoff?: RunHandoff;
  /**
   * Whether the job's lock may have lapsed since its fetch or last renewal (its process froze, or the fetch's
   * reply waited): another worker may have taken the job, so its run must not start.
   */
  lockMayHaveLapsed?: (id: string) => boolean;
  /** Where first starts' enqueue->start latencies are counted for the usage-event buckets (unset: not counted). */
  latency?: LatencyTally;
  /** Tool calls still running when their workflow ended (must stay 0). */
  onOrphans?: (n: number) => void;
  /**
   * The tenant's policy now (the process's live registry, reloaded once for a tenant it has not seen),
   * so an operator's change of mctc, budgets or allowed tools reaches workflows already queued or
   * running. Undefined when the tenant has no valid policy.
   */
  livePolicy: (tenant: string) => Promise<RuntimePolicy | undefined>;
}

/** A run's inputs: from the record (startRun's reply) and the job. */
export interface RunInput {
  job: Job;
  token: string;
  runId: string;
  start: StartOutcome;
  tenant: string;
  cls: WorkflowClass;
  enqueuedAt: number;
  payload: Record<string, unknown>;
  traceparent: string | undefined;
  /** A job admitted before the record kept the trace context carries an envelope with its policy. */
  legacy: LegacyJobData | undefined;
}

export interface RunOutcome {
  value?: string;
  /** An error code: the span's status is ERROR. */
  error?: string;
}

/** One run in progress: its inputs, its policy and the two ways it ends (finish, hand back). */
export interface Run {
  d: RunDeps;
  w: RunInput;
  cellName: string;
  cell: CellKeys;
  id: string;
  policy: RuntimePolicy | undefined;
  /** The tenant's metrics label, once per run: inc and dec use the same series. */
  tenant: string;
  outcome: RunOutcome;
  startedAt?: number;
  /**
   * Known once its handler has run: false when the workflow has no step results (this run began no step
   * and it was its first start, so neither an earlier run nor a review decision wrote one). Unknown: true.
   */
  steps?: boolean;
  log(): Logger;
}

/** How the handler ended: its value or error, and why its signal fired (if it did). */
export interface Ended {
  result: unknown;
  error: Error | undefined;
  reason: AbortReason | undefined;
  parkOn: { dependency: string; reason: string } | undefined;
  /** The review step and its request (JSON) when the handler asked for a review (ctx.review). */
  reviewOn?: { step: string; request: string };
  /** The deadline the run started with (startRun's reply). */
  deadlineAt: number | null;
}

/** startRun's answer when the workflow may run. */
export type Started = Extract<StartOutcome, { kind: "run" }>;
