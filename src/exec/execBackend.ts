import { randomUUID } from "node:crypto";
import { createRedisBackend, type BackendFactory, type RedisQueueBackend } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { CellKeys } from "../../queues/keys.ts";
import { fetchAndStart, finishAndStart, finishArgsAsJson, type Consumed } from "../../queues/lua/execConsume.ts";
import { finishRun, type FinishInput, type StartOutcome } from "../../queues/lua/runLifecycle.ts";

/**
 * The exec consumer: BullMQ's Worker on BullMQ's keys, whose fetch also starts the workflow it takes and
 * whose finish of a job also records the workflow's outcome and releases its slot (queues/lua/
 * execConsume.ts). From one run to the next is then one script and one round trip, as for a plain
 * BullMQ job, rather than three (startRun, BullMQ's finish-and-fetch, finishRun). Bull Board, locks and
 * stalled-job recovery are BullMQ's own: its scripts run inside Fairlane's, less the steps an exec queue
 * never needs (events, delayed jobs, flows: queues/lua/bullmqSlim.ts).
 *
 * The hand-off between the calls and the run: the fetch leaves the start (run id and verdict) for the
 * processor to take; the processor leaves the outcome for BullMQ's finish of the job to write. An outcome
 * still here when the processing has ended (BullMQ skipped its finish: closing, its call failed) is
 * written on its own then (flush), so no ended run is left for a second execution.
 */
export class RunHandoff {
  private readonly starts = new Map<string, { runId: string; start: StartOutcome }>();
  private readonly finishes = new Map<string, FinishInput>();

  constructor(
    private readonly redis: Redis,
    private readonly cell: CellKeys,
    private readonly workerId: string,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {}

  /** The start its fetch made for job `id`, once (none: the processor starts it itself). */
  takeStart(id: string): { runId: string; start: StartOutcome } | undefined {
    const s = this.starts.get(id);
    this.starts.delete(id);
    return s;
  }

  /** The run's outcome, written with BullMQ's finish of its job. */
  deferFinish(f: FinishInput): void {
    this.finishes.set(f.id, f);
  }

  /** Writes an outcome BullMQ's finish did not take (its processing has ended); undefined when there is none (nearly always). */
  flush(id: string): Promise<void> | undefined {
    const f = this.finishes.get(id);
    if (!f) return undefined;
    this.finishes.delete(id);
    return finishRun(this.redis, this.cell, f).then(
      () => undefined,
      (err: Error) =>
        this.log.error({ err: err.message, workflowId: id }, "could not record a run's outcome: it runs again after its lock lapses"),
    );
  }

  /** A BullMQ backend for the cell's exec queue whose moveToActive and moveToFinished are the exec consumer's. */
  backendFactory(): BackendFactory<RedisQueueBackend> {
    return (name, opts, flags) => {
      const backend = createRedisBackend(name, opts, flags);
      finishArgsAsJson(backend);
      const own = backend.execCommand.bind(backend);
      // Only calls on the connection itself; one on a transaction or pipeline (no path of the Worker's) is BullMQ's.
      backend.execCommand = (client, command, args) => {
        if ((command !== "moveToActive" && command !== "moveToFinished") || (client as { isPipeline?: boolean }).isPipeline)
          return own(client, command, args);
        return this.consume(command, args);
      };
      return backend;
    };
  }

  private async consume(command: "moveToActive" | "moveToFinished", args: (string | number | Buffer | undefined)[]): Promise<unknown> {
    const next = { now: this.now(), runId: randomUUID(), workerId: this.workerId };
    let done: Consumed;
    if (command === "moveToActive") done = await fetchAndStart(this.redis, this.cell, args, next);
    else {
      // moveToFinished's first arg after its 14 keys is the job id.
      const id = String(args[14]);
      const ended = this.finishes.get(id);
      done = await finishAndStart(this.redis, this.cell, args, ended, next);
      if (ended && this.finishes.get(id) === ended) this.finishes.delete(id);
    }
    if (done.started) this.starts.set(done.started.id, { runId: next.runId, start: done.started.start });
    return done.reply;
  }
}
