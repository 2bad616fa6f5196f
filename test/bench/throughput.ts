/**
 * npm run bench:throughput [-- --jobs 20000 --workers 2 --concurrency 50]
 *
 * The same no-op workload through one plain BullMQ queue and through
 * Fairlane (10 and 10,000 tenants, Class B, equal weights, caps that do not
 * bind), on the same Redis, with the same number of worker processes and the
 * same total concurrency, in one run. Throughput is end to end: from the
 * first enqueue to the last completion. CPU is Redis's plus every process's
 * (workers, dispatcher, producer), per job. Prints a table, then one JSON line.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { EmbeddedRedis } from "../../src/lib/embeddedRedis.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform } from "../../src/platform.ts";
import { cpuSeconds } from "./procStats.ts";

const { values: args } = parseArgs({
  options: {
    jobs: { type: "string", default: "20000" },
    workers: { type: "string", default: "2" },
    concurrency: { type: "string", default: "50" },
  },
});
const JOBS = Number(args.jobs);
const WORKERS = Number(args.workers);
const CONCURRENCY = Number(args.concurrency);

interface PhaseResult {
  name: string;
  /** Redis commands per job (each script call is one), and the top ones by Redis CPU. */
  callsPerJob: number;
  top: string;
  jobs: number;
  seconds: number;
  perSec: number;
  cpuPerJobUs: number;
  redisCpuPerJobUs: number;
}

function start(script: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", script], { env: { ...process.env, LOG_LEVEL: "warn", ...env }, stdio: "inherit" });
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
async function commandStats(admin: Redis): Promise<{ calls: number; top: string }> {
  const info = await admin.info("commandstats");
  const rows = [...info.matchAll(/^cmdstat_(\w+(?:\|\w+)?):calls=(\d+),usec=(\d+)/gm)].map((m) => ({ cmd: m[1]!, calls: Number(m[2]), usec: Number(m[3]) }));
  const calls = rows.filter((r) => !["info", "config"].includes(r.cmd)).reduce((s, r) => s + r.calls, 0);
  const top = rows
    .sort((a, b) => b.usec - a.usec)
    .slice(0, 4)
    .map((r) => `${r.cmd} ${(r.usec / JOBS).toFixed(0)}µs`)
    .join(", ");
  const scripts = rows.find((r) => r.cmd === "evalsha")?.calls ?? 0;
  return { calls, top: `${(scripts / JOBS).toFixed(1)} script calls/job; ${top}` };
}

async function phase(name: string, redisPid: number, children: ChildProcess[], produce: () => Promise<void>, done: () => Promise<boolean>): Promise<PhaseResult> {
  const pids = children.map((c) => c.pid!);
  await admin.config("RESETSTAT");
  const cpu0 = cpuOf(pids) + selfCpu();
  const redis0 = cpuSeconds(redisPid);
  const t0 = performance.now();
  await produce();
  while (!(await done())) await sleep(20);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuOf(pids) + selfCpu() - cpu0;
  const redisCpu = cpuSeconds(redisPid) - redis0;
  const stats = await commandStats(admin);
  await stopAll(children);
  return {
    name,
    callsPerJob: stats.calls / JOBS,
    top: stats.top,
    jobs: JOBS,
    seconds,
    perSec: JOBS / seconds,
    cpuPerJobUs: ((cpu + redisCpu) / JOBS) * 1e6,
    redisCpuPerJobUs: (redisCpu / JOBS) * 1e6,
  };
}

async function plain(url: string, redisPid: number): Promise<PhaseResult> {
  const prefix = "bench-plain";
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue("plain", { connection, prefix });
  const children = Array.from({ length: WORKERS }, () =>
    start("test/bench/plainWorker.ts", { REDIS_URL: url, BENCH_QUEUE: "plain", BENCH_PREFIX: prefix, BENCH_CONCURRENCY: String(CONCURRENCY) }),
  );
  await sleep(2500); // let the workers boot before the clock starts
  const r = await phase(
    "plain BullMQ, 1 queue",
    redisPid,
    children,
    async () => {
      for (let i = 0; i < JOBS; i += 1000)
        await queue.addBulk(Array.from({ length: Math.min(1000, JOBS - i) }, () => ({ name: "noop", data: {}, opts: { removeOnComplete: true } })));
    },
    async () => (await queue.getWaitingCount()) + (await queue.getActiveCount()) === 0,
  );
  await queue.close();
  await connection.quit();
  return r;
}

async function fair(url: string, redisPid: number, tenants: number): Promise<PhaseResult> {
  const prefix = `bench${tenants}`;
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: prefix, FAIRLANE_MAX_QUEUED_TOTAL: String(JOBS * 2) });
  const p = await openPlatform(config, url, createLogger("bench", "silent"));
  const names = Array.from({ length: tenants }, (_, i) => `t${i}`);
  const spec = { tier: "enterprise" as const, mca: 100_000, mcaUrgent: 100_000, maxQueueDepth: 1_000_000 };
  await p.registry.seed(new Map(names.map((n) => [n, spec])), true);
  const env = { REDIS_URL: url, FAIRLANE_PREFIX: prefix, FAIRLANE_CONCURRENCY: String(CONCURRENCY), FAIRLANE_RESERVE_A: "0" };
  const children = [...Array.from({ length: WORKERS }, () => start("workers/exec.ts", env)), start("workers/dispatcher.ts", env)];
  await sleep(4000); // boot, and let the dispatcher copy the tenants' caps into the cell
  const cell = p.keys.cell("default");
  const r = await phase(
    `Fairlane, ${tenants.toLocaleString("en")} tenants`,
    redisPid,
    children,
    async () => {
      // Round-robin over tenants, 1,000 per pipelined admission (as the bulk API does).
      for (let i = 0; i < JOBS; ) {
        const byTenant = new Map<string, { type: string; class: "B" }[]>();
        for (let k = 0; k < 1000 && i < JOBS; k++, i++) {
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

const dir = mkdtempSync(join(tmpdir(), "fl-bench-"));
const redis = new EmbeddedRedis({ dir, port: 0, appendfsync: "everysec" });
const url = await redis.start();
const admin = new Redis(url);
try {
  const results = [await plain(url, redis.pid!), await fair(url, redis.pid!, 10), await fair(url, redis.pid!, 10_000)];
  const [p, f10, f10k] = results as [PhaseResult, PhaseResult, PhaseResult];
  console.log(`\nthroughput, ${JOBS} no-op jobs, ${WORKERS} worker processes x ${CONCURRENCY} concurrency, one Redis (${new Date().toISOString()})`);
  console.log("| run | seconds | jobs/s | CPU µs/job (all) | Redis CPU µs/job | Redis calls/job | top Redis commands (µs/job) |");
  console.log("|---|---:|---:|---:|---:|---:|---|");
  for (const r of results)
    console.log(
      `| ${r.name} | ${r.seconds.toFixed(2)} | ${r.perSec.toFixed(0)} | ${r.cpuPerJobUs.toFixed(0)} | ${r.redisCpuPerJobUs.toFixed(0)} | ${r.callsPerJob.toFixed(1)} | ${r.top} |`,
    );
  console.log(
    JSON.stringify({
      plainPerSec: Math.round(p.perSec),
      fair10PerSec: Math.round(f10.perSec),
      fair10kPerSec: Math.round(f10k.perSec),
      fairVsPlain: Number((f10.perSec / p.perSec).toFixed(3)),
      tenants10kVs10: Number((f10k.perSec / f10.perSec).toFixed(3)),
      cpuPerJobUs: { plain: Math.round(p.cpuPerJobUs), fair10: Math.round(f10.cpuPerJobUs), fair10k: Math.round(f10k.cpuPerJobUs) },
      redisCpuPerJobUs: { plain: Math.round(p.redisCpuPerJobUs), fair10: Math.round(f10.redisCpuPerJobUs), fair10k: Math.round(f10k.redisCpuPerJobUs) },
    }),
  );
} finally {
  await admin.quit();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
