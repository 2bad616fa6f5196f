/**
 * npm run bench [-- --quick] [--json] [--only storm,loan,throughput,outage] [--out <dir>] [--rounds <n>] [--agent ai-sdk]
 *
 * Runs the four benchmark scenarios of issue 7 on the real system (a Redis of
 * its own, real exec/dispatcher/health/recovery processes, the simulated
 * downstream as its own process) and compares each with controls off, in one
 * run. Prints one summary table; writes results.json and report.md to --out
 * (default: docs/benchmarks for a full run, .fairlane/bench for --quick).
 * With --json the last line printed is the results contract as one JSON object.
 * Quick mode scales the scenarios down to finish in under 3 minutes on 2 cores.
 * --rounds repeats the throughput comparison (plain and Fairlane drains) n
 * times (default 1): the contract's ratios all come from the round with the
 * median drain ratio, `byRound` gives every round's; --only throughput
 * --rounds 3 takes about 4 minutes, a full run with one round about 7.
 * --agent ai-sdk runs the storm's agents on Fairlane as the Vercel AI SDK agent
 * (prior-auth-agent, ctx.agent) instead of the hand-written one; ai-sdk-batch
 * only the batch's (the other tenants' trickle stays hand-written).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchRedis } from "./lib/infra.ts";
import { contract, markdown, summaryRows, table, type BenchResults } from "./lib/report.ts";
import { runLoan } from "./scenarios/loan.ts";
import { runOutage } from "./scenarios/outage.ts";
import { runStorm } from "./scenarios/storm.ts";
import { runThroughput } from "./scenarios/throughput.ts";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    only: { type: "string", default: "storm,loan,throughput,outage" },
    out: { type: "string" },
    rounds: { type: "string", default: "1" },
    agent: { type: "string", default: "handwritten" },
  },
});
const SCENARIOS = ["storm", "loan", "throughput", "outage"] as const;
const only = new Set(args.only!.split(",").map((s) => s.trim()));
for (const s of only)
  if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`--only: unknown scenario "${s}" (one of ${SCENARIOS.join(", ")})`);
const quick = args.quick!;
const AGENTS = ["handwritten", "ai-sdk", "ai-sdk-batch"] as const;
const agent = AGENTS.find((a) => a === args.agent);
if (!agent) throw new Error(`--agent: one of ${AGENTS.join(", ")}, not "${args.agent}"`);
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: a whole number ≥ 1, not "${args.rounds}"`);
const outDir = args.out ?? (quick ? ".fairlane/bench" : "docs/benchmarks");
process.setMaxListeners(0); // one exit hook per child process this run starts
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

const redisVersion = () => {
  try {
    return /v=(\S+)/.exec(execFileSync("redis-server", ["--version"], { encoding: "utf8" }))?.[1] ?? "?";
  } catch {
    return "?";
  }
};

const results: BenchResults = {
  date: new Date().toISOString(),
  mode: quick ? "quick" : "full",
  machine: {
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    redis: redisVersion(),
  },
  seconds: 0,
};
const t0 = performance.now();
const redis = await benchRedis();
try {
  if (only.has("storm")) {
    log("1/4 fan-out storm (controls off, then on)...");
    results.storm = await runStorm(redis.url, { quick, redisPid: redis.pid, agent });
  }
  if (only.has("loan")) {
    log("2/4 loan-platform burst (off, then on)...");
    results.loan = await runLoan(redis.url, { quick });
  }
  if (only.has("throughput")) {
    log("3/4 throughput and scale...");
    results.throughput = await runThroughput(redis.url, redis.pid, {
      jobs: quick ? 5_000 : 20_000,
      // Plain BullMQ at its best on this machine is one of these (same total concurrency, 100).
      plainLayouts: [
        { processes: 2, concurrency: 50 },
        { processes: 1, concurrency: 100 },
      ],
      // Fairlane's own best here, as plain's: one exec process beside the dispatcher and Redis on 2 cores
      // (exec CPU per workflow 131-153 µs against 168-199 µs in two processes of 50; docs/benchmarks.md).
      fairLayout: { processes: 1, concurrency: 100 },
      tenants: [10, 10_000],
      rounds,
      censusJobs: quick ? 500 : 1_000,
      gateMs: quick ? 1_500 : 5_000,
      durabilityAdmissions: quick ? 1_000 : 5_000,
      log,
    });
  }
  if (only.has("outage")) {
    log("4/4 backpressure drill (off, then on)...");
    results.outage = await runOutage(redis.url, { quick });
  }
} finally {
  await redis.stop();
}
results.seconds = (performance.now() - t0) / 1000;

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "results.json"), `${JSON.stringify({ contract: contract(results), results }, null, 2)}\n`);
writeFileSync(join(outDir, "report.md"), markdown(results));
console.log(
  `\nFairlane benchmark, ${results.mode} run, ${results.date}, ${results.seconds.toFixed(0)} s (report: ${join(outDir, "report.md")})\n`,
);
console.log(table(["measure", "controls off", "controls on (Fairlane)", "bar"], summaryRows(results)));
if (args.json) console.log(JSON.stringify(contract(results)));
process.exit(0);
