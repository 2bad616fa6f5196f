import type { Redis } from "ioredis";
import { z } from "zod";
import type { Keys } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import { UsageRollups } from "./usageRollup.ts";
import { UsageSampler } from "./usageSampler.ts";
import { UsageReader } from "./usageSnapshot.ts";

/**
 * Wires the api process's usage sampler (src/usage/usageSampler.ts)
 * from the environment, parsed once here:
 *   FAIRLANE_USAGE_TICK_MS      1000     how often the sampler reads every tenant (the dashboard's refresh)
 *   FAIRLANE_USAGE_ROLLUP_MS    600000   capacity rollup period (a multiple of 10 s)
 *   FAIRLANE_CELLS, FAIRLANE_RESERVE_A, FAIRLANE_BATCH_MAX_SHARE, FAIRLANE_BATCH_MIN_SHARE,
 *   FAIRLANE_POOL_CAPACITY_CAP           as the dispatcher reads them (the Class A reserve, what holds queued work)
 * The sampler stops when the Redis connection ends (the api role's shutdown).
 */
const Env = z.object({
  FAIRLANE_USAGE_TICK_MS: z.coerce.number().int().min(100).max(60_000).default(1_000),
  FAIRLANE_USAGE_ROLLUP_MS: z.coerce.number().int().min(10_000).multipleOf(10_000).default(600_000),
  FAIRLANE_CELLS: z
    .string()
    .regex(/^[a-z0-9_-]+(,[a-z0-9_-]+)*$/)
    .default("default"),
  FAIRLANE_RESERVE_A: z.coerce.number().min(0).max(1).default(0.1),
  FAIRLANE_BATCH_MAX_SHARE: z.coerce.number().min(0).max(1).default(0.5),
  FAIRLANE_BATCH_MIN_SHARE: z.coerce.number().min(0).max(1).default(0.05),
  FAIRLANE_POOL_CAPACITY_CAP: z.coerce.number().int().nonnegative().default(0),
});

export interface UsageService {
  sampler: UsageSampler;
  rollups: UsageRollups;
  cells: string[];
  stop(): void;
}

export function startUsageService(
  d: { redis: Redis; keys: Keys; clock: Clock; registry: PolicyRegistry },
  env: NodeJS.ProcessEnv = process.env,
): UsageService {
  const parsed = Env.safeParse(env);
  if (!parsed.success)
    throw new Error(`invalid environment: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const e = parsed.data;
  const cells = e.FAIRLANE_CELLS.split(",");
  const reader = new UsageReader(
    d.redis,
    d.keys,
    { reserveFraction: e.FAIRLANE_RESERVE_A, batchMaxShare: e.FAIRLANE_BATCH_MAX_SHARE, batchMinShare: e.FAIRLANE_BATCH_MIN_SHARE },
    e.FAIRLANE_POOL_CAPACITY_CAP,
  );
  const rollups = new UsageRollups(d.redis, d.keys, e.FAIRLANE_USAGE_ROLLUP_MS);
  const sampler = new UsageSampler(reader, d.registry, d.clock, rollups, {
    tickMs: e.FAIRLANE_USAGE_TICK_MS,
    historyEveryMs: 3_000,
    historyPoints: 300, // 15 minutes
    fairnessWindowMs: 60_000,
    cells,
  });
  sampler.start();
  const stop = () => sampler.stop();
  d.redis.once("end", stop);
  return { sampler, rollups, cells, stop };
}
