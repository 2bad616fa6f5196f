import { spawn } from "node:child_process";
import { REPO_ROOT } from "../../src/lib/config.ts";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The `fairlane` command (bin/fairlane.js) as a real child process from the checkout, with `env` over this process's. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/fairlane.js", ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
