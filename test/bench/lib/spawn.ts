import { spawn, type ChildProcess } from "node:child_process";
import { ROLE_NODE_FLAGS } from "../../../src/lib/roles.ts";
import { roleProcess, type RoleProcess } from "../../helpers/roles.ts";

/**
 * Benchmark processes: a Fairlane role (workers/<role>.ts) or a benchmark
 * script, as `node --import tsx`, plus `--import ./test/bench/lib/loopProbe.ts`
 * when the environment names BENCH_LOOP_FILE (event-loop delay, per process), and `--cpu-prof`
 * when it names BENCH_CPU_PROF (a folder for V8 CPU profiles). A Fairlane role runs with the flags
 * production gives it (ROLE_NODE_FLAGS), or with BENCH_ROLE_NODE_FLAGS instead when that is set
 * ("" = node's defaults: how docs/benchmarks.md compared them); plain BullMQ's scripts with node's defaults.
 * Like test/helpers/roles.ts's spawnRole, which cannot take the extra import.
 */
const roleFlags = () =>
  process.env.BENCH_ROLE_NODE_FLAGS === undefined ? ROLE_NODE_FLAGS : process.env.BENCH_ROLE_NODE_FLAGS.split(" ").filter(Boolean);

const args = (script: string, env: Record<string, string>, flags: readonly string[] = []) => [
  ...flags,
  // BENCH_CPU_PROF=<dir>: each benchmark process writes a V8 CPU profile there when it exits.
  ...(process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF] : []),
  "--import",
  "tsx",
  ...(env.BENCH_LOOP_FILE ? ["--import", "./test/bench/lib/loopProbe.ts"] : []),
  script,
];

export function spawnBenchRole(role: "exec" | "dispatcher" | "api" | "health" | "recovery", env: Record<string, string>): RoleProcess {
  const child = spawn(process.execPath, args(`workers/${role}.ts`, env, roleFlags()), {
    env: { ...process.env, LOG_LEVEL: "warn", FAIRLANE_WORKFLOW_MODULES: "test/bench/workflows.ts", BENCH_ROLE: role, ...env },
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
