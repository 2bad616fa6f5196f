import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { cancelWorkflow, type CancelOutcome } from "../../../queues/lua/cancelWorkflow.ts";
import { loadConfig } from "../../../src/lib/config.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../../src/platform.ts";
import type { PolicySpec } from "../../../src/tenancy/policy.ts";
import type { RoleProcess } from "../../helpers/roles.ts";
import { readRuns, type RunSummary } from "./observer.ts";
import { spawnBenchRole, spawnScript } from "./spawn.ts";

/**
 * The two systems a scenario compares, behind one interface:
 *   on  — Fairlane: admission in this process (the same Lua the API runs), real
 *         dispatcher, exec (and optionally health, recovery) OS processes;
 *   off — what the platform was before: one plain FIFO BullMQ queue and plain
 *         BullMQ workers with the same total concurrency and no caps, whose
 *         agents call the downstream directly and retry naively
 *         (test/bench/plainAgentWorker.ts).
 * Both run the same agent workload and write the same observer log.
 */
export interface Item {
  /** bench-prior-auth-agent: Fairlane only (the AI SDK agent; plain BullMQ's worker has no such type). */
  type: "bench-prior-auth" | "bench-prior-auth-agent" | "bench-sleep";
  cls: "A" | "B" | "C";
  payload: Record<string, unknown>;
  /** Fairlane only (the soak): sent as the request's idempotencyKey. */
  idempotencyKey?: string;
}

export interface Enqueued {
  id: string;
  tenant: string;
  cls: string;
  /** The producer's clock just before the enqueue call. */
  at: number;
  /** The producer's clock when the call's reply came back (its workflows admitted). */
  ackAt: number;
  /** Fairlane only: an idempotency key named a workflow admitted earlier (this is its id). */
  duplicate?: boolean;
}

export interface System {
  name: "on" | "off";
  /** The worker processes (and Fairlane's other roles), for /proc sampling. */
  roles: { role: string; pid: number }[];
  enqueue(tenant: string, items: Item[]): Promise<Enqueued[]>;
  /** Nothing queued, running or parked. */
  idle(): Promise<boolean>;
  runs(): Promise<Map<string, RunSummary>>;
  close(): Promise<void>;
}

export interface Workers {
  /** Worker processes and the concurrency of each: the pool is processes × concurrency slots. */
  processes: number;
  concurrency: number;
}

/** Fairlane's System plus what a soak inspects: the key prefix, the platform and each role's process. */
export interface FairlaneSystem extends System {
  name: "on";
  /** FAIRLANE_PREFIX of this deployment: every key it writes starts with `<prefix>:`. */
  prefix: string;
  platform: Platform;
  /** The producer's cancel (DELETE /v1/workflows/:id) of one workflow. */
  cancel(tenant: string, id: string): Promise<CancelOutcome["kind"]>;
  /** The named fields of each workflow's record (queues/keys.ts `wf:<id>`), missing ones absent. */
  records(ids: string[], fields: string[]): Promise<Map<string, Record<string, string>>>;
  /** Each of the tenants' workflows -> Redis's time (epoch ms) when its admission script ran: its run list entry's ID. */
  admittedAt(tenants: string[]): Promise<Map<string, number>>;
}

export async function fairlane(
  redisUrl: string,
  o: { tenants: Record<string, PolicySpec>; workers: Workers; downstreamUrl: string; env?: Record<string, string>; backpressure?: boolean },
): Promise<FairlaneSystem> {
  const prefix = `bon${randomBytes(3).toString("hex")}`;
  const obs = `obs:{${prefix}}`;
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: prefix, FAIRLANE_MAX_QUEUED_TOTAL: "1000000", PORT: "0" });
  const p: Platform = await openPlatform(config, redisUrl, createLogger("bench", "silent"));
  await p.registry.seed(new Map(Object.entries(o.tenants)), true);
  const env = {
    REDIS_URL: redisUrl,
    FAIRLANE_PREFIX: prefix,
    FAIRLANE_DOWNSTREAM_URL: o.downstreamUrl,
    ...o.env,
  };
  const roles: RoleProcess[] = [];
  const names: string[] = [];
  const start = (role: Parameters<typeof spawnBenchRole>[0], e: Record<string, string>) => (
    roles.push(spawnBenchRole(role, e)), names.push(role)
  );
  for (let i = 0; i < o.workers.processes; i++) start("exec", { ...env, FAIRLANE_CONCURRENCY: String(o.workers.concurrency) });
  start("dispatcher", env);
  if (o.backpressure) for (const r of ["health", "recovery"] as const) start(r, env);
  const cell = p.keys.cell("default");
  const slots = o.workers.processes * o.workers.concurrency;
  for (let i = 0; ; i++) {
    const live = await p.redis.zrangebyscore(cell.poolWorkers("default"), `(${Date.now()}`, "+inf");
    const conc = live.length ? await p.redis.hmget(cell.poolConcurrency("default"), ...live) : [];
    if (conc.reduce((s, c) => s + Number(c ?? 0), 0) >= slots) break;
    if (i > 600) throw new Error(`exec pool never reached ${slots} slots:\n${roles.map((r) => r.output().slice(-1500)).join("\n")}`);
    await sleep(50);
  }
  if (o.backpressure)
    for (let i = 0; i < 200 && (await p.redis.hget(cell.health("fhir-gateway"), "state")) !== "healthy"; i++) await sleep(100);
  return {
    name: "on",
    prefix,
    platform: p,
    roles: roles.map((r, i) => ({ role: names[i]!, pid: r.child.pid! })),
    async enqueue(tenant, items) {
      const out: Enqueued[] = [];
      for (let i = 0; i < items.length; i += 1000) {
        const chunk = items.slice(i, i + 1000);
        const at = Date.now();
        const requests = chunk.map((x) => ({
          type: x.type,
          class: x.cls,
          payload: { ...x.payload, obs },
          ...(x.idempotencyKey ? { idempotencyKey: x.idempotencyKey } : {}),
        }));
        const r = await p.admission.admitBulk(tenant, requests, "0".repeat(32));
        if (r.rejected.length) throw new Error(`admission refused: ${JSON.stringify(r.rejected[0])}`);
        const ackAt = Date.now();
        for (const a of r.accepted)
          out.push({ id: a.id, tenant, cls: chunk[a.index]!.cls, at, ackAt, ...(a.duplicate ? { duplicate: true } : {}) });
      }
      return out;
    },
    async cancel(tenant, id) {
      const r = await cancelWorkflow(p.redis, cell, id, tenant, Date.now(), { recordTtlSec: config.FAIRLANE_RECORD_TTL_SEC });
      return r.kind;
    },
    async idle() {
      const [queued, slotsHeld] = await Promise.all([p.redis.get(cell.queued), p.redis.hlen(cell.slots)]);
      let parked = 0;
      for (const dep of await p.redis.smembers(cell.deps)) parked += await p.redis.zcard(cell.parked(dep));
      return Number(queued ?? 0) === 0 && slotsHeld === 0 && parked === 0;
    },
    async records(ids, fields) {
      const pipeline = p.redis.pipeline();
      for (const id of ids) pipeline.hmget(cell.workflow(id), ...fields);
      const out = new Map<string, Record<string, string>>();
      for (const [i, [, values]] of ((await pipeline.exec()) ?? []).entries())
        out.set(
          ids[i]!,
          Object.fromEntries(
            fields.flatMap((f, k) => ((values as (string | null)[] | null)?.[k] == null ? [] : [[f, (values as string[])[k]!]])),
          ),
        );
      return out;
    },
    async admittedAt(tenants) {
      const out = new Map<string, number>();
      for (const t of tenants)
        for (const [entryId, fields] of await p.redis.xrange(cell.runList(t), "-", "+"))
          out.set(fields[fields.indexOf("w") + 1]!, Number(entryId.split("-")[0]));
      return out;
    },
    runs: () => readRuns(p.redis, obs),
    async close() {
      await Promise.all(roles.map((r) => r.stop()));
      await p.close();
    },
  };
}

export async function plainBullmq(
  redisUrl: string,
  o: { workers: Workers; downstreamUrl: string; env?: Record<string, string> },
): Promise<System> {
  const prefix = `boff${randomBytes(3).toString("hex")}`;
  const obs = `obs:{${prefix}}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue("work", { connection, prefix });
  const children: ChildProcess[] = [];
  for (let i = 0; i < o.workers.processes; i++)
    children.push(
      spawnScript("test/bench/plainAgentWorker.ts", {
        REDIS_URL: redisUrl,
        BENCH_PREFIX: prefix,
        BENCH_CONCURRENCY: String(o.workers.concurrency),
        BENCH_DOWNSTREAM_URL: o.downstreamUrl,
        BENCH_ROLE: "worker",
        ...o.env,
      }),
    );
  await sleep(2500); // let the workers connect before the clock starts
  let seq = 0;
  return {
    name: "off",
    roles: children.map((c) => ({ role: "worker", pid: c.pid! })),
    async enqueue(tenant, items) {
      const out: Enqueued[] = [];
      for (let i = 0; i < items.length; i += 1000) {
        const chunk = items.slice(i, i + 1000);
        const at = Date.now();
        const jobs = chunk.map((x) => ({
          name: x.type,
          data: { tenant, cls: x.cls, payload: { ...x.payload, obs } },
          // What the platform had: a few job-level retries with exponential backoff on top of the agent's own.
          opts: {
            jobId: `j${++seq}`,
            attempts: 3,
            backoff: { type: "exponential", delay: 500 },
            removeOnComplete: true,
            removeOnFail: true,
          },
        }));
        await queue.addBulk(jobs);
        const ackAt = Date.now();
        for (const [k, j] of jobs.entries()) out.push({ id: j.opts.jobId, tenant, cls: chunk[k]!.cls, at, ackAt });
      }
      return out;
    },
    async idle() {
      const c = await queue.getJobCounts("waiting", "active", "delayed", "prioritized");
      return Object.values(c).every((n) => n === 0);
    },
    runs: () => readRuns(connection, obs),
    async close() {
      await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : (c.once("exit", r), c.kill("SIGTERM"))))));
      await queue.close();
      await connection.quit();
    },
  };
}

/** Polls until the system is idle; false if `timeoutMs` passed first. */
export async function waitIdle(s: System, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await s.idle()) return true;
    await sleep(100);
  }
  return false;
}
