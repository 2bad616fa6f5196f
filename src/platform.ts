import type { Redis, RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { createKeys, type Keys } from "../queues/keys.ts";
import { Admission } from "./admission/admit.ts";
import { AuditLog } from "./api/audit.ts";
import { systemClock, type Clock } from "./lib/clock.ts";
import type { Config } from "./lib/config.ts";
import {
  closeConnection,
  connect,
  connectForRequests,
  describeTarget,
  readMaxmemoryPolicy,
  serversOf,
  toTarget,
  whenReady,
  type RedisTarget,
} from "./lib/redis.ts";
import { LogThrottle } from "./observability/logger.ts";
import { ApiKeys } from "./tenancy/apiKeys.ts";
import { PolicyRegistry } from "./tenancy/registry.ts";

/** What every role shares: one Redis connection (and one for bulk admissions, opened at the first), the key schema, the policy registry. */
export interface Platform {
  config: Config;
  /** The Redis URL; for a cluster a description for logs, "redis cluster (seeds ...)". */
  redisUrl: string;
  /** One server or a cluster (src/lib/redis.ts); roles open extra connections with `connect()`. */
  target: RedisTarget;
  redis: Redis;
  /** Another connection to the same Redis (or cluster): blocking waits, subscribers, BullMQ workers. */
  connect(opts?: Pick<RedisOptions, "enableAutoPipelining">): Redis;
  keys: Keys;
  clock: Clock;
  registry: PolicyRegistry;
  apiKeys: ApiKeys;
  audit: AuditLog;
  admission: Admission;
  /** The api role's fail-fast connection and the services over it (see RequestPlatform). */
  forRequests(): Promise<RequestPlatform>;
  close(): Promise<void>;
}

/**
 * What request handlers use: a connection of their own that fails fast while
 * Redis is away (connectForRequests in src/lib/redis.ts: a 503 within 2 s,
 * not a hang), and the API keys, audit log and admission over it. The
 * platform's own connection waits for Redis's return instead, as the roles'
 * loops and BullMQ want. Policies are still read from (and written through)
 * the platform's registry.
 */
export interface RequestPlatform {
  redis: Redis;
  apiKeys: ApiKeys;
  audit: AuditLog;
  admission: Admission;
  close(): Promise<void>;
}

/**
 * BullMQ's rule, enforced: a queue's Redis must never evict (a queued workflow, its record or a
 * slot lease would vanish). Refuses any other maxmemory-policy; warns and goes on when the server
 * tells neither through CONFIG GET nor INFO (some managed Redis).
 */
export async function checkEvictionPolicy(redis: Redis, where: string, log: Logger): Promise<void> {
  await redis.ping(); // connected (a cluster: its masters known)
  for (const node of serversOf(redis)) {
    const policy = await readMaxmemoryPolicy(node);
    if (policy === undefined)
      log.warn({ redis: where }, "cannot read maxmemory-policy (CONFIG GET and INFO refused); make sure it is noeviction");
    else if (policy !== "noeviction")
      throw new Error(
        `Redis ${where} has maxmemory-policy "${policy}": when it is full it would evict queued workflows and their records. ` +
          "Fairlane requires maxmemory-policy noeviction (redis.conf, your provider's parameter group, or CONFIG SET maxmemory-policy noeviction).",
      );
  }
}

/** `where`: a URL (`?cluster=1` for a cluster seeded by its host) or a target (src/lib/redis.ts). */
export async function openPlatform(
  config: Config,
  where: string | RedisTarget,
  log: Logger,
  clock: Clock = systemClock,
): Promise<Platform> {
  const target = toTarget(where);
  const redis = connect(target);
  // Every reconnect attempt fails while Redis is away: one line, then one per 30 s with a count.
  const connectionLog = new LogThrottle(log);
  redis.on("error", (err) => connectionLog.warn({ err: err.message }, "redis connection error"));
  redis.on("ready", () => connectionLog.ok("redis connection restored"));
  try {
    await checkEvictionPolicy(redis, describeTarget(target), log);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const keys = createKeys(config.FAIRLANE_PREFIX);
  const registry = new PolicyRegistry(redis, keys, config.FAIRLANE_POLICY_POLL_MS);
  await registry.start();
  const limits = {
    maxQueuedTotal: config.FAIRLANE_MAX_QUEUED_TOTAL,
    idempotencyTtlSec: config.FAIRLANE_IDEMPOTENCY_TTL_SEC,
    retryAfterSec: config.FAIRLANE_RETRY_AFTER_SEC,
    maxPayloadBytes: config.FAIRLANE_MAX_PAYLOAD_BYTES,
  };
  // Bulk admissions on a connection of their own (Admission, BULK_CHUNK), opened at the first bulk: most
  // roles never admit.
  const bulk = connect(target, { lazyConnect: true });
  bulk.on("error", (err) => connectionLog.warn({ err: err.message }, "redis connection error (bulk admission)"));
  const admission = new Admission(redis, keys, registry, clock, limits, bulk);
  const trailCell = (tenant: string) => {
    const cell = registry.get(tenant)?.policy.cell;
    return cell === undefined ? undefined : keys.cell(cell);
  };
  return {
    config,
    redisUrl: target.kind === "single" ? target.url : describeTarget(target),
    target,
    redis,
    connect: (opts) => connect(target, opts),
    keys,
    clock,
    registry,
    apiKeys: new ApiKeys(redis, keys),
    audit: new AuditLog(redis, keys, clock, trailCell),
    admission,
    async forRequests() {
      const fastLog = new LogThrottle(log);
      const open = (what: string) => {
        const c = connectForRequests(target);
        c.on("error", (err) => fastLog.warn({ err: err.message }, `redis connection error (${what})`));
        c.on("ready", () => fastLog.ok(`redis connection restored (${what})`));
        return c;
      };
      const [fast, fastBulk] = [open("requests"), open("bulk admission")];
      await Promise.all([whenReady(fast), whenReady(fastBulk)]).catch((err: unknown) => {
        fast.disconnect();
        fastBulk.disconnect();
        throw err;
      });
      return {
        redis: fast,
        apiKeys: new ApiKeys(fast, keys),
        audit: new AuditLog(fast, keys, clock, trailCell),
        admission: new Admission(fast, keys, registry, clock, limits, fastBulk),
        close: async () => {
          await Promise.all([closeConnection(fast), closeConnection(fastBulk)]);
        },
      };
    },
    async close() {
      registry.stop();
      // Never opened (no bulk was admitted): nothing to quit.
      if (bulk.status === "wait") bulk.disconnect();
      await Promise.all([closeConnection(redis), closeConnection(bulk)]);
    },
  };
}
