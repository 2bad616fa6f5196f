import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { createKeys, type Keys } from "../queues/keys.ts";
import { Admission } from "./admission/admit.ts";
import { AuditLog } from "./api/audit.ts";
import { systemClock, type Clock } from "./lib/clock.ts";
import type { Config } from "./lib/config.ts";
import { connect, describeTarget, toTarget, type RedisTarget } from "./lib/redis.ts";
import { ApiKeys } from "./tenancy/apiKeys.ts";
import { PolicyRegistry } from "./tenancy/registry.ts";

/** What every role shares: one Redis connection, the key schema, the policy registry. */
export interface Platform {
  config: Config;
  /** The Redis URL; for a cluster a description for logs, "redis cluster (seeds ...)". */
  redisUrl: string;
  /** One server or a cluster (src/lib/redis.ts); roles open extra connections with `connect()`. */
  target: RedisTarget;
  redis: Redis;
  /** Another connection to the same Redis (or cluster): blocking waits, subscribers, BullMQ workers. */
  connect(): Redis;
  keys: Keys;
  clock: Clock;
  registry: PolicyRegistry;
  apiKeys: ApiKeys;
  audit: AuditLog;
  admission: Admission;
  close(): Promise<void>;
}

/** `where`: a URL (`?cluster=1` for a cluster seeded by its host) or a target (src/lib/redis.ts). */
export async function openPlatform(config: Config, where: string | RedisTarget, log: Logger, clock: Clock = systemClock): Promise<Platform> {
  const target = toTarget(where);
  const redis = connect(target);
  redis.on("error", (err) => log.warn({ err: err.message }, "redis connection error"));
  const keys = createKeys(config.FAIRLANE_PREFIX);
  const registry = new PolicyRegistry(redis, keys, config.FAIRLANE_POLICY_POLL_MS);
  await registry.start();
  const admission = new Admission(redis, keys, registry, clock, {
    maxQueuedTotal: config.FAIRLANE_MAX_QUEUED_TOTAL,
    idempotencyTtlSec: config.FAIRLANE_IDEMPOTENCY_TTL_SEC,
    retryAfterSec: config.FAIRLANE_RETRY_AFTER_SEC,
    maxPayloadBytes: config.FAIRLANE_MAX_PAYLOAD_BYTES,
  });
  return {
    config,
    redisUrl: target.kind === "single" ? target.url : describeTarget(target),
    target,
    redis,
    connect: () => connect(target),
    keys,
    clock,
    registry,
    apiKeys: new ApiKeys(redis, keys),
    audit: new AuditLog(redis, keys, clock),
    admission,
    async close() {
      registry.stop();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
