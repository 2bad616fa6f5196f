import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createKeys } from "../../../queues/keys.ts";
import { loadConfig } from "../../../src/lib/config.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../../src/platform.ts";
import type { RoleProcess } from "../../helpers/roles.ts";
import { startCensus, type Census } from "./census.ts";
import { awaitDrain } from "./drainClock.ts";
import { Meter, type PhaseCost } from "./meter.ts";
import { bytesPer, keyspaceBytes, sum } from "./redisCost.ts";
import { spawnBenchRole, spawnScript, stopAll, waitForOutput } from "./spawn.ts";
import type { Workers } from "./systems.ts";

/**
 * Backlog drains, the throughput benchmark's main measure, for plain BullMQ
 * and for Fairlane:
 *   1. prefill: `jobs` no-op jobs (plain: Queue.addBulk) or workflows (Fairlane:
 *      the platform's admission in this process, Class B, caps that never
 *      bind) with no consumer running, 100 per bulk call, 16 calls in flight;
 *   2. start the consumers and wait until every one has booted (plain: each
 *      worker connected and holding, lib/../plainWorker.ts; Fairlane: every exec
 *      process's slots in the pool), then release them (plain: SIGUSR2 to each;
 *      Fairlane: SIGCONT to its dispatcher). Fairlane's prefill runs with its
 *      dispatcher, as a deployment's would: the tenants' caps synced and each
 *      tenant placed as its work arrives, charged to the prefill. That dispatcher
 *      is held (SIGSTOP) while the exec processes boot, so that the drain begins
 *      with the whole pool live, and is the one that drains: a running
 *      deployment's, with none of a new dispatcher's start-up in the drain;
 *   3. time from the first handler call to the last (lib/drainClock.ts).
 * Each phase's costs come from lib/meter.ts; Redis bytes of every key under
 * the deployment's prefix after the prefill (queued) and after the drain
 * (finished), less what was there before, per workflow. With `census`, the
 * run is counted with MONITOR instead (lib/census.ts) and its times mean nothing.
 */
export interface Ctx {
  url: string;
  redisPid: number;
  admin: Redis;
}

export interface DrainResult {
  system: "plain" | "fairlane";
  name: string;
  tenants: number;
  layout: Workers;
  jobs: number;
  enqueue: PhaseCost;
  drain: PhaseCost;
  /**
   * Bytes per workflow, by kind of key, and their sum without the BullMQ events
   * streams: those are capped (10,000 entries by default), so for a large
   * backlog they add nothing per workflow; a run of `jobs` only spreads the cap over them.
   */
  bytes: { queued: number; queuedByKind: Record<string, number>; finished: number; finishedByKind: Record<string, number> };
  census?: Census;
}

/** A prior-auth request's size: ids and codes, no free text (≈ 270 bytes of JSON); the same on both sides. */
export const PAYLOAD = {
  patientRef: "pt-00012345",
  payer: "payer-77",
  codes: ["J3490", "99213", "E11.9"],
  steps: 3,
  fanout: 6,
  note: "x".repeat(160),
};
const BULK = 100;
const IN_FLIGHT = 16;

/** What a key holds, for the bytes table: a job hash, a record, a queue's lists, or the index it is (`fl:deadlines`, `meta`). */
export function keyKind(key: string): string {
  if (/:wf:[^:]+:steps$/.test(key)) return "steps";
  if (/:wf:[^:]+$/.test(key)) return "workflow record";
  // Fairlane's own keys first: one may end in a number (`fl:deadlines:<second>`), as a job's id may.
  const own = /:fl:([^:]+)/.exec(key);
  if (own) return `fl:${own[1]}`;
  const last = key.split(":").at(-1)!;
  if (/^(wf_[\w-]+|\d+)$/.test(last)) return "job hash";
  if (/^(wait|paused|active|prioritized|marker|delayed|completed|failed)$/.test(last)) return "queue lists";
  if (last === "events") return "events stream";
  return last;
}

/** Runs `tasks` with at most `n` in flight. */
export async function pool<T>(tasks: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

/** Round-robin over tenants, then for each tenant bulks of at most BULK: [tenant, count][] in send order. */
export function bulks(names: string[], n: number): [string, number][] {
  const per = names.map((_, i) => Math.floor(n / names.length) + (i < n % names.length ? 1 : 0));
  const out: [string, number][] = [];
  for (let k = 0; k * BULK < per[0]!; k++)
    for (const [i, t] of names.entries()) {
      const left = per[i]! - k * BULK;
      if (left > 0) out.push([t, Math.min(BULK, left)]);
    }
  return out;
}

export async function dropKeys(admin: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", pattern, "COUNT", 5000);
    cursor = next;
    if (keys.length) await admin.unlink(...keys);
  } while (cursor !== "0");
}

async function until(what: string, timeoutMs: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------- plain BullMQ

export async function plainDrain(
  c: Ctx,
  o: { name: string; tag: string; jobs: number; layout: Workers; census?: boolean },
): Promise<DrainResult> {
  const prefix = `bp-${o.tag}`;
  const clock = `clock:${prefix}`;
  const producer = new Redis(c.url, { maxRetriesPerRequest: null });
  const queue = new Queue("plain", { connection: producer, prefix });
  const meter = new Meter(c.admin, c.redisPid);
  const kinds0 = (await keyspaceBytes(c.admin, `${prefix}:*`, keyKind)).bytes;
  const census = o.census ? await startCensus(c.url, [c.admin], (line) => line.includes(`"${clock}`)) : undefined;

  await meter.begin([{ role: "producer", pid: process.pid }]);
  const t0 = performance.now();
  await pool(
    bulks(["plain"], o.jobs).map(
      ([, k]) =>
        () =>
          queue.addBulk(Array.from({ length: k }, () => ({ name: "bench-noop", data: PAYLOAD, opts: { removeOnComplete: true } }))),
    ),
    IN_FLIGHT,
  );
  const enqueue = await meter.end(o.jobs, (performance.now() - t0) / 1000);
  const queued = (await keyspaceBytes(c.admin, `${prefix}:*`, keyKind)).bytes;

  const env = {
    REDIS_URL: c.url,
    BENCH_QUEUE: "plain",
    BENCH_PREFIX: prefix,
    BENCH_CONCURRENCY: String(o.layout.concurrency),
    BENCH_DRAIN_KEY: clock,
    BENCH_HOLD: "1",
  };
  const children: ChildProcess[] = Array.from({ length: o.layout.processes }, () => spawnScript("test/bench/plainWorker.ts", env));
  try {
    await until("plain workers ready", 120_000, async () => (await c.admin.scard(`${clock}:ready`)) >= o.layout.processes);
    await meter.begin(children.map((ch) => ({ role: "worker", pid: ch.pid! })));
    for (const ch of children) ch.kill("SIGUSR2");
    const r = await awaitDrain(c.admin, clock, o.jobs, 600_000, `plain drain ${o.name}`);
    await until(
      "plain queue empty",
      30_000,
      async () => (await c.admin.llen(`${prefix}:plain:wait`)) + (await c.admin.llen(`${prefix}:plain:active`)) === 0,
    );
    const drain = await meter.end(o.jobs, (r.last - r.first) / 1000);
    const finished = (await keyspaceBytes(c.admin, `${prefix}:*`, keyKind)).bytes;
    const counted = await census?.stop([...children.map((ch) => ({ role: "worker", pid: ch.pid! }))], o.jobs);
    return result("plain", o, 1, enqueue, drain, kinds0, queued, finished, counted);
  } finally {
    await closePlain(c, { children, queue, producer, prefix, clock });
  }
}

/** Stops a plain phase's workers and clients and removes its keys and drain clock. */
export async function closePlain(
  c: Ctx,
  p: { children: ChildProcess[]; queue: Queue; producer: Redis; prefix: string; clock: string },
): Promise<void> {
  await stopAll(p.children);
  await p.queue.close();
  await p.producer.quit();
  await dropKeys(c.admin, `${p.prefix}:*`);
  await c.admin.unlink(p.clock, `${p.clock}:ready`);
}

function result(
  system: DrainResult["system"],
  o: { name: string; jobs: number; layout: Workers },
  tenants: number,
  enqueue: PhaseCost,
  drain: PhaseCost,
  before: Record<string, number>,
  queued: Record<string, number>,
  finished: Record<string, number>,
  census: Census | undefined,
): DrainResult {
  const q = bytesPer(before, queued, o.jobs);
  const f = bytesPer(before, finished, o.jobs);
  const bounded = (by: Record<string, number>) => sum(by) - (by["events stream"] ?? 0);
  return {
    system,
    name: o.name,
    tenants,
    layout: o.layout,
    jobs: o.jobs,
    enqueue,
    drain,
    bytes: { queued: bounded(q), queuedByKind: q, finished: bounded(f), finishedByKind: f },
    ...(census ? { census } : {}),
  };
}

// ---------------------------------------------------------------- Fairlane

export interface FairDeployment {
  prefix: string;
  platform: Platform;
  names: string[];
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A deployment of its own (fresh prefix) with `tenants` Class B tenants whose caps never bind. */
export async function openFair(c: Ctx, prefix: string, tenants: number, jobs: number): Promise<FairDeployment> {
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: prefix, FAIRLANE_MAX_QUEUED_TOTAL: String(jobs * 2) });
  const platform = await openPlatform(config, c.url, createLogger("bench", "silent"));
  const names = Array.from({ length: tenants }, (_, i) => `t${i}`);
  const spec = { tier: "enterprise" as const, mca: 100_000, mcaUrgent: 100_000, maxQueueDepth: 1_000_000 };
  await platform.registry.seed(new Map(names.map((n) => [n, spec])), true);
  const env = { REDIS_URL: c.url, FAIRLANE_PREFIX: prefix, FAIRLANE_RESERVE_A: "0", BENCH_DRAIN_KEY: `clock:${prefix}` };
  return {
    prefix,
    platform,
    names,
    env,
    async close() {
      await platform.close();
      await dropKeys(c.admin, `${prefix}:*`);
      await c.admin.unlink(`clock:${prefix}`);
    },
  };
}

/** Admits `jobs` bench-noop workflows round-robin over the tenants, each tenant's in bulks of 100, 16 bulks in flight. */
export async function admitAll(d: FairDeployment, jobs: number): Promise<void> {
  await pool(
    bulks(d.names, jobs).map(([t, k]) => async () => {
      const r = await d.platform.admission.admitBulk(
        t,
        Array.from({ length: k }, () => ({ type: "bench-noop", class: "B", payload: PAYLOAD })),
        "0".repeat(32),
      );
      if (r.rejected.length) throw new Error(`admission refused: ${JSON.stringify(r.rejected[0])}`);
    }),
    IN_FLIGHT,
  );
}

/** Exec processes (added to `into` at once, so a failed start still stops them), once all their slots are in the pool. */
export async function startExec(c: Ctx, d: FairDeployment, layout: Workers, into: RoleProcess[]): Promise<RoleProcess[]> {
  const roles = Array.from({ length: layout.processes }, () =>
    spawnBenchRole("exec", { ...d.env, FAIRLANE_CONCURRENCY: String(layout.concurrency) }),
  );
  into.push(...roles);
  const cell = createKeys(d.prefix).cell("default");
  const slots = layout.processes * layout.concurrency;
  await until(`exec pool of ${slots} slots`, 120_000, async () => {
    const live = await c.admin.zrangebyscore(cell.poolWorkers("default"), `(${Date.now()}`, "+inf");
    const conc = live.length ? await c.admin.hmget(cell.poolConcurrency("default"), ...live) : [];
    return conc.reduce((s, x) => s + Number(x ?? 0), 0) >= slots;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${roles.map((r) => r.output().slice(-1500)).join("\n")}`);
  });
  return roles;
}

/** The dispatcher (added to `into` at once), once it has booted (its "dispatcher started" line). */
export async function startDispatcher(d: FairDeployment, into: RoleProcess[]): Promise<RoleProcess> {
  const r = spawnBenchRole("dispatcher", { ...d.env, LOG_LEVEL: "info" });
  into.push(r);
  await waitForOutput(r, "dispatcher started", 120_000);
  return r;
}

/** Nothing queued and no slot held. */
export async function fairIdle(c: Ctx, d: FairDeployment): Promise<boolean> {
  const cell = createKeys(d.prefix).cell("default");
  return Number((await c.admin.get(cell.queued)) ?? 0) === 0 && (await c.admin.hlen(cell.slots)) === 0;
}

export async function fairDrain(
  c: Ctx,
  o: { name: string; tag: string; jobs: number; tenants: number; layout: Workers; census?: boolean },
): Promise<DrainResult> {
  const d = await openFair(c, `bf-${o.tag}`, o.tenants, o.jobs);
  const clock = `clock:${d.prefix}`;
  const roles: RoleProcess[] = [];
  try {
    const meter = new Meter(c.admin, c.redisPid);
    const kinds0 = (await keyspaceBytes(c.admin, `${d.prefix}:*`, keyKind)).bytes;
    const census = o.census ? await startCensus(c.url, [c.admin], (line) => line.includes(`"${clock}`)) : undefined;
    // The dispatcher runs through the prefill, as in a deployment: it syncs the tenants' caps and places
    // each tenant as its work arrives (charged to the prefill). It is held while the workers boot, so
    // that the drain begins with the whole pool live, as plain's does.
    const dispatcher = await startDispatcher(d, roles);
    await meter.begin([
      { role: "producer", pid: process.pid },
      { role: "dispatcher", pid: dispatcher.child.pid! },
    ]);
    const t0 = performance.now();
    await admitAll(d, o.jobs);
    const admitted = performance.now();
    await until("the tenants placed", 60_000, async () => (await c.admin.scard(createKeys(d.prefix).cell("default").dirty)) === 0);
    const enqueue = await meter.end(o.jobs, (admitted - t0) / 1000);
    dispatcher.child.kill("SIGSTOP");
    const queued = (await keyspaceBytes(c.admin, `${d.prefix}:*`, keyKind)).bytes;

    const execs = await startExec(c, d, o.layout, roles);
    await meter.begin([...execs.map((r) => ({ role: "exec", pid: r.child.pid! })), { role: "dispatcher", pid: dispatcher.child.pid! }]);
    // The clock starts at the first handler call.
    dispatcher.child.kill("SIGCONT");
    const r = await awaitDrain(c.admin, clock, o.jobs, 600_000, `Fairlane drain ${o.name}`);
    await until("Fairlane idle", 30_000, () => fairIdle(c, d));
    const drain = await meter.end(o.jobs, (r.last - r.first) / 1000);
    const finished = (await keyspaceBytes(c.admin, `${d.prefix}:*`, keyKind)).bytes;
    const counted = await census?.stop(
      roles.map((x) => ({ role: x === dispatcher ? "dispatcher" : "exec", pid: x.child.pid! })),
      o.jobs,
    );
    return result("fairlane", o, o.tenants, enqueue, drain, kinds0, queued, finished, counted);
  } finally {
    // A held dispatcher takes its SIGTERM only once it runs again.
    for (const r of roles) r.child.kill("SIGCONT");
    await Promise.all(roles.map((r) => r.stop()));
    await d.close();
  }
}
