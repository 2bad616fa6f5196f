/**
 * The dispatcher role: moves workflows from ingress queues into exec queues,
 * fairly and within every cap. Run two or more for availability: decisions
 * are atomic in Redis, so they never overshoot a cap or move a job twice.
 *   REDIS_URL=redis://... tsx workers/dispatcher.ts
 * Each cell in FAIRLANE_CELLS gets its own loop and blocking connection.
 */
import type { Logger } from "pino";
import type { Platform } from "../src/platform.ts";
import { DEFAULT_DISPATCHER, Dispatcher } from "../src/dispatch/dispatcher.ts";
import { isMain, runPlatformRole } from "./role.ts";

export async function startDispatcherRole(p: Platform, log: Logger): Promise<{ dispatcher: Dispatcher; stop(): Promise<void> }> {
  const c = p.config;
  const blocking = () => {
    const c = p.connect();
    c.on("error", () => undefined);
    return c;
  };
  const dispatcher = new Dispatcher(p.redis, blocking, p.keys, p.registry, p.clock, log, {
    ...DEFAULT_DISPATCHER,
    cells: c.FAIRLANE_CELLS.split(","),
    maxMoves: c.FAIRLANE_DISPATCH_BATCH,
    reserveFraction: c.FAIRLANE_RESERVE_A,
    batchMaxShare: c.FAIRLANE_BATCH_MAX_SHARE,
    batchMinShare: c.FAIRLANE_BATCH_MIN_SHARE,
    capacityCap: c.FAIRLANE_POOL_CAPACITY_CAP,
    recordTtlSec: c.FAIRLANE_RECORD_TTL_SEC,
    prefetch: { ...DEFAULT_DISPATCHER.prefetch, max: c.FAIRLANE_PREFETCH_MAX, windowMs: c.FAIRLANE_PREFETCH_WINDOW_MS },
  });
  dispatcher.start();
  log.info({ cells: c.FAIRLANE_CELLS }, "dispatcher started");
  return {
    dispatcher,
    async stop() {
      await dispatcher.stop();
    },
  };
}

if (isMain(import.meta.url)) runPlatformRole("dispatcher", startDispatcherRole);
