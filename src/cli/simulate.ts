#!/usr/bin/env node
/**
 * The fairness simulator (`npm run simulate -- ...`, docs/simulator.md): runs
 * a scenario through the real dispatch rule with a fake clock
 * (src/dispatch/simulator.ts) and prints each tenant's share of slot-time
 * against its entitlement, Jain's index, the worst share and start latencies.
 * A scenario comes from flags (--slots 100 --tenants 200 --weights 1,2,4 ...)
 * or a YAML file (--scenario, simulateFile.ts); with a file, --slots, --for,
 * --seed and the share flags override it, so one file answers "and with 80
 * slots?". Exit codes: 0 ran, 2 bad flags or a bad scenario file (the message
 * names the flag or field), 1 anything else.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { simulate } from "../dispatch/simulator.ts";
import { DEFAULT_SHARES } from "../dispatch/policy/shares.ts";
import { loadScenarioFile, ScenarioError } from "./simulateFile.ts";
import { jsonReport, textReport } from "./simulateReport.ts";
import { parseDuration, parseDurationRange, scenarioFromFlags, toSimTenants, type Scenario } from "./simulateScenario.ts";

const int = (min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
  return n;
};
const num =
  (min: number, max: number, what = `a number from ${min} to ${max}`) =>
  (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`must be ${what}`);
    return n;
  };
const weights = (v: string) =>
  v.split(",").map(num(Number.MIN_VALUE, 1000, "comma-separated weights, each above 0 and at most 1000 (e.g. 1,2,4)"));
const durations = (v: string) =>
  v.split(",").map((s) => {
    const d = parseDurationRange(s, 1);
    if ("error" in d) throw new InvalidArgumentError(`${d.error}; give one or more, comma-separated (e.g. 45s or 30s-60s,2m)`);
    return d.ms;
  });
const duration = (v: string) => {
  const d = parseDuration(v);
  if ("error" in d || d.ms < 1) throw new InvalidArgumentError("error" in d ? d.error : "must be at least 1ms");
  return d.ms;
};
const fraction = num(0, 1);

/** Flags that describe tenants: a scenario file describes its own, so these are refused next to --scenario. */
const TENANT_FLAGS = [
  "tenants",
  "weights",
  "durations",
  "mca",
  "burstMca",
  "burstSeconds",
  "cooldownSeconds",
  "mcaUrgent",
  "class",
  "jobs",
  "rate",
];

const program = new Command("simulate")
  .description("simulate the dispatch rule's fairness for a scenario, with a fake clock (docs/simulator.md)")
  .option("--scenario <file>", "a YAML scenario (see docs/scenarios/); flags below describe one otherwise")
  .option("--slots <n>", "pool capacity (default 10)", int(1, 100_000))
  .option("--tenants <n>", "how many tenants, named t000, t001, ...", int(1, 100_000), 3)
  .addOption(new Option("--weights <list>", "weights, cycling over the tenants (e.g. 1,2,4)").argParser(weights).default([1], "1"))
  .addOption(
    new Option("--durations <list>", "each run's slot-time, cycling over the tenants: 45s, or a range 30s-60s (ms, s, m, h)")
      .argParser(durations)
      .default([45_000], "45s"),
  )
  .option("--mca <n>", "every tenant's cap on running workflows (default: the pool, never binding)", int(1, 1_000_000))
  .option("--burst-mca <n>", "cap during a burst window (default: --mca)", int(1, 1_000_000))
  .option("--burst-seconds <s>", "burst window length", int(0, 86_400), 0)
  .option("--cooldown-seconds <s>", "no burst for this long after a window", int(0, 86_400), 0)
  .option("--mca-urgent <n>", "Class A cap (default: --mca)", int(0, 1_000_000))
  .addOption(new Option("--class <class>", "workflow class of every tenant's work").choices(["A", "B", "C"]).default("B"))
  .option("--jobs <n>", "workflows per tenant (default: a backlog that never ends)", int(1, 1_000_000_000))
  .option(
    "--rate <r>",
    "arrivals per second per tenant (default: all at once)",
    num(Number.MIN_VALUE, 1_000_000, "a number of arrivals per second above 0"),
  )
  .option("--for <duration>", "simulated time (default 10m)", duration)
  .option("--seed <n>", "seed for run times drawn from a range (default 1)", int(0, 2 ** 31 - 1))
  .option("--reserve <f>", `share of slots reserved for Class A, at least 1 (default ${DEFAULT_SHARES.reserveFraction})`, fraction)
  .option("--batch-max-share <f>", `most of the pool Class C may hold (default ${DEFAULT_SHARES.batchMaxShare})`, fraction)
  .option("--batch-min-share <f>", `Class C's guaranteed share while it has backlog (default ${DEFAULT_SHARES.batchMinShare})`, fraction)
  .option("--all", "a row for every tenant, however many")
  .option("--json", "print the scenario and the whole result as JSON")
  .showHelpAfterError("(npm run simulate -- --help for usage)")
  .exitOverride();

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function scenarioOf(o: Record<string, any>): Scenario {
  const given = (k: string) => program.getOptionValueSource(k) === "cli";
  const flagOf = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const shares = {
    reserveFraction: o.reserve ?? DEFAULT_SHARES.reserveFraction,
    batchMaxShare: o.batchMaxShare ?? DEFAULT_SHARES.batchMaxShare,
    batchMinShare: o.batchMinShare ?? DEFAULT_SHARES.batchMinShare,
  };
  if (!o.scenario) {
    const s = scenarioFromFlags({ ...(o as any), cls: o.class, slots: o.slots ?? 10, forMs: o.for ?? 600_000, seed: o.seed ?? 1, shares });
    if ("error" in s) fail(s.error);
    return s;
  }
  const clash = TENANT_FLAGS.filter(given);
  if (clash.length) fail(`${clash.map(flagOf).join(", ")} cannot be used with --scenario: the file describes its tenants`);
  const s = loadScenarioFile(o.scenario);
  const file = { reserveFraction: s.shares.reserveFraction, batchMaxShare: s.shares.batchMaxShare, batchMinShare: s.shares.batchMinShare };
  const merged = {
    reserveFraction: given("reserve") ? o.reserve : file.reserveFraction,
    batchMaxShare: given("batchMaxShare") ? o.batchMaxShare : file.batchMaxShare,
    batchMinShare: given("batchMinShare") ? o.batchMinShare : file.batchMinShare,
  };
  if (merged.batchMinShare > merged.batchMaxShare)
    fail(`batch min share (${merged.batchMinShare}) must be <= batch max share (${merged.batchMaxShare})`);
  return { ...s, slots: o.slots ?? s.slots, forMs: o.for ?? s.forMs, seed: o.seed ?? s.seed, shares: merged };
}

function main(): void {
  try {
    program.parse();
  } catch (err) {
    // Commander has printed its message (naming the flag); help and --version are not errors.
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    throw err;
  }
  const o = program.opts();
  let scenario: Scenario;
  try {
    scenario = scenarioOf(o);
  } catch (err) {
    if (err instanceof ScenarioError) fail(err.message);
    throw err;
  }
  const t0 = performance.now();
  const result = simulate(toSimTenants(scenario), {
    capacity: scenario.slots,
    untilMs: scenario.forMs,
    seed: scenario.seed,
    shares: scenario.shares,
  });
  const run = { scenario, result, wallMs: performance.now() - t0 };
  process.stdout.write(o.json ? jsonReport(run) : textReport(run, Boolean(o.all)));
}

main();
