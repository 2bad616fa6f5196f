import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Keys } from "../../queues/keys.ts";
import { recoverParked } from "../../queues/lua/parking.ts";
import type { Clock } from "../lib/clock.ts";
import { LogThrottle } from "../observability/logger.ts";
import { metrics } from "../observability/metrics.ts";
import type { HealthStore } from "./healthStore.ts";
import { isStable, waveSize, type RecoveryOptions } from "./recoveryRule.ts";

/**
 * The recovery worker: every tick, for every dependency with parked
 * workflows — stable (healthy for the whole window): requeue a wave, oldest
 * parked first, paced per dependency, each back in its ingress queue in line
 * by admission time (queues/lua/includes/unpark.lua: a recovered Class A
 * never goes ahead of older Class A; a recovered B or C never ahead of any
 * ready Class A, which the dispatcher serves first); not stable: only fail
 * the ones whose deadline passed while parked. Unknown (a monitor's first
 * probe under way) is not stable either: the parked were parked on evidence,
 * and one probe is not a window. Any number can run: the script's ZREM
 * decides who requeues a workflow.
 */
export class RecoveryWorker {
  private readonly lastWave = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  readonly stats = { requeued: 0, expired: 0, waves: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly health: HealthStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: { cells: string[]; recovery: RecoveryOptions; tickMs: number; recordTtlSec: number },
  ) {}

  /**
   * Ticks every tickMs, never two at once. While ticks fail (Redis full or read-only; an absent
   * Redis makes a tick wait for its return) the next try backs off to at most 5 s, and the failure
   * is logged at once, then at most once per 30 s with a count.
   */
  start(): void {
    const failures = new LogThrottle(this.log);
    let failed = 0;
    let notBefore = 0;
    this.timer = setInterval(() => {
      if (this.running || Date.now() < notBefore) return;
      this.running = this.tick()
        .then(
          () => {
            failed = 0;
            failures.ok("recovery ticks succeed again");
          },
          (err: Error) => {
            notBefore = Date.now() + Math.min(this.opts.tickMs * 2 ** failed++, 5_000);
            failures.warn({ err: err.message }, "recovery tick failed");
          },
        )
        .finally(() => (this.running = undefined));
    }, this.opts.tickMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private lastTenantCount = 0;

  /** Parked workflows per tenant, for the gauge: O(parked), so every 5 s. */
  private async countByTenant(): Promise<void> {
    const counts = new Map<string, number>();
    for (const cellName of this.opts.cells) {
      const cell = this.keys.cell(cellName);
      for (const dep of await this.redis.smembers(cell.deps)) {
        const ids = await this.redis.zrange(cell.parked(dep), 0, -1);
        if (!ids.length) continue;
        const pipeline = this.redis.pipeline();
        for (const id of ids) pipeline.hget(cell.workflow(id), "tenant");
        for (const [, t] of (await pipeline.exec()) ?? []) if (t) counts.set(String(t), (counts.get(String(t)) ?? 0) + 1);
      }
    }
    metrics.parkedByTenant.reset();
    for (const [t, n] of counts) metrics.parkedByTenant.set({ tenant: t }, n);
  }

  async tick(): Promise<void> {
    if (this.clock.now() - this.lastTenantCount >= 5_000) {
      this.lastTenantCount = this.clock.now();
      await this.countByTenant();
    }
    for (const cellName of this.opts.cells) {
      const cell = this.keys.cell(cellName);
      for (const dep of await this.redis.smembers(cell.deps)) {
        const waiting = await this.redis.zcard(cell.parked(dep));
        metrics.parked.set({ dependency: dep }, waiting);
        if (waiting === 0) continue;
        const now = this.clock.now();
        const stable = isStable(await this.health.read(cellName, dep), now, this.opts.recovery.stabilisationMs);
        const id = `${cellName}/${dep}`;
        const n = stable ? waveSize(this.lastWave.get(id), now, this.opts.recovery) : 200;
        if (n <= 0) continue;
        const r = await recoverParked(this.redis, cell, dep, { now, max: n, recordTtlSec: this.opts.recordTtlSec, expireOnly: !stable });
        if (stable) {
          this.lastWave.set(id, now);
          this.stats.waves++;
        }
        this.stats.requeued += r.requeued;
        this.stats.expired += r.expired;
        metrics.recoveredTotal.inc({ dependency: dep, outcome: "requeued" }, r.requeued);
        metrics.recoveredTotal.inc({ dependency: dep, outcome: "expired" }, r.expired);
        for (const ms of r.parkedMs) metrics.timeParked.observe({ dependency: dep }, ms / 1000);
        if (r.requeued || r.expired)
          this.log.info({ cell: cellName, dependency: dep, requeued: r.requeued, expired: r.expired }, "recovered parked workflows");
      }
    }
  }
}
