import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Job, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Keys } from "../../queues/keys.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { execQueue } from "../../queues/names.ts";
import type { Clock } from "../lib/clock.ts";
import { workflowDependencies, workflowTypes } from "../workflows/registry.ts";
import type { HealthCache } from "../backpressure/healthCache.ts";
import { LogThrottle } from "../observability/logger.ts";
import { runWorkflow, type RunDeps } from "./runWorkflow.ts";
import { cellSlots, EXEC_JOB_KEEP, LeaseTrackingWorker } from "./cellWorker.ts";
import { RunHandoff } from "./execBackend.ts";
import type { RunAbort } from "./runAbort.ts";
import { cellBatch } from "./batchLimit.ts";
import { BatchLimiter } from "./batchLimiter.ts";
import { LatencyTally } from "../../queues/latencyTally.ts";

export { cellSlots } from "./cellWorker.ts";

export interface ExecWorkerOptions {
  pool: string;
  concurrency: number;
  cells: string[];
  heartbeatMs: number;
  /** A worker that misses heartbeats this long no longer counts toward capacity. */
  heartbeatTtlMs: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  /** On SIGTERM: how long running workflows may take to finish before they are handed back. */
  shutdownGraceMs: number;
  /** How often running workflows' records are checked for a preempt/cancel flag (missed pub/sub). */
  flagPollMs: number;
  recordTtlSec: number;
  /** A stable, unique name for this exec instance (FAIRLANE_WORKER_ID), kept across its restarts. */
  instance?: string;
  /** How late (ms, p99) the loop may run before Class C backs off (FAIRLANE_EXEC_LAG_TARGET_MS, batchLimit.ts); 0 = off. */
  lagTargetMs: number;
  batchAdaptMs: number;
}

/**
 * What runs need from the process, wired by the role's entrypoint (workers/exec.ts): the tool gate,
 * dependency health, worker threads, the policy registry. The worker adds its own (pool, id, running runs).
 */
export interface ExecRuntime {
  /** The subscriber connection the gate listens on; cell signals (preempt, cancel, degraded) arrive here too. */
  subscriber: Redis;
  /** Dependency health, so a "degraded" announcement stops calls into it at once. */
  health?: HealthCache;
  /** The runtime dependencies (and live policy) of runs in one cell. */
  runtimeFor(cellName: string): Omit<RunDeps, "log" | "pool" | "workerId" | "recordTtlSec" | "running" | "onOrphans">;
}

export const DEFAULT_EXEC: Omit<ExecWorkerOptions, "pool" | "concurrency" | "cells"> = {
  heartbeatMs: 1_000,
  heartbeatTtlMs: 5_000,
  lockDurationMs: 10_000,
  stalledIntervalMs: 5_000,
  maxStalledCount: 5,
  shutdownGraceMs: 10_000,
  flagPollMs: 1_000,
  recordTtlSec: 7 * 24 * 3600,
  lagTargetMs: 0,
  batchAdaptMs: 500,
};

/**
 * The exec role: a BullMQ Worker per cell on `exec.<pool>`, each with its
 * share of the process's concurrency (cellSlots), advertising that share as
 * the pool's capacity in the cell by heartbeat. Preempt and cancel signals arrive by pub/sub on each cell's
 * signals channel (one subscriber connection for all cells), with a poll of
 * the records' flags as the fallback for a missed message; so do "degraded
 * <dep>" announcements, which stop tool calls into that dependency at once.
 */
export class ExecWorker {
  readonly workerId: string;
  private readonly workers: Worker[] = [];
  private readonly running = new Map<string, RunAbort>();
  private readonly runningC = new Map<string, Set<string>>(); // per cell: its running Class C workflows
  /** Per running job: an instant at or before Redis last set its lock (the fetch, then each renewal that succeeded). */
  private readonly lockedAt = new Map<string, number>();
  private readonly latency = new LatencyTally(); // first starts' enqueue->start, for the usage-event buckets
  private readonly connections: Redis[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private flagTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly batch: BatchLimiter; // how many of its slots Class C may take now
  private readonly slots: Map<string, number>;
  orphanedCalls = 0; // tool calls that outlived their workflow (must stay 0)

  constructor(
    /** Opens a new connection to the same Redis or cluster (subscriber, BullMQ workers). */
    private readonly connect: () => Redis,
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: ExecWorkerOptions,
    private readonly runtime: ExecRuntime,
  ) {
    // A stable instance name (a supervisor's process slot, a pod name) lets a restarted process take over its
    // predecessor's capacity entry at once; otherwise a killed worker's capacity lingers for its heartbeat TTL
    // next to its replacement's, and the pool looks bigger than it is (the drill caught Class C over its share).
    this.workerId = opts.instance ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
    this.slots = cellSlots(opts.concurrency, opts.cells);
    const limits = { concurrency: opts.concurrency, targetLagMs: opts.lagTargetMs, intervalMs: opts.batchAdaptMs };
    // The busiest cell's Class C runs, scaled to the process (each cell advertises its share of the limit).
    const usedC = () => Math.max(0, ...[...this.runningC].map(([c, ids]) => Math.ceil((ids.size * opts.concurrency) / this.slots.get(c)!)));
    this.batch = new BatchLimiter(limits, usedC, () => void this.beat().catch(() => undefined));
  }

  get runningCount(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    const { subscriber } = this.runtime;
    subscriber.on("message", (channel: string, message: string) => this.onSignal(channel, message));
    await subscriber.subscribe(...this.opts.cells.map((c) => this.keys.cell(c).signals));
    for (const cellName of this.opts.cells) this.workers.push(this.cellWorker(cellName));
    // Publish which dependencies each workflow type needs (the dispatcher parks them while one is down).
    const deps = Object.fromEntries([...workflowDependencies()].map(([t, d]) => [t, d.join(",")]));
    if (Object.keys(deps).length) for (const c of this.opts.cells) await this.redis.hset(this.keys.cell(c).workflowDeps, deps);
    await this.beat();
    this.latency.flushEvery(this.redis, this.opts.heartbeatMs);
    this.heartbeatTimer = setInterval(() => void this.beat().catch(() => undefined), this.opts.heartbeatMs);
    this.flagTimer = setInterval(() => void this.pollFlags().catch(() => undefined), this.opts.flagPollMs);
    this.watchForStalls();
    this.batch.start();
    this.log.info(
      { workerId: this.workerId, pool: this.opts.pool, concurrency: this.opts.concurrency, cells: Object.fromEntries(this.slots) },
      "exec worker started",
    );
  }

  /** The BullMQ Worker of one cell: its share of the slots, runs with the cell's runtime, a stalled run stopped at once. */
  private cellWorker(cellName: string): Worker {
    const cell = this.keys.cell(cellName);
    const connection = this.connect();
    connection.on("error", () => undefined);
    this.connections.push(connection);
    const handoff = new RunHandoff(connection, cell, this.workerId, () => this.clock.now(), this.log);
    // Typed, so a field runWorkflow does not know is an error here rather than silently dropped.
    const deps: RunDeps = {
      ...this.runtime.runtimeFor(cellName),
      log: this.log,
      pool: this.opts.pool,
      workerId: this.workerId,
      recordTtlSec: this.opts.recordTtlSec,
      running: this.running,
      runningC: this.runningC.set(cellName, new Set()).get(cellName),
      handoff,
      latency: this.latency,
      lockMayHaveLapsed: (id: string) => this.lockMayHaveLapsed(id, this.clock.now()),
      onOrphans: (n: number) => {
        this.orphanedCalls += n;
        this.log.error({ orphaned: n }, "tool calls outlived their workflow");
      },
    };
    const worker = new LeaseTrackingWorker(
      { lockedAt: this.lockedAt, now: () => this.clock.now(), handoff },
      execQueue(this.opts.pool),
      async (job: Job, token?: string) => {
        const now = this.clock.now();
        // processedOn is the timestamp the fetch that locked the job was sent with.
        this.lockedAt.set(job.id!, Math.min(now, job.processedOn ?? now));
        try {
          return await runWorkflow(deps, cellName, cell, job, token!);
        } finally {
          this.lockedAt.delete(job.id!);
        }
      },
      {
        connection,
        prefix: cell.bullPrefix,
        concurrency: this.slots.get(cellName)!,
        lockDuration: this.opts.lockDurationMs,
        stalledInterval: this.opts.stalledIntervalMs,
        maxStalledCount: this.opts.maxStalledCount,
        ...EXEC_JOB_KEEP,
        name: this.workerId,
        skipVersionCheck: true,
      },
    );
    // BullMQ reports every failed reconnect while Redis is away: the first, then one line per 30 s with a count.
    const workerErrors = new LogThrottle(this.log);
    worker.on("error", (err) => workerErrors.warn({ err: err.message, cell: cellName }, "exec worker error"));
    worker.on("ready", () => workerErrors.ok("exec worker connected again", { cell: cellName }));
    // This process stalled past its lock (a GC pause, SIGSTOP, CPU starvation): BullMQ may already have given
    // the job to another worker. Stop the run at once so it never executes twice at the same time.
    worker.on("lockRenewalFailed", (ids: string[]) => {
      for (const id of ids) {
        this.running.get(id)?.abort("lost");
      }
    });
    return worker;
  }

  /** Graceful stop: leave the pool, let running workflows finish for shutdownGraceMs, hand the rest back ("shutdown"), close. */
  async stop(): Promise<void> {
    for (const timer of [this.heartbeatTimer, this.flagTimer, this.stallTimer]) clearInterval(timer);
    this.batch.stop();
    await Promise.all(this.opts.cells.map((c) => this.leave(c))).catch(() => undefined);
    const closing = Promise.all(this.workers.map((w) => w.close()));
    const grace = setTimeout(() => {
      for (const c of this.running.values()) c.abort("shutdown");
    }, this.opts.shutdownGraceMs);
    await closing;
    clearTimeout(grace);
    await this.latency.close(this.redis);
    await Promise.all(this.connections.map((c) => c.quit().catch(() => undefined)));
  }

  private onSignal(channel: string, message: string): void {
    const [kind, id] = message.split(" ");
    if (!kind || !id) return;
    if (kind === "degraded") {
      // Another process saw the dependency fail: stop calling it here too, without waiting for the cache.
      const cell = this.opts.cells.find((c) => this.keys.cell(c).signals === channel);
      if (cell) this.runtime.health?.set(cell, id, false);
    } else this.signalRun(kind, id);
  }

  private signalRun(kind: string, id: string): void {
    const run = this.running.get(id);
    if (kind === "preempt") run?.abort("preempted");
    else if (kind === "cancel") run?.abort("cancelled");
  }

  /**
   * A process frozen for half its lock or more (GC pause, SIGSTOP, a starved VM) may have lost its jobs to
   * other workers. Timers that fell due during the freeze run in due order when it resumes, and this one
   * (every 10 ms) runs in that first pass and stops every run: each goes back to its queue if its lock is
   * still ours, else to nobody (another worker has it). Work resumes after the last durable step. A callback
   * due before this tick still runs first; what it returns is refused (the lock is gone), a tool call it
   * starts is aborted before its permit comes back, and a run a fetch's late reply would start never starts.
   */
  private watchForStalls(): void {
    let last = this.clock.now();
    this.stallTimer = setInterval(() => {
      const now = this.clock.now();
      if (now - last >= this.opts.lockDurationMs / 2 && this.running.size) {
        this.log.warn({ stalledMs: now - last, runs: this.running.size }, "this process stalled past half its lock: stopping its runs");
        for (const c of this.running.values()) c.abort("stalled");
      }
      last = now;
      this.stopUnrenewedRuns(now);
    }, 10);
    this.stallTimer.unref();
  }

  /**
   * A run whose lock could not be renewed for three quarters of its duration (Redis unreachable, restarting, or
   * too slow to answer) stops before the lock can lapse and let another worker take the job: the same hand-back
   * as a stall, which completes once Redis answers. Renewals run every quarter to half lock, so a healthy run
   * never comes near this. One whose lock is that old when it would start never starts (runWorkflow.ts).
   */
  private stopUnrenewedRuns(now: number): void {
    let stopped = 0;
    let oldest = 0;
    for (const [id, c] of this.running) {
      if (c.aborted || !this.lockMayHaveLapsed(id, now)) continue;
      c.abort("stalled");
      stopped++;
      oldest = Math.max(oldest, now - this.lockedAt.get(id)!);
    }
    const why = "could not renew run locks: stopping those runs before another worker may take them";
    if (stopped) this.log.warn({ runs: stopped, unrenewedMs: oldest }, why);
  }

  private lockMayHaveLapsed(id: string, now: number): boolean {
    const at = this.lockedAt.get(id);
    return at !== undefined && now - at >= (this.opts.lockDurationMs * 3) / 4;
  }

  private async pollFlags(): Promise<void> {
    if (!this.running.size) return;
    const ids = [...this.running.keys()];
    // One pipeline per cell: a pipeline on a Redis Cluster must stay within one hash slot.
    for (const c of this.opts.cells) {
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hmget(this.keys.cell(c).workflow(id), "preemptRequested", "cancelRequested");
      const replies = (await pipeline.exec()) ?? [];
      replies.forEach(([, v], i) => {
        const [preempt, cancel] = (v as (string | null)[]) ?? [];
        if (cancel) this.signalRun("cancel", ids[i]!);
        else if (preempt) this.signalRun("preempt", ids[i]!);
      });
    }
  }

  private async beat(): Promise<void> {
    const now = this.clock.now();
    const until = now + this.opts.heartbeatTtlMs;
    const types = workflowTypes();
    for (const c of this.opts.cells) {
      const cell = this.keys.cell(c);
      const slots = this.slots.get(c)!;
      const batch = cellBatch(this.batch.value, this.opts.concurrency, slots);
      await heartbeat(this.redis, cell, this.opts.pool, this.workerId, slots, now, until, batch);
      // Advertise the types this process can run for as long as its capacity entry lives (GT: another
      // worker's later expiry stands); admission refuses the others (src/admission/workflowTypes.ts).
      if (types.length)
        await this.redis
          .pipeline()
          .zadd(cell.types, "GT", ...types.flatMap((t) => [until, t]))
          .zremrangebyscore(cell.types, "-inf", now)
          .exec();
    }
  }

  private leave(cell: string): Promise<number> {
    const now = this.clock.now();
    return heartbeat(this.redis, this.keys.cell(cell), this.opts.pool, this.workerId, 0, now, now);
  }
}
