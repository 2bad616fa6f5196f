import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { mulberry32 } from "../../src/dev/downstream/simulator.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import type { WorkflowView } from "../../src/workflows/record.ts";
import { readWorkflow } from "../../src/workflows/record.ts";
import { readObservation, type Observation } from "./observer.ts";
import { freshPrefix, testRedisUrl } from "./redis.ts";
import { spawnRole, type RoleProcess } from "./roles.ts";

/**
 * A deployment for end-to-end tests: real role processes on a real Redis
 * with a fresh prefix, an admission front in the test process, and the
 * observer's own keys (`obs`).
 */
export interface Deployment {
  p: Platform;
  obs: string;
  env: Record<string, string>;
  roles: RoleProcess[];
  start(role: "exec" | "dispatcher" | "health" | "recovery", env?: Record<string, string>): RoleProcess;
  admit(tenant: string, items: Record<string, unknown>[]): Promise<string[]>;
  waitEnded(tenantIds: Map<string, string>, timeoutMs: number): Promise<WorkflowView[]>;
  observation(): Promise<Observation>;
  /** Waits until the pool's live exec workers advertise at least `slots` (processes take a moment to boot). */
  waitCapacity(slots: number, pool?: string): Promise<void>;
  /** Slot leases and the counters derived from them, for the quiescence check. */
  counters(): Promise<{ slots: number; used: Record<string, string>; running: Record<string, Record<string, string>>; queued: number }>;
  close(): Promise<void>;
}

/** `redisUrl`: a Redis of the test's own (helpers/privateRedis.ts) instead of the shared one. */
export async function deployment(
  tenants: Record<string, PolicySpec>,
  env: Record<string, string> = {},
  redisUrl?: string,
): Promise<Deployment> {
  const prefix = freshPrefix();
  redisUrl ??= await testRedisUrl();
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: prefix, FAIRLANE_MAX_QUEUED_TOTAL: "1000000", PORT: "0" });
  const p = await openPlatform(config, redisUrl, createLogger("test", "silent"));
  await p.registry.seed(new Map(Object.entries(tenants)), true);
  const obs = `obs:{${randomBytes(4).toString("hex")}}`;
  const baseEnv = {
    REDIS_URL: redisUrl,
    FAIRLANE_PREFIX: prefix,
    FAIRLANE_LOCK_MS: "2000",
    FAIRLANE_HEARTBEAT_TTL_MS: "2000",
    FAIRLANE_SHUTDOWN_GRACE_MS: "3000",
    ...env,
  };
  const roles: RoleProcess[] = [];
  const cell = p.keys.cell("default");
  return {
    p,
    obs,
    env: baseEnv,
    roles,
    start(role, extra = {}) {
      const r = spawnRole(role, { ...baseEnv, ...extra });
      roles.push(r);
      return r;
    },
    async admit(tenant, items) {
      const out: string[] = [];
      for (let i = 0; i < items.length; i += 1000) {
        const r = await p.admission.admitBulk(tenant, items.slice(i, i + 1000), "0".repeat(32));
        if (r.rejected.length) throw new Error(JSON.stringify(r.rejected.slice(0, 3)));
        out.push(...r.accepted.map((a) => a.id));
      }
      return out;
    },
    async waitEnded(ids, timeoutMs) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const views = await Promise.all([...ids].map(([id, t]) => readWorkflow(p.redis, cell, id, t)));
        const open = views.filter((v) => !v || !["completed", "failed", "cancelled"].includes(v.state));
        if (!open.length) return views as WorkflowView[];
        if (Date.now() > until) {
          const states = open.map((v) => v?.state ?? "missing");
          throw new Error(
            `${open.length} workflows not ended after ${timeoutMs} ms: ${[...new Set(states)].join(",")}\n${roles.map((r) => r.output().slice(-2000)).join("\n")}`,
          );
        }
        await sleep(100);
      }
    },
    observation: () => readObservation(p.redis, obs),
    async waitCapacity(slots, pool = "default") {
      for (let i = 0; i < 600; i++) {
        const live = await p.redis.zrangebyscore(cell.poolWorkers(pool), `(${Date.now()}`, "+inf");
        const conc = live.length ? await p.redis.hmget(cell.poolConcurrency(pool), ...live) : [];
        if (conc.reduce((s, c) => s + Number(c ?? 0), 0) >= slots) return;
        await sleep(50);
      }
      throw new Error(`pool ${pool} never reached ${slots} slots`);
    },
    async counters() {
      const running: Record<string, Record<string, string>> = {};
      for (const t of Object.keys(tenants)) running[t] = await p.redis.hgetall(cell.running(t));
      return {
        slots: await p.redis.hlen(cell.slots),
        used: await p.redis.hgetall(cell.poolUsed("default")),
        running,
        queued: Number((await p.redis.get(cell.queued)) ?? 0),
      };
    },
    async close() {
      await Promise.all(roles.map((r) => r.stop()));
      await p.close();
    },
  };
}

/** Every value in every counter hash is "0" (or the hash is empty). */
export function allZero(c: Awaited<ReturnType<Deployment["counters"]>>): boolean {
  const zero = (h: Record<string, string>) => Object.values(h).every((v) => Number(v) === 0);
  return c.slots === 0 && c.queued === 0 && zero(c.used) && Object.values(c.running).every(zero);
}

/** A seeded PRNG (mulberry32, the simulator's), so a randomized load repeats exactly. */
export const rng = mulberry32;
