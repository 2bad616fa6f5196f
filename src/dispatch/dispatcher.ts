import { SpanKind } from "@opentelemetry/api";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Keys } from "../../queues/keys.ts";
import { dispatch, type DispatchOptions, type DispatchResult, settleReleased } from "../../queues/lua/dispatch.ts";
import { expireQueued } from "../../queues/lua/expireQueued.ts";
import { expireReviews } from "../../queues/lua/review.ts";
import { reconcileSlots } from "../../queues/lua/reconcileSlots.ts";
import type { Clock } from "../lib/clock.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import { LogThrottle } from "../observability/logger.ts";
import { metrics } from "../observability/metrics.ts";
import { tracer } from "../observability/tracing.ts";
import { DEFAULT_PREFETCH, PrefetchController, type PrefetchOptions } from "./policy/prefetch.ts";
import { DEFAULT_SHARES } from "./policy/shares.ts";
import { TenantSync } from "./tenantSync.ts";
import { trimHistory } from "../../queues/trail.ts";
import { retentionSec, trailRetentionMs } from "../tenancy/policy.ts";
import { runListRetentionMs } from "../../queues/listMember.ts";

export interface DispatcherOptions {
  cells: string[];
  maxMoves: number;
  reserveFraction: number;
  batchMaxShare: number;
  batchMinShare: number;
  capacityCap: number;
  recordTtlSec: number;
  reconcileMs: number;
  /** How often queued workflows whose deadline passed are failed, dispatchable or not. */
  expireMs: number;
  /** A slot lease younger than this is never reconciled (a move in flight). */
  reconcileGraceMs: number;
  /** Longest a dispatcher sleeps without a wake-up (capacity expiry, burst windows). */
  idleWakeMs: number;
  /** A preemption request older than this whose workflow has not yielded counts as ignored. */
  ignoredAfterMs: number;
  /** How often the tenants' audit trails and run lists are trimmed to their retention (queues/trail.ts). */
  historyTrimMs: number;
  /** Each pool's prefetch: the most it may reach, a fraction of its capacity (0: none), and the wait it may cause. */
  prefetch: PrefetchOptions;
}

export const DEFAULT_DISPATCHER: Omit<DispatcherOptions, "cells"> = {
  maxMoves: 64,
  reserveFraction: DEFAULT_SHARES.reserveFraction,
  batchMaxShare: DEFAULT_SHARES.batchMaxShare,
  batchMinShare: DEFAULT_SHARES.batchMinShare,
  capacityCap: 0,
  recordTtlSec: 7 * 24 * 3600,
  reconcileMs: 5_000,
  expireMs: 1_000,
  reconcileGraceMs: 10_000,
  idleWakeMs: 500,
  ignoredAfterMs: 5_000,
  historyTrimMs: 60_000,
  prefetch: DEFAULT_PREFETCH,
};

/** Tenants whose readiness one dispatch call recomputes at most (the rest wait for the next call). */
const MAX_REFRESH_PER_CALL = 1000;

/** The dispatch script's options for a dispatcher's (its prefetch apart, set per call). */
export function dispatchOptions(o: Omit<DispatcherOptions, "cells">): DispatchOptions {
  const { maxMoves, batchMaxShare, batchMinShare, capacityCap, recordTtlSec, ignoredAfterMs } = o;
  const maxRefresh = MAX_REFRESH_PER_CALL;
  return { maxMoves, reserveA: o.reserveFraction, batchMaxShare, batchMinShare, capacityCap, recordTtlSec, ignoredAfterMs, maxRefresh };
}

/**
 * The dispatcher role's loop. States:
 *   sync      the policy registry moved: copy changed caps into the cells
 *   dispatch  run the dispatch script for every pool of every cell until a
 *             call moves fewer than maxMoves (nothing more can start now)
 *   reconcile every reconcileMs: release slot leases of runs that are gone
 *   wait      block on the cell's wake marker (BZPOPMIN), set by admission,
 *             slot release, policy sync and new exec workers, so a freed
 *             slot is refilled within milliseconds; idleWakeMs at most
 * Each cell runs this loop on its own (cells are independent: each is one hash
 * slot, on a Redis Cluster possibly on its own master), so one busy cell never
 * delays another's wake-up.
 * All decisions are made inside the script, atomically: any number of
 * dispatchers may run this loop against the same cells.
 * Connections: one for commands, one per cell for the blocking wait (a
 * BZPOPMIN blocks its connection) — never one per tenant or per queue.
 */
export class Dispatcher {
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private readonly registryVersion = new Map<string, string>(); // cell -> registry version synced
  private readonly lastReconcile = new Map<string, number>();
  private readonly lastExpire = new Map<string, number>();
  private readonly lastTrim = new Map<string, number>();
  private readonly ignoredByCell = new Map<string, number>();
  private readonly poolsByCell = new Map<string, string[]>(); // cell -> its pools as the last pass read them
  private readonly prefetch = new Map<string, PrefetchController>(); // "<cell> <pool>" -> its pool's
  private readonly blockingConnections: Redis[] = [];
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
    /** The blocking connection, or a factory that opens one per cell (needed to block on several cells). */
    private readonly blocking: Redis | (() => Redis),
    private readonly keys: Keys,
    private readonly registry: PolicyRegistry,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions,
  ) {
    this.sync = new TenantSync(redis, keys);
    this.scriptOpts = dispatchOptions(opts);
  }

  start(): void {
    const cells = this.opts.cells;
    for (const cell of cells) void this.publishSettings(cell);
    const factory = typeof this.blocking === "function" ? this.blocking : undefined;
    this.loopDone = Promise.all(
      cells.map((cell, i) => {
        // One given connection can block for one cell only; further cells then poll every 20 ms.
        const conn = factory ? factory() : i === 0 ? (this.blocking as Redis) : undefined;
        if (factory) this.blockingConnections.push(conn!);
        return this.loop(cell, conn);
      }),
    ).then(() => undefined);
  }

  /**
   * The share options and capacity cap this dispatcher passes to the script, where explanations of
   * held work read them (src/workflows/explain.ts): the rule's inputs as the dispatcher has them, not
   * as another process's environment says. Rewritten with each reconcile (a Redis that lost it).
   */
  private publishSettings(cell: string): Promise<unknown> {
    const { reserveFraction, batchMaxShare, batchMinShare, capacityCap } = this.opts;
    return this.redis
      .hset(this.keys.cell(cell).dispatchSettings, { reserveFraction, batchMaxShare, batchMinShare, capacityCap })
      .catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Ends a BZPOPMIN in progress; a given connection is the dispatcher's to close, started or not.
    if (typeof this.blocking !== "function") this.blocking.disconnect();
    for (const c of this.blockingConnections) c.disconnect();
    await this.loopDone;
  }

  /** One pass over every cell and pool; returns whether any call hit maxMoves (more may start now). */
  async pass(): Promise<boolean> {
    let more = false;
    for (const cellName of this.opts.cells) if (await this.passCell(cellName)) more = true;
    return more;
  }

  /**
   * One pass over one cell's pools; returns whether any call hit maxMoves (more may start now). It settles the finishes' releases
   * (the pools' set read alongside), then is one round trip per pool: on a busy machine every round trip delays the next, and a
   * woken Class A's dispatch with it. So it dispatches the pools the last pass read while this one's read is in flight; a pool new
   * since then (an exec worker's first heartbeat) makes it report more work, and the next pass dispatches it at once.
   */
  async passCell(cellName: string): Promise<boolean> {
    await this.syncPolicies(cellName);
    let more = false;
    let ignored = 0;
    const cell = this.keys.cell(cellName);
    const reading = this.redis.smembers(cell.pools);
    reading.catch(() => undefined); // awaited below; a call that throws first must not leave it unhandled
    const known = this.poolsByCell.get(cellName) ?? (await reading);
    await settleReleased(this.redis, cell); // before the dispatch calls take their `now` (settleReleased-1.lua)
    for (const pool of known) {
      const began = performance.now();
      const beganAt = Date.now();
      const key = `${cellName} ${pool}`;
      const pf = this.prefetch.get(key) ?? this.prefetch.set(key, new PrefetchController(this.opts.prefetch)).get(key)!;
      const opts = { ...this.scriptOpts, ...pf.next() };
      const r: DispatchResult = await dispatch(this.redis, cell, pool, this.clock.now(), opts);
      metrics.dispatchSeconds.observe((performance.now() - began) / 1000);
      pf.observe(this.clock.now(), r);
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
      ignored += r.ignored;
    }
    const pools = await reading;
    if (pools.some((pool) => !known.includes(pool))) more = true;
    this.poolsByCell.set(cellName, pools);
    if (ignored > (this.ignoredByCell.get(cellName) ?? 0))
      this.log.warn({ cell: cellName, ignored }, "Class C workflows ignore their preemption signal; Class A waits for the next free slot");
    this.ignoredByCell.set(cellName, ignored);
    this.stats.preemptionsIgnored = [...this.ignoredByCell.values()].reduce((a, b) => a + b, 0);
    metrics.preemptionsIgnored.set(this.stats.preemptionsIgnored);
    this.stats.passes++;
    if (this.clock.now() - (this.lastReconcile.get(cellName) ?? 0) >= this.opts.reconcileMs) await this.reconcile([cellName]);
    if (this.clock.now() - (this.lastExpire.get(cellName) ?? 0) >= this.opts.expireMs) await this.expire(cellName);
    if (this.clock.now() - (this.lastTrim.get(cellName) ?? 0) >= this.opts.historyTrimMs) await this.trimHistory(cellName);
    return more;
  }

  /**
   * Every tenant ever synced into the cell (a moved one keeps its history here): its trail's entries and its
   * run-list entries past their retention go (queues/trail.ts).
   */
  async trimHistory(cellName: string): Promise<void> {
    this.lastTrim.set(cellName, this.clock.now());
    const cell = this.keys.cell(cellName);
    const retention = (t: string) => {
      const p = this.registry.get(t)?.policy;
      return p ? { trailMs: trailRetentionMs(p), runListMs: runListRetentionMs(retentionSec(p), this.opts.recordTtlSec) } : null;
    };
    await trimHistory(this.redis, cell, await this.redis.smembers(cell.tenants), retention, this.clock.now());
  }

  async reconcile(cells: string[] = this.opts.cells): Promise<number> {
    let released = 0;
    for (const cellName of cells) {
      this.lastReconcile.set(cellName, this.clock.now());
      void this.publishSettings(cellName);
      released += await reconcileSlots(
        this.redis,
        this.keys.cell(cellName),
        this.clock.now(),
        this.opts.reconcileGraceMs,
        this.opts.recordTtlSec,
      );
    }
    if (released) this.log.warn({ released }, "reconciler released slots of runs that were gone");
    metrics.reconciled.inc(released);
    this.stats.reconciled += released;
    return released;
  }

  /**
   * Fails the queued workflows whose deadline passed while their tenant could not be dispatched
   * (paused, at its cap, no capacity): the dispatch script only fails those it takes. Then review items
   * past their SLA or their workflow's deadline escalate or fail (queues/lua/expireReviews-1.lua).
   */
  async expire(cellName: string): Promise<number> {
    this.lastExpire.set(cellName, this.clock.now());
    // Independent sweeps, sent together: one round trip of the pass rather than two.
    const [n, rv] = await Promise.all([
      expireQueued(this.redis, this.keys.cell(cellName), this.clock.now(), this.opts.recordTtlSec),
      expireReviews(this.redis, this.keys.cell(cellName), this.clock.now(), this.opts.recordTtlSec),
    ]);
    if (n) metrics.deadlineExpired.inc({ tier: "any", where: "queued" }, n);
    if (rv.escalated) metrics.reviewTimeouts.inc({ outcome: "escalated" }, rv.escalated);
    if (rv.failed) metrics.reviewTimeouts.inc({ outcome: "failed" }, rv.failed);
    this.stats.expired += n;
    return n;
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

  private async syncPolicies(cell: string): Promise<void> {
    const v = this.registry.currentVersion;
    if (v === this.registryVersion.get(cell)) return;
    await this.sync.sync(cell, this.registry.list(), this.registry.orgs());
    this.registryVersion.set(cell, v); // only once written: a sync refused (Redis full, read-only) is retried next pass
  }

  private async loop(cellName: string, blocking: Redis | undefined): Promise<void> {
    const wake = this.keys.cell(cellName).wake;
    // While Redis is full or read-only every pass fails (away, commands wait for its return): log the
    // first failure, then one line per 30 s with a count; back off from 200 ms to 2 s between tries.
    const failures = new LogThrottle(this.log);
    let failed = 0;
    while (!this.stopping) {
      try {
        const more = await this.passCell(cellName);
        if (!more && !this.stopping) {
          // One blocking wait cannot span cells (hash slots): each cell's loop has its own connection.
          if (blocking) await blocking.bzpopmin(wake, this.opts.idleWakeMs / 1000);
          else await new Promise((r) => setTimeout(r, 20));
        }
        failed = 0;
        failures.ok("dispatch passes succeed again", { cell: cellName });
      } catch (err) {
        if (this.stopping) break;
        failures.error({ cell: cellName, err: (err as Error).message }, "dispatch pass failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** failed++, 2_000)));
      }
    }
  }
}
