/**
 * npm run soak -- [--minutes N | --seconds S] [--quick] [--json] [--seed S] [--out <dir>]
 *                 [--utilization 0.35] [--cancel 0.01] [--sample-sec N]
 * npm run soak -- --reanalyse <dir>/results.json [--out <dir>]
 *   judges a stored run's samples again (after a tolerance changes) and rewrites its report
 *
 * The load soak (issue item 6): a sustained, seeded mix of work from nine
 * tenants of every tier (one of them paused, its work cancelled while queued), all classes, at about 35% of the exec pool's
 * capacity, against a real deployment (a Redis of its own, the simulated
 * downstream, exec ×2 / dispatcher / health / recovery processes). Every
 * sample it reads each role's RSS, Redis memory and the deployment's keys; at
 * the end it stops the load, waits for the queues to drain and compares keys
 * by kind with a census taken before the load. Default 10 minutes, --quick 1.
 *
 * Run phases:  prime (one of each tenant × class × type; drain)  → census
 *              → load + samples for the run length → stop → drain → census
 *              → verdict (exit 1 on any violation).
 * Record and idempotency TTLs are shortened to a fifth of the run (5–120 s)
 * so that expiring data reaches a steady state inside the run: memory that
 * still grows after warm-up is then growth no TTL will take back.
 *
 * Prints a table; with --json the last line is the result as one JSON
 * object. Writes results.json and report.md to --out (default .fairlane/soak).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { mulberry32 } from "../../src/dev/downstream/simulator.ts";
import { startDownstream } from "../bench/lib/downstreamProcess.ts";
import { benchRedis } from "../bench/lib/infra.ts";
import { fairlane, type Workers } from "../bench/lib/systems.ts";
import { analyse, memoryTrends, type SoakParams, type SoakResult } from "./lib/analyse.ts";
import { Endings } from "./lib/endings.ts";
import { census, classify, PER_WORKFLOW, type Census } from "./lib/keyCensus.ts";
import { drive, EXPECTED_SERVICE_SEC, newLoadLog, prime, TENANTS } from "./lib/load.ts";
import { markdown, summaryTable } from "./lib/report.ts";
import { redisMemoryMiB, rssMiB, type Sample } from "./lib/sampler.ts";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string" },
    seconds: { type: "string" },
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    seed: { type: "string", default: "6" },
    out: { type: "string" },
    utilization: { type: "string", default: "0.35" },
    cancel: { type: "string", default: "0.01" },
    "sample-sec": { type: "string" },
    reanalyse: { type: "string" },
  },
});
if (args.reanalyse) reanalyse(args.reanalyse, args.out ?? dirname(args.reanalyse));
const runSec = args.seconds ? Number(args.seconds) : Number(args.minutes ?? (args.quick ? 1 : 10)) * 60;
if (!(runSec >= 10)) throw new Error("the soak needs at least 10 seconds (--seconds / --minutes)");
const seed = Number(args.seed);
const utilization = Number(args.utilization);
const sampleSec = Number(args["sample-sec"] ?? Math.min(10, Math.max(1, runSec / 40)));
const ttlSec = Math.min(120, Math.max(5, Math.round(runSec / 5)));
const outDir = args.out ?? ".fairlane/soak";
const workers: Workers = { processes: 2, concurrency: 6 };
const slots = workers.processes * workers.concurrency;
const ratePerSec = (utilization * slots) / EXPECTED_SERVICE_SEC;
const log = (msg: string) => process.stderr.write(`soak: ${msg}\n`);
process.setMaxListeners(0);

// Admission runs in this process (fairlane() loads its config from process.env); the roles inherit it.
process.env.FAIRLANE_RECORD_TTL_SEC = String(ttlSec);
process.env.FAIRLANE_IDEMPOTENCY_TTL_SEC = String(ttlSec);

const params: SoakParams = {
  runSec,
  sampleSec,
  seed,
  utilization,
  ratePerSec,
  slots,
  workers,
  recordTtlSec: ttlSec,
  tenants: TENANTS.map(
    (t) => `${t.tenant} (${t.spec.tier}${t.spec.paused ? ", paused: its every workflow is cancelled while queued" : ""})`,
  ),
  mix: `classes A 15% / B 50% / C 35%; half bench-prior-auth (1–2 steps × 4 tool calls, 100–200 ms), half bench-sleep (0.3–1.5 s); 10% keyed, 2% replays of a key sent in the last TTL/2, ${Number(args.cancel) * 100}% cancelled`,
};

const t00 = Date.now();
const redis = await benchRedis();
const ds = await startDownstream({ capacity: 400, latencyMs: [100, 200], seed });
let exitCode = 1;
try {
  const sys = await fairlane(redis.url, {
    tenants: Object.fromEntries(TENANTS.map((t) => [t.tenant, t.spec])),
    workers,
    downstreamUrl: ds.url,
    backpressure: true,
    env: { LOG_LEVEL: "error", FAIRLANE_HEALTH_INTERVAL_MS: "1000" },
  });
  const r = sys.platform.redis;
  const cell = sys.platform.keys.cell("default");
  const tenantNames = TENANTS.map((t) => t.tenant);
  const observerLog = `obs:{${sys.prefix}}:log`;
  const endings = new Endings(r, cell);
  const loadLog = newLoadLog();
  /** Waits for the queues to drain, reading records all the while (they expire `ttlSec` after they end); then lets BullMQ finish. */
  const drainWatching = async (timeoutMs: number): Promise<boolean> => {
    const until = Date.now() + timeoutMs;
    let idle = false;
    while (!(idle = await sys.idle()) && Date.now() < until) {
      await endings.poll(loadLog.accepted.keys());
      await sleep(500);
    }
    await sleep(2000); // BullMQ completes (and removes) an exec job just after the slot is released
    await endings.poll(loadLog.accepted.keys());
    return idle;
  };
  try {
    log(`prefix ${sys.prefix}; priming every tenant × class × type...`);
    await prime(sys, loadLog);
    if (!(await drainWatching(60_000))) throw new Error("the priming workflows did not drain");
    const before = await census(r, sys.prefix, tenantNames);

    const seen = new Map<string, number>();
    const roles = sys.roles.map(({ role, pid }) => {
      seen.set(role, (seen.get(role) ?? 0) + 1);
      return [role === "exec" ? `exec#${seen.get(role)}` : role, pid] as const;
    });
    const samples: Sample[] = [];
    const t0 = Date.now();
    const sampleOnce = async (): Promise<Sample> => {
      const at = Date.now();
      const rss = Object.fromEntries(roles.map(([name, pid]) => [name, rssMiB(pid)]));
      const c: Census = await census(r, sys.prefix, tenantNames);
      const mem = await redisMemoryMiB(
        r,
        observerLog,
        [...c.noTtlKeys].filter((k) => k.endsWith(":events")),
      );
      await endings.poll(loadLog.accepted.keys());
      const perWorkflowNoTtl = Object.values(c.byKind).reduce((s, k) => s + (PER_WORKFLOW.has(k.kind) ? k.noTtl : 0), 0);
      return {
        at,
        min: (at - t0) / 60_000,
        rss,
        redis: mem,
        redisRss: rssMiB(redis.pid),
        keys: { total: c.total, noTtl: c.noTtlKeys.size, perWorkflowNoTtl },
      };
    };
    log(
      `load: ${ratePerSec.toFixed(1)} workflows/s (${Math.round(utilization * 100)}% of ${slots} slots) for ${runSec} s, a sample every ${sampleSec} s`,
    );
    const sampling = (async () => {
      for (let k = 0; ; k++) {
        const due = t0 + k * sampleSec * 1000;
        if (due > t0 + runSec * 1000) break;
        await sleep(Math.max(0, due - Date.now()));
        samples.push(await sampleOnce());
        if (k % Math.max(1, Math.round(60 / sampleSec)) === 0 && k > 0)
          log(
            `${samples.at(-1)!.min.toFixed(1)} min: ${loadLog.accepted.size} accepted, redis ${samples.at(-1)!.redis.net.toFixed(2)} MiB, ${samples.at(-1)!.keys.total} keys`,
          );
      }
    })();
    await Promise.all([
      drive(
        sys,
        { seconds: runSec, ratePerSec, rng: mulberry32(seed), idempotencyTtlSec: ttlSec, cancelled: Number(args.cancel) },
        loadLog,
      ),
      sampling,
    ]);
    const loadEnd = Date.now();

    log("load stopped; draining...");
    const drained = await drainWatching(120_000);
    const after = await census(r, sys.prefix, tenantNames);
    const runs = await sys.runs();
    // What the leaked records say (state, reason): the clue to which path ended them without a TTL.
    const leakedRecords = [...after.noTtlKeys].filter(
      (k) => !before.noTtlKeys.has(k) && classify(k, sys.prefix).kind === "workflow record",
    );
    const leakedRecordStates: Record<string, number> = {};
    for (const k of leakedRecords) {
      const [state, code, message] = await r.hmget(k, "state", "errorCode", "errorMessage");
      const label = [state, code, message].filter(Boolean).join(" / ");
      leakedRecordStates[label] = (leakedRecordStates[label] ?? 0) + 1;
    }

    const result = analyse({
      params,
      samples,
      before,
      after,
      t0,
      loadEnd,
      drained,
      runs,
      load: loadLog,
      endings,
      prefix: sys.prefix,
      tenants: tenantNames,
      leakedRecordStates,
    });
    result.seconds = (Date.now() - t00) / 1000;
    result.machine = { cpus: cpus().length, node: process.version };
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, "results.json"), `${JSON.stringify({ ...result, samples }, null, 2)}\n`);
    writeFileSync(join(outDir, "report.md"), markdown(result, samples));
    console.log(`\nFairlane load soak, ${runSec} s, seed ${seed} (report: ${join(outDir, "report.md")})\n`);
    console.log(summaryTable(result));
    console.log(`\nverdict: ${result.verdict.pass ? "PASS" : `FAIL (${result.verdict.failures.join("; ")})`}`);
    if (args.json) console.log(JSON.stringify(result));
    exitCode = result.verdict.pass ? 0 : 1;
  } finally {
    await sys.close();
  }
} finally {
  await ds.stop();
  await redis.stop();
}
process.exit(exitCode);

/** The memory verdict of a stored run, judged again from its samples; the rest of the verdict stands as recorded. */
function reanalyse(file: string, out: string): never {
  const { samples, ...result } = JSON.parse(readFileSync(file, "utf8")) as SoakResult & { samples: Sample[] };
  result.memory = memoryTrends(samples, result.params.runSec);
  result.reanalysedAt = new Date().toISOString();
  const others = result.verdict.failures.filter((f) => !/RSS|Redis memory/.test(f));
  result.verdict.memoryFlat = result.memory.failures.length === 0;
  result.verdict.failures = [...result.memory.failures, ...others];
  result.verdict.pass = result.verdict.failures.length === 0;
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "results.json"), `${JSON.stringify({ ...result, samples }, null, 2)}\n`);
  writeFileSync(join(out, "report.md"), markdown(result, samples));
  console.log(summaryTable(result));
  console.log(`\nverdict: ${result.verdict.pass ? "PASS" : `FAIL (${result.verdict.failures.join("; ")})`}`);
  if (args.json) console.log(JSON.stringify(result));
  process.exit(result.verdict.pass ? 0 : 1);
}
