import { SpanKind } from "@opentelemetry/api";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Keys } from "../../queues/keys.ts";
import { dispatch, type DispatchOptions, type DispatchResult } from "../../queues/lua/dispatch.ts";
import { reconcileSlots } from "../../queues/lua/reconcileSlots.ts";
import type { Clock } from "../lib/clock.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import { metrics } from "../observability/metrics.ts";
import { tracer } from "../observability/tracing.ts";
import { DEFAULT_SHARES } from "./policy/shares.ts";
import { TenantSync } from "./tenantSync.ts";

export interface DispatcherOptions {
  cells: string[];
  maxMoves: number;
  reserveFraction: number;
  batchMaxShare: number;
  batchMinShare: number;
  capacityCap: number;
  recordTtlSec: number;
  reconcileMs: number;
  /** A slot lease younger than this is never reconciled (a move in flight). */
  reconcileGraceMs: number;
  /** Longest a dispatcher sleeps without a wake-up (capacity expiry, burst windows). */
  idleWakeMs: number;
  /** A preemption request older than this whose workflow has not yielded counts as ignored. */
  ignoredAfterMs: number;
}

export const DEFAULT_DISPATCHER: Omit<DispatcherOptions, "cells"> = {
  maxMoves: 64,
  reserveFraction: DEFAULT_SHARES.reserveFraction,
  batchMaxShare: DEFAULT_SHARES.batchMaxShare,
  batchMinShare: DEFAULT_SHARES.batchMinShare,
  capacityCap: 0,
  recordTtlSec: 7 * 24 * 3600,
  reconcileMs: 5_000,
  reconcileGraceMs: 10_000,
  idleWakeMs: 500,
  ignoredAfterMs: 5_000,
};

/** Exec jobs: one BullMQ attempt (Fairlane retries inside the runtime), removed once done. */
export const EXEC_JOB_OPTS = JSON.stringify({ attempts: 1, removeOnComplete: true, removeOnFail: { age: 24 * 3600 } });

/**
 * The dispatcher role's loop. States:
 *   sync      the policy registry moved: copy changed caps into the cells
 *   dispatch  run the dispatch script for every pool of every cell until a
 *             call moves fewer than maxMoves (nothing more can start now)
 *   reconcile every reconcileMs: release slot leases of runs that are gone
 *   wait      block on the cell's wake marker (BZPOPMIN), set by admission,
 *             slot release, policy sync and new exec workers, so a freed
 *             slot is refilled within milliseconds; idleWakeMs at most
 * All decisions are made inside the script, atomically: any number of
 * dispatchers may run this loop against the same cells.
 * Connections: one for commands, one for the blocking wait — never one per
 * tenant or per queue.
 */
export class Dispatcher {
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private registryVersion = "";
  private lastReconcile = 0;
  private readonly sync: TenantSync;
  private readonly scriptOpts: DispatchOptions;
  /**
   * Counters since start; `preemptionsIgnored` is a gauge: preemption requests
   * older than `ignoredAfterMs` whose workflow still holds its slot (a handler
   * that ignores its signal is not killed; Class A waits for the next slot).
   */
  readonly stats = { passes: 0, moved: 0, expired: 0, preempted: 0, reconciled: 0, preemptionsIgnored: 0, parked: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly blocking: Redis,
    private readonly keys: Keys,
    private readonly registry: PolicyRegistry,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions,
  ) {
    this.sync = new TenantSync(redis, keys);
    this.scriptOpts = {
      maxMoves: opts.maxMoves,
      reserveA: opts.reserveFraction,
      batchMaxShare: opts.batchMaxShare,
      batchMinShare: opts.batchMinShare,
      execJobOpts: EXEC_JOB_OPTS,
      maxRefresh: 1000,
      capacityCap: opts.capacityCap,
      recordTtlSec: opts.recordTtlSec,
    };
  }

  start(): void {
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.blocking.disconnect(); // ends a BZPOPMIN in progress
    await this.loopDone;
  }

  /** One pass over every cell and pool; returns whether any call hit maxMoves (more may start now). */
  async pass(): Promise<boolean> {
    await this.syncPolicies();
    let more = false;
    let ignored = 0;
    for (const cellName of this.opts.cells) {
      const cell = this.keys.cell(cellName);
      for (const pool of await this.redis.smembers(cell.pools)) {
        ignored += await this.redis.zcount(cell.preempting(pool), "-inf", this.clock.now() - this.opts.ignoredAfterMs);
        const began = performance.now();
        const beganAt = Date.now();
        const r: DispatchResult = await dispatch(this.redis, cell, pool, this.clock.now(), this.scriptOpts);
        metrics.dispatchSeconds.observe((performance.now() - began) / 1000);
        this.stats.moved += r.moved;
        this.stats.expired += r.expired;
        if (r.moved) metrics.dispatched.inc({ pool }, r.moved);
        this.stats.parked += r.parked;
        if (r.parked) metrics.parkedTotal.inc({ dependency: "any", where: "dispatch" }, r.parked);
        if (r.expired) metrics.deadlineExpired.inc({ tier: "any", where: "queued" }, r.expired);
        if (r.preempted) metrics.preempted.inc({ pool }, r.preempted);
        if (r.moved || r.expired || r.parked || r.preempted) this.traceCall(cellName, pool, r, beganAt);
        this.stats.preempted += r.preempted;
        if (r.preempted) this.log.info({ cell: cellName, pool, preempted: r.preempted }, "asked Class C workflows to yield");
        if (r.moved >= this.opts.maxMoves) more = true;
      }
    }
    if (ignored > this.stats.preemptionsIgnored) this.log.warn({ ignored }, "Class C workflows ignore their preemption signal; Class A waits for the next free slot");
    this.stats.preemptionsIgnored = ignored;
    metrics.preemptionsIgnored.set(ignored);
    this.stats.passes++;
    if (this.clock.now() - this.lastReconcile >= this.opts.reconcileMs) await this.reconcile();
    return more;
  }

  async reconcile(): Promise<number> {
    this.lastReconcile = this.clock.now();
    let released = 0;
    for (const cellName of this.opts.cells) {
      released += await reconcileSlots(this.redis, this.keys.cell(cellName), this.clock.now(), this.opts.reconcileGraceMs, this.opts.recordTtlSec);
    }
    if (released) this.log.warn({ released }, "reconciler released slots of runs that were gone");
    metrics.reconciled.inc(released);
    this.stats.reconciled += released;
    return released;
  }

  /**
   * A `fairlane.dispatch` span for a call that changed something, written after
   * the fact (idle passes make none). Its own trace: one call moves up to
   * maxMoves workflows of many tenants, and the script returns counts, not ids.
   */
  private traceCall(cell: string, pool: string, r: DispatchResult, startTime: number): void {
    const span = tracer.startSpan("fairlane.dispatch", { kind: SpanKind.INTERNAL, startTime, root: true });
    if (span.isRecording())
      span.setAttributes({
        "fairlane.cell": cell,
        "fairlane.pool": pool,
        "fairlane.dispatch.moved": r.moved,
        "fairlane.dispatch.expired": r.expired,
        "fairlane.dispatch.parked": r.parked,
        "fairlane.dispatch.preempted": r.preempted,
        "fairlane.pool.capacity": r.capacity,
        "fairlane.pool.used": r.used,
      });
    span.end();
  }

  private async syncPolicies(): Promise<void> {
    const v = this.registry.currentVersion;
    if (v === this.registryVersion) return;
    this.registryVersion = v;
    const entries = this.registry.list();
    for (const cell of this.opts.cells) await this.sync.sync(cell, entries);
  }

  private async loop(): Promise<void> {
    const wake = this.keys.cell(this.opts.cells[0]!).wake;
    while (!this.stopping) {
      try {
        const more = await this.pass();
        if (more || this.stopping) continue;
        if (this.opts.cells.length === 1) await this.blocking.bzpopmin(wake, this.opts.idleWakeMs / 1000);
        else await new Promise((r) => setTimeout(r, 20)); // one blocking wait cannot span cells (hash slots)
      } catch (err) {
        if (this.stopping) break;
        this.log.error({ err: (err as Error).message }, "dispatch pass failed; retrying");
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
