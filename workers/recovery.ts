/**
 * The recovery role: requeues parked (pending-backpressure) workflows once
 * their dependency has been healthy for FAIRLANE_RECOVERY_STABLE_MS, at most
 * FAIRLANE_RECOVERY_RATE per second per dependency, oldest first. Run two or
 * more: a workflow is requeued by exactly one of them.
 *   REDIS_URL=redis://... tsx workers/recovery.ts
 */
import type { Logger } from "pino";
import { HealthStore } from "../src/backpressure/healthStore.ts";
import { RecoveryWorker } from "../src/backpressure/recovery.ts";
import type { Platform } from "../src/platform.ts";
import { isMain, runPlatformRole } from "./role.ts";

export async function startRecoveryRole(p: Platform, log: Logger): Promise<{ worker: RecoveryWorker; stop(): Promise<void> }> {
  const c = p.config;
  const cells = c.FAIRLANE_CELLS.split(",");
  const worker = new RecoveryWorker(p.redis, p.keys, new HealthStore(p.redis, p.keys, cells, p.clock), p.clock, log, {
    cells,
    recovery: {
      stabilisationMs: c.FAIRLANE_RECOVERY_STABLE_MS,
      ratePerSec: c.FAIRLANE_RECOVERY_RATE,
      maxWave: c.FAIRLANE_RECOVERY_MAX_WAVE,
    },
    tickMs: 250,
    recordTtlSec: c.FAIRLANE_RECORD_TTL_SEC,
  });
  worker.start();
  log.info("recovery worker started");
  return { worker, stop: () => worker.stop() };
}

if (isMain(import.meta.url)) runPlatformRole("recovery", startRecoveryRole);
