import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROLE_NODE_FLAGS, roleEntrypoint } from "../../lib/roles.ts";
import type { ProcessSpec } from "./layout.ts";

/**
 * Runs each process of a layout as a real OS process (node + tsx, as in
 * production) and restarts it when it exits unasked, as systemd or Docker's
 * `restart: unless-stopped` would. States of one process:
 *   running  → exits unasked (crash, kill -9) → restarting (after restartDelayMs) → running
 *   running  → stop() → stopped (SIGTERM, the role drains)
 * Output goes to `<logDir>/<name>.log`; the drill reads pids and restarts here.
 */
export interface Supervised {
  spec: ProcessSpec;
  child: ChildProcess | undefined;
  pid: number | undefined;
  starts: number;
  /** Exit codes / signals of unasked exits, oldest first. */
  exits: string[];
}

export class Supervisor {
  private readonly procs = new Map<string, Supervised>();
  private stopping = false;

  constructor(private readonly o: { baseEnv: Record<string, string>; logDir: string; restartDelayMs?: number; nodeArgs?: string[] }) {
    mkdirSync(o.logDir, { recursive: true });
    process.on("exit", () => {
      for (const p of this.procs.values()) p.child?.kill("SIGKILL");
    });
  }

  start(specs: ProcessSpec[]): void {
    for (const spec of specs) {
      const s: Supervised = { spec, child: undefined, pid: undefined, starts: 0, exits: [] };
      this.procs.set(spec.name, s);
      this.launch(s);
    }
  }

  private launch(s: Supervised): void {
    const log = createWriteStream(join(this.o.logDir, `${s.spec.name}.log`), { flags: "a" });
    const child = spawn(
      process.execPath,
      [...ROLE_NODE_FLAGS, ...(this.o.nodeArgs ?? []), "--import", "tsx", roleEntrypoint(s.spec.role)],
      {
        // Its name is a stable instance id: a restarted exec takes over its predecessor's capacity entry.
        env: { ...process.env, ...this.o.baseEnv, FAIRLANE_WORKER_ID: s.spec.name, ...s.spec.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    s.child = child;
    s.pid = child.pid;
    s.starts++;
    child.once("exit", (code, signal) => {
      if (s.child !== child) return;
      s.child = undefined;
      if (this.stopping) return;
      s.exits.push(signal ?? String(code));
      setTimeout(() => !this.stopping && this.launch(s), this.o.restartDelayMs ?? 500).unref();
    });
  }

  list(): Supervised[] {
    return [...this.procs.values()];
  }

  get(name: string): Supervised {
    const s = this.procs.get(name);
    if (!s) throw new Error(`no process named ${name}`);
    return s;
  }

  /** Sends a signal to a running process (SIGKILL: it is restarted; SIGSTOP: frozen until SIGCONT). */
  signal(name: string, sig: NodeJS.Signals): number | undefined {
    const s = this.get(name);
    if (s.child?.pid) process.kill(s.child.pid, sig);
    return s.child?.pid;
  }

  /** Waits until every process is running (after restarts). */
  async settled(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while ([...this.procs.values()].some((s) => !s.child)) {
      if (Date.now() > until) throw new Error("processes did not come back");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.procs.values()].map(
        (s) =>
          new Promise<void>((resolve) => {
            const c = s.child;
            if (!c || c.exitCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.kill("SIGCONT");
            c.kill("SIGTERM");
            setTimeout(() => c.kill("SIGKILL"), 15_000).unref();
          }),
      ),
    );
  }
}
