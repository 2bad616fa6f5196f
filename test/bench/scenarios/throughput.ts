/**
 * Scenario 3, throughput and scale. In one run, on one Redis:
 *   - no-op workflows through one plain BullMQ queue vs Fairlane at 10, 1,000
 *     and 10,000 tenants (Class B, equal weights, caps that do not bind), same
 *     worker processes and total concurrency; end to end, first enqueue to
 *     last completion; CPU of Redis and every process per job;
 *   - Redis memory per queued workflow, Fairlane vs a plain BullMQ job with
 *     the same payload;
 *   - tool-gate acquire+release pairs per second, uncontended and contended;
 *   - the admission cost of appendfsync always vs everysec (two Redis servers).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createKeys } from "../../../queues/keys.ts";
import { systemClock } from "../../../src/lib/clock.ts";
import { loadConfig } from "../../../src/lib/config.ts";
import { connect } from "../../../src/lib/redis.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openPlatform } from "../../../src/platform.ts";
import { ToolGate } from "../../../src/runtime/toolGate.ts";
import { benchRedis } from "../lib/infra.ts";
import { cpuSeconds } from "../procStats.ts";

export interface PhaseResult {
  name: string;
  tenants: number;
  jobs: number;
  seconds: number;
  perSec: number;
  cpuPerJobUs: number;
  redisCpuPerJobUs: number;
  /** Redis commands per job (a script call is one), and the top ones by Redis CPU. */
  callsPerJob: number;
  top: string;
}

export interface ThroughputResult {
  params: { jobs: number; workers: number; concurrency: number };
  phases: PhaseResult[];
  memory: { workflows: number; payloadBytes: number; plainBytesPerJob: number; fairBytesPerWorkflow: number };
  gate: { uncontendedPairsPerSec: number; contendedPairsPerSec: number; callers: number; contendedMctc: number };
  durability: { everysecPerSec: number; alwaysPerSec: number; callers: number; disk: string };
}

function start(script: string, env: Record<string, string>): ChildProcess {
  const c = spawn(process.execPath, ["--import", "tsx", script], { env: { ...process.env, LOG_LEVEL: "warn", ...env }, stdio: "inherit" });
  process.on("exit", () => c.kill("SIGKILL"));
  return c;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : (c.once("exit", r), c.kill("SIGTERM"))))));
}

const cpuOf = (pids: number[]) => pids.reduce((s, p) => s + cpuSeconds(p), 0);
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Redis's own per-command accounting (INFO commandstats) since the last CONFIG RESETSTAT. */
async function commandStats(admin: Redis, jobs: number): Promise<{ calls: number; top: string }> {
  const info = await admin.info("commandstats");
  const rows = [...info.matchAll(/^cmdstat_(\w+(?:\|\w+)?):calls=(\d+),usec=(\d+)/gm)].map((m) => ({ cmd: m[1]!, calls: Number(m[2]), usec: Number(m[3]) }));
  const calls = rows.filter((r) => !["info", "config"].includes(r.cmd)).reduce((s, r) => s + r.calls, 0);
  const top = rows
    .sort((a, b) => b.usec - a.usec)
    .slice(0, 4)
    .map((r) => `${r.cmd} ${(r.usec / jobs).toFixed(0)}µs`)
    .join(", ");
  const scripts = rows.find((r) => r.cmd === "evalsha")?.calls ?? 0;
  return { calls, top: `${(scripts / jobs).toFixed(1)} script calls/job; ${top}` };
}

interface Ctx {
  url: string;
  redisPid: number;
  admin: Redis;
  jobs: number;
  workers: number;
  concurrency: number;
}

async function phase(c: Ctx, name: string, tenants: number, children: ChildProcess[], produce: () => Promise<void>, done: () => Promise<boolean>): Promise<PhaseResult> {
  const pids = children.map((ch) => ch.pid!);
  await c.admin.config("RESETSTAT");
  const cpu0 = cpuOf(pids) + selfCpu();
  const redis0 = cpuSeconds(c.redisPid);
  const t0 = performance.now();
  await produce();
  while (!(await done())) await sleep(20);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuOf(pids) + selfCpu() - cpu0;
  const redisCpu = cpuSeconds(c.redisPid) - redis0;
  const stats = await commandStats(c.admin, c.jobs);
  await stopAll(children);
  return {
    name,
    tenants,
    jobs: c.jobs,
    seconds,
    perSec: c.jobs / seconds,
    cpuPerJobUs: ((cpu + redisCpu) / c.jobs) * 1e6,
    redisCpuPerJobUs: (redisCpu / c.jobs) * 1e6,
    callsPerJob: stats.calls / c.jobs,
    top: stats.top,
  };
}

async function plain(c: Ctx): Promise<PhaseResult> {
  const prefix = "bench-plain";
  const connection = new Redis(c.url, { maxRetriesPerRequest: null });
  const queue = new Queue("plain", { connection, prefix });
  const children = Array.from({ length: c.workers }, () =>
    start("test/bench/plainWorker.ts", { REDIS_URL: c.url, BENCH_QUEUE: "plain", BENCH_PREFIX: prefix, BENCH_CONCURRENCY: String(c.concurrency) }),
  );
  await sleep(2500); // let the workers boot before the clock starts
  const r = await phase(
    c,
    "plain BullMQ, 1 queue",
    1,
    children,
    async () => {
      for (let i = 0; i < c.jobs; i += 1000)
        await queue.addBulk(Array.from({ length: Math.min(1000, c.jobs - i) }, () => ({ name: "noop", data: {}, opts: { removeOnComplete: true } })));
    },
    async () => (await queue.getWaitingCount()) + (await queue.getActiveCount()) === 0,
  );
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
  return r;
}

async function fair(c: Ctx, tenants: number): Promise<PhaseResult> {
  const prefix = `bench${tenants}`;
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: prefix, FAIRLANE_MAX_QUEUED_TOTAL: String(c.jobs * 2) });
  const p = await openPlatform(config, c.url, createLogger("bench", "silent"));
  const names = Array.from({ length: tenants }, (_, i) => `t${i}`);
  const spec = { tier: "enterprise" as const, mca: 100_000, mcaUrgent: 100_000, maxQueueDepth: 1_000_000 };
  await p.registry.seed(new Map(names.map((n) => [n, spec])), true);
  const env = { REDIS_URL: c.url, FAIRLANE_PREFIX: prefix, FAIRLANE_CONCURRENCY: String(c.concurrency), FAIRLANE_RESERVE_A: "0" };
  const children = [...Array.from({ length: c.workers }, () => start("workers/exec.ts", env)), start("workers/dispatcher.ts", env)];
  const cell = p.keys.cell("default");
  // Boot, and let the dispatcher copy the tenants' caps into the cell.
  for (let i = 0; i < 600 && (await p.redis.scard(cell.tenants)) < tenants; i++) await sleep(50);
  await sleep(1500);
  const r = await phase(
    c,
    `Fairlane, ${tenants.toLocaleString("en")} tenants`,
    tenants,
    children,
    async () => {
      // Round-robin over tenants, 1,000 per pipelined admission (as the bulk API does).
      for (let i = 0; i < c.jobs; ) {
        const byTenant = new Map<string, { type: string; class: "B" }[]>();
        for (let k = 0; k < 1000 && i < c.jobs; k++, i++) {
          const t = names[i % tenants]!;
          if (!byTenant.has(t)) byTenant.set(t, []);
          byTenant.get(t)!.push({ type: "noop", class: "B" });
        }
        await Promise.all([...byTenant].map(([t, items]) => p.admission.admitBulk(t, items, "0".repeat(32))));
      }
    },
    async () => Number((await p.redis.get(cell.queued)) ?? 0) === 0 && (await p.redis.hlen(cell.slots)) === 0,
  );
  await p.close();
  return r;
}

/** A prior-auth request's size: ids and codes, no free text (≈ 300 bytes of JSON). */
const PAYLOAD = { patientRef: "pt-00012345", payer: "payer-77", codes: ["J3490", "99213", "E11.9"], steps: 3, fanout: 6, note: "x".repeat(160) };

async function memory(c: Ctx, n: number): Promise<ThroughputResult["memory"]> {
  const used = async () => {
    await sleep(200);
    return Number(/used_memory:(\d+)/.exec(await c.admin.info("memory"))![1]);
  };
  const connection = new Redis(c.url, { maxRetriesPerRequest: null });
  const queue = new Queue("mem", { connection, prefix: "bench-mem" });
  const m0 = await used();
  for (let i = 0; i < n; i += 1000)
    await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: "prior-auth", data: PAYLOAD, opts: { removeOnComplete: true } })));
  const plainBytes = (await used()) - m0;
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();

  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: "bench-memf", FAIRLANE_MAX_QUEUED_TOTAL: String(n * 2) });
  const p = await openPlatform(config, c.url, createLogger("bench", "silent"));
  await p.registry.seed(new Map([["t0", { tier: "enterprise", maxQueueDepth: 1_000_000 }]]), true);
  const f0 = await used();
  for (let i = 0; i < n; i += 1000)
    await p.admission.admitBulk("t0", Array.from({ length: Math.min(1000, n - i) }, () => ({ type: "prior-auth", class: "C", payload: PAYLOAD })), "0".repeat(32));
  const fairBytes = (await used()) - f0;
  await p.close();
  return { workflows: n, payloadBytes: JSON.stringify(PAYLOAD).length, plainBytesPerJob: plainBytes / n, fairBytesPerWorkflow: fairBytes / n };
}

async function gateRate(c: Ctx, forMs: number): Promise<ThroughputResult["gate"]> {
  const redis = connect(c.url);
  const sub = connect(c.url);
  const gate = new ToolGate(redis, sub, createKeys("bench-gate"), systemClock, { leaseMs: 15_000, renewMs: 5_000, pollMs: 200 });
  await gate.start(["default"]);
  const callers = 64;
  const contendedMctc = 16;
  const run = async (tenant: string, mctc: number) => {
    let pairs = 0;
    const until = Date.now() + forMs;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (Date.now() < until) {
          const r = await gate.acquire({ cell: "default", tenant, batch: false, limits: { mctc, mctcBatch: mctc, depth: callers * 2 }, deadlineAt: null, waitTimeoutMs: 10_000 });
          if (r.ok) {
            await gate.release(r.permit);
            pairs++;
          }
        }
      }),
    );
    return pairs / (forMs / 1000);
  };
  const uncontended = await run("open", 10_000);
  const contended = await run("tight", contendedMctc);
  gate.stop();
  await sub.quit();
  await redis.quit();
  return { uncontendedPairsPerSec: uncontended, contendedPairsPerSec: contended, callers, contendedMctc };
}

/** Single-workflow admissions (as POST /v1/workflows makes them) from 32 concurrent callers. */
async function admissionRate(url: string, n: number): Promise<number> {
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: "bench-dur", FAIRLANE_MAX_QUEUED_TOTAL: String(n * 2) });
  const p = await openPlatform(config, url, createLogger("bench", "silent"));
  await p.registry.seed(new Map([["t0", { tier: "enterprise", maxQueueDepth: 1_000_000 }]]), true);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next++ < n) await p.admission.admitOne("t0", { type: "prior-auth", class: "B", payload: PAYLOAD }, "0".repeat(32));
    }),
  );
  const perSec = n / ((performance.now() - t0) / 1000);
  await p.close();
  return perSec;
}

async function durability(n: number): Promise<ThroughputResult["durability"]> {
  const rates: Record<string, number> = {};
  for (const mode of ["everysec", "always"] as const) {
    const r = await benchRedis(mode);
    try {
      rates[mode] = await admissionRate(r.url, n);
    } finally {
      await r.stop();
    }
  }
  return { everysecPerSec: rates.everysec!, alwaysPerSec: rates.always!, callers: 32, disk: "the temp folder's disk" };
}

export async function runThroughput(
  url: string,
  redisPid: number,
  o: { jobs: number; workers: number; concurrency: number; tenants: number[]; memoryWorkflows: number; gateMs: number; durabilityAdmissions: number },
): Promise<ThroughputResult> {
  const admin = new Redis(url);
  const c: Ctx = { url, redisPid, admin, jobs: o.jobs, workers: o.workers, concurrency: o.concurrency };
  try {
    const phases = [await plain(c)];
    for (const t of o.tenants) phases.push(await fair(c, t));
    return {
      params: { jobs: o.jobs, workers: o.workers, concurrency: o.concurrency },
      phases,
      memory: await memory(c, o.memoryWorkflows),
      gate: await gateRate(c, o.gateMs),
      durability: await durability(o.durabilityAdmissions),
    };
  } finally {
    await admin.quit();
  }
}
