import { spawn, type ChildProcess } from "node:child_process";
import { ROLE_NODE_FLAGS, roleEntrypoint, type Role } from "../../src/lib/roles.ts";

export interface RoleProcess {
  child: ChildProcess;
  output: () => string;
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

/**
 * Starts one Fairlane role as a real OS process (node + tsx, like
 * production), with the observed test workflow loaded.
 */
export function spawnRole(role: Role, env: Record<string, string>): RoleProcess {
  const child = spawn(process.execPath, [...ROLE_NODE_FLAGS, "--import", "tsx", roleEntrypoint(role)], {
    env: {
      ...process.env,
      LOG_LEVEL: "warn",
      FAIRLANE_WORKFLOW_MODULES: "test/helpers/observedWorkflow.ts",
      // The batch limit off unless a test turns it on: a busy test machine's lag would change what Class C
      // may take under tests that count it (test/e2e/batchLimit.test.ts tests the limit itself).
      FAIRLANE_EXEC_LAG_TARGET_MS: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return roleProcess(child);
}

/** Wraps a spawned process (stdout and stderr piped): its output (the last `keepChars`), stop and kill -9. */
export function roleProcess(child: ChildProcess, keepChars = Infinity): RoleProcess {
  let out = "";
  const keep = (d: unknown) => {
    out += String(d);
    if (out.length > keepChars) out = out.slice(-keepChars);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  process.on("exit", () => child.kill("SIGKILL"));
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    async kill9() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
