import type { Redis } from "ioredis";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";

/**
 * Per-tenant rate limits on tools and dependencies (`policy.rateLimits`:
 * `{ <name>: { limit, per } }`), counted in Redis with rate-limiter-flexible's
 * atomic fixed window (the window opens at the first call and lasts one `per`).
 *
 * Keys: `<keyPrefix>:<per>:<tenant>:<name>` — the tenant is part of every key, so
 * one tenant spending its limit never touches another's. The window length is
 * in the key and the limit is not: lowering or raising a tenant's limit keeps
 * what it already spent in the current window; changing `per` starts afresh.
 * Tenant ids have no ":" (queues/names.ts TENANT_ID), so keys are unambiguous.
 *
 * consume() outcomes:
 *   no limit configured for name                  → { ok: true, waitedMs: 0 } (nothing counted)
 *   a point is left in the window                 → { ok: true, waitedMs }
 *   spent, window reopens before deadlineAt       → sleep until it reopens, then try again
 *   (deadlineAt null = no deadline: always waits)
 *   spent, window reopens at or after deadlineAt  → { ok: false, retryAfterMs } (nothing waited for)
 *   signal fires before or while waiting          → throws the signal's reason
 *   Redis fails                                   → throws the Redis error
 * A refused call still counts inside the window (the library's behaviour); it
 * cannot lengthen the window, which is fixed when the window opens.
 */

export type RatePer = "second" | "minute" | "hour" | "day";
export type RateLimits = Record<string, { limit: number; per: RatePer }>;

export const PER_SECONDS: Record<RatePer, number> = { second: 1, minute: 60, hour: 3_600, day: 86_400 };

export interface ConsumeOptions {
  /** Absolute epoch ms; null when the workflow has no deadline. */
  deadlineAt: number | null;
  clock: { now(): number };
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
}

export type ConsumeResult = { ok: true; waitedMs: number } | { ok: false; retryAfterMs: number };

export class TenantRateLimits {
  private readonly limiters = new Map<string, RateLimiterRedis>();

  constructor(
    private readonly redis: Redis,
    /** e.g. `<root>:{<root>.<cell>}:fl:rl`; the caller builds it (queues/keys.ts owns key names). */
    private readonly keyPrefix: string,
  ) {}

  /** Consumes one point of the tenant's limit for `name` (a tool or dependency name), waiting for the window when the deadline allows. */
  async consume(tenant: string, name: string, limits: RateLimits, o: ConsumeOptions): Promise<ConsumeResult> {
    const rule = Object.hasOwn(limits, name) ? limits[name] : undefined;
    if (!rule) return { ok: true, waitedMs: 0 };
    const limiter = this.limiter(rule.limit, rule.per);
    const key = `${tenant}:${name}`;
    const started = o.clock.now();
    for (;;) {
      o.signal?.throwIfAborted();
      try {
        await limiter.consume(key, 1);
        return { ok: true, waitedMs: Math.max(0, o.clock.now() - started) };
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        const retryAfterMs = Math.max(1, err.msBeforeNext);
        if (o.deadlineAt !== null && o.clock.now() + retryAfterMs >= o.deadlineAt) return { ok: false, retryAfterMs };
        try {
          await o.sleep(retryAfterMs, o.signal);
        } catch (sleepErr) {
          throw o.signal?.aborted ? o.signal.reason : sleepErr;
        }
      }
    }
  }

  private limiter(limit: number, per: RatePer): RateLimiterRedis {
    const id = `${limit}/${per}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = new RateLimiterRedis({
        storeClient: this.redis,
        useRedisPackage: false,
        keyPrefix: `${this.keyPrefix}:${per}`,
        points: limit,
        duration: PER_SECONDS[per],
      });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}
