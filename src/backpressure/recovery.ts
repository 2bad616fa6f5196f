import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Keys } from "../../queues/keys.ts";
import { recoverParked } from "../../queues/lua/parking.ts";
import type { Clock } from "../lib/clock.ts";
import { metrics } from "../observability/metrics.ts";
import type { HealthStore } from "./healthStore.ts";
import { isStable, waveSize, type RecoveryOptions } from "./recoveryRule.ts";

/**
 * The recovery worker: every tick, for every dependency with parked
 * workflows — stable (healthy for the whole window): requeue a wave, oldest
 * first, paced per dependency; not stable: only fail the ones whose deadline
 * passed while parked. Any number can run: the script's ZREM decides who
 * requeues a workflow.
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

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.tick()
        .catch((err: Error) => this.log.warn({ err: err.message }, "recovery tick failed"))
        .finally(() => (this.running = undefined));
    }, this.opts.tickMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async tick(): Promise<void> {
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
        if (r.requeued || r.expired) this.log.info({ cell: cellName, dependency: dep, ...r }, "recovered parked workflows");
      }
    }
  }
}
