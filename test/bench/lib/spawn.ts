import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { ROLE_NODE_FLAGS } from "../../../src/lib/roles.ts";
import { roleProcess, type RoleProcess } from "../../helpers/roles.ts";

/**
 * Benchmark processes: a Fairlane role or a benchmark script, plus the event-loop probe
 * (test/bench/lib/loopProbe.ts) when the environment names BENCH_LOOP_FILE (event-loop delay, per
 * process), the call probe (test/bench/lib/callProbe.ts: each HTTP tool call's start and answer, as
 * undici reports them) when it names BENCH_CALL_FILE, and `--cpu-prof` when it names BENCH_CPU_PROF (a
 * folder for V8 CPU profiles).
 *
 * A Fairlane role runs as production runs it (the image's `node dist/workers/<role>.js`): compiled by
 * `npm run build`, once per benchmark process (before its first role), with the benchmark's workflow
 * module and the probes compiled beside it (tsconfig.bench.json), and the flags production gives it
 * (ROLE_NODE_FLAGS, or BENCH_ROLE_NODE_FLAGS instead when that is set: "" = node's defaults).
 * BENCH_ROLES_FROM=tsx runs the TypeScript through tsx instead, as `npm start` does (slower: tsx
 * compiles with esbuild's keepNames; docs/benchmarks.md). Plain BullMQ's scripts run through tsx with
 * node's defaults: their code is BullMQ's, compiled JavaScript either way.
 * Like test/helpers/roles.ts's spawnRole, which cannot take the extra import.
 */
const roleFlags = () =>
  process.env.BENCH_ROLE_NODE_FLAGS === undefined ? ROLE_NODE_FLAGS : process.env.BENCH_ROLE_NODE_FLAGS.split(" ").filter(Boolean);
const fromTsx = () => process.env.BENCH_ROLES_FROM === "tsx";

let built = false;
/** `npm run build`, then the benchmark's own modules into the same dist/ (what imports them is compiled there). */
function buildRoles(): void {
  if (built) return;
  execFileSync("bash", ["src/dev/bin/build.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 });
  execFileSync("npx", ["--no-install", "tsc", "-p", "tsconfig.bench.json"], { stdio: ["ignore", "inherit", "inherit"], timeout: 300_000 });
  built = true;
}

const args = (script: string, env: Record<string, string>, flags: readonly string[] = [], compiled = false) => [
  ...flags,
  // BENCH_CPU_PROF=<dir>: each benchmark process writes a V8 CPU profile there when it exits.
  ...(process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF] : []),
  ...(compiled ? [] : ["--import", "tsx"]),
  ...(env.BENCH_LOOP_FILE ? ["--import", compiled ? "./dist/test/bench/lib/loopProbe.js" : "./test/bench/lib/loopProbe.ts"] : []),
  ...(env.BENCH_CALL_FILE ? ["--import", compiled ? "./dist/test/bench/lib/callProbe.js" : "./test/bench/lib/callProbe.ts"] : []),
  script,
];

export function spawnBenchRole(role: "exec" | "dispatcher" | "api" | "health" | "recovery", env: Record<string, string>): RoleProcess {
  const compiled = !fromTsx();
  if (compiled) buildRoles();
  const [script, workflows] = compiled
    ? [`dist/workers/${role}.js`, "dist/test/bench/workflows.js"]
    : [`workers/${role}.ts`, "test/bench/workflows.ts"];
  const child = spawn(process.execPath, args(script, env, roleFlags(), compiled), {
    env: { ...process.env, LOG_LEVEL: "warn", FAIRLANE_WORKFLOW_MODULES: workflows, BENCH_ROLE: role, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return roleProcess(child, 200_000);
}

/** A benchmark script (plain BullMQ workers), its output to ours. */
export function spawnScript(script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, args(script, env), {
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  process.on("exit", () => child.kill("SIGKILL"));
  return child;
}

export async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : (c.once("exit", r), c.kill("SIGTERM")))),
    ),
  );
}

/** Resolves once `proc`'s output contains `text`; throws after `timeoutMs`. */
export async function waitForOutput(proc: RoleProcess, text: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (Date.now() > until || proc.child.exitCode !== null)
      throw new Error(`no "${text}" within ${timeoutMs / 1000} s:\n${proc.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
