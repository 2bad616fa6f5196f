import { Worker, type Job, type Processor, type WorkerOptions } from "bullmq";
import type { RunHandoff } from "./execBackend.ts";

/** The per-cell pieces of an exec process: its share of the slots and a BullMQ Worker that tracks its locks. */

/**
 * How a process's slots are split among the cells it serves: evenly, the
 * first cells taking the remainder (10 over 3 cells: 4, 3, 3). Each cell's
 * dispatcher sees only its own capacity, so the process never runs more than
 * `concurrency` workflows in all (DESIGN invariant 1: total never exceeds capacity).
 */
export function cellSlots(concurrency: number, cells: string[]): Map<string, number> {
  if (concurrency < cells.length)
    throw new Error(
      `FAIRLANE_CONCURRENCY (${concurrency}) must be at least the number of cells served (${cells.length}: ${cells.join(",")})`,
    );
  const base = Math.floor(concurrency / cells.length);
  return new Map(cells.map((c, i) => [c, base + (i < concurrency % cells.length ? 1 : 0)]));
}

/**
 * What BullMQ keeps of a finished exec job: the exec Worker's options, not the job's. An exec job's opts are
 * "{}", as admission wrote its ingress job (the dispatch renames it unchanged: queues/lua/includes/moveJob.lua),
 * so it has BullMQ's one attempt (Fairlane retries inside the runtime) and these: nothing of a completed job (its
 * record keeps the outcome), a failed one for a day (Bull Board).
 */
export const EXEC_JOB_KEEP = { removeOnComplete: { count: 0 }, removeOnFail: { age: 24 * 3600 } } satisfies Pick<
  WorkerOptions,
  "removeOnComplete" | "removeOnFail"
>;

/**
 * A BullMQ Worker that records, for each job in `lockedAt`, when each successful lock renewal was sent:
 * at or before the instant Redis extended the lock, so `lockedAt + lockDuration` never overstates how
 * long the lock lasts. It also runs one processing of a job at a time (processJob below).
 */
export class LeaseTrackingWorker extends Worker {
  /** Per job id: its processing in flight in this worker. */
  private readonly processing = new Map<string, Promise<unknown>>();

  private readonly lockedAt: Map<string, number>;
  private readonly now: () => number;
  private readonly handoff: RunHandoff | undefined;

  /** `handoff`: the exec consumer's fetch and finish (execBackend.ts) as this worker's BullMQ backend (none: BullMQ's). */
  constructor(
    own: { lockedAt: Map<string, number>; now: () => number; handoff?: RunHandoff },
    name: string,
    processor: Processor,
    opts: WorkerOptions,
  ) {
    // BullMQ's overloads take a factory or none, not a value that may be either: hence the cast.
    super(name, processor, opts, own.handoff?.backendFactory() as never);
    this.lockedAt = own.lockedAt;
    this.now = own.now;
    this.handoff = own.handoff;
  }

  /**
   * A job whose lock lapsed while its processing still ran here (a stalled process, its run being stopped
   * and handed back) is put back by BullMQ's stalled check, and this worker may fetch it again before that
   * processing has ended. BullMQ renews locks by job id, so the old processing's end untracked the new
   * one: its lock lapsed in turn and the job stalled again, up to maxStalledCount (then failed:
   * test/integration/execLocks.test.ts). The new processing, lock and all, starts once the old has ended;
   * the maps keyed by workflow id (running runs, lockedAt) never see two runs of one job either.
   */
  override async processJob(job: Job, token: string, fetchNextCallback?: () => boolean) {
    const id = job.id!;
    const before = this.processing.get(id);
    // Without one to wait for (nearly always), no wrapper: a closure and a promise fewer per job.
    const mine = before
      ? (async () => {
          await before.catch(() => undefined);
          return super.processJob(job, token, fetchNextCallback);
        })()
      : super.processJob(job, token, fetchNextCallback);
    this.processing.set(id, mine);
    try {
      return await mine;
    } finally {
      if (this.processing.get(id) === mine) this.processing.delete(id);
      const flushing = this.handoff?.flush(id);
      if (flushing) await flushing;
    }
  }

  override async extendJobLocks(jobIds: string[], tokens: string[], duration: number): Promise<string[]> {
    const sentAt = this.now();
    const failed = await super.extendJobLocks(jobIds, tokens, duration);
    for (const id of jobIds) if (!failed.includes(id) && this.lockedAt.has(id)) this.lockedAt.set(id, sentAt);
    return failed;
  }
}
