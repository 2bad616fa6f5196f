import { spawn, type ChildProcess } from "node:child_process";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { answerMetrics, askMetrics } from "../observability/metricsRelay.ts";

/**
 * `npm start`'s exec role in processes of its own (FAIRLANE_START_EXEC_PROCESSES, default 1).
 *
 * Why: with every role in one process, the workflows' handlers share one event loop with the api and the
 * dispatcher, so a batch that keeps the handlers busy delays everyone's admission and dispatch (issue 20:
 * Class A's start p99 under a Class C storm was 1.13–2.17× its idle p99 through `npm start`, against
 * 1.5×). In their own process the handlers take a core of their own and the api and dispatcher stay
 * responsive, as in the deployed layout (docker-compose.yml).
 *
 * Each child is `workers/exec.ts` (or `dist/workers/exec.js`) with this process's environment, the
 * Redis it uses and a stable FAIRLANE_WORKER_ID, so a restarted child takes over its predecessor's
 * capacity at once. It runs in its own process group (Ctrl-C reaches only this process, which stops
 * the children in the roles' order) and is connected by an IPC channel: it says when it is ready, hands
 * over its metrics for this process's /metrics (metricsRelay.ts), and stops (draining) when the channel
 * closes, so it never outlives a `kill -9` of this process. A child that dies is restarted after
 * `restartDelayMs`; one that dies `maxDeathsPerMinute` times in a minute calls `onGiveUp`.
 */
export const START_CHILD_ENV = "FAIRLANE_START_CHILD";

export interface ExecChildrenOptions {
  processes: number;
  /** The exec role's entrypoint, run with this process's node flags (`--import tsx` for a .ts one). */
  entry: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  readyTimeoutMs?: number;
  /** How long a child may drain on stop before it is killed: its own stop deadline. */
  stopTimeoutMs: number;
  restartDelayMs?: number;
  maxDeathsPerMinute?: number;
  onGiveUp(err: Error): void;
}

interface Child {
  name: string;
  proc: ChildProcess | undefined;
  deaths: number[];
}

export class ExecChildren {
  private readonly children: Child[];
  private stopping = false;

  constructor(private readonly o: ExecChildrenOptions) {
    const host = hostname()
      .replace(/[^\w.-]/g, "-")
      .slice(0, 60);
    this.children = Array.from({ length: o.processes }, (_, i) => ({ name: `${host}:start-exec-${i + 1}`, proc: undefined, deaths: [] }));
    process.on("exit", () => {
      for (const c of this.children) c.proc?.kill("SIGKILL");
    });
  }

  /** Starts every child and resolves once each says it is ready; rejects if one exits first. */
  async start(): Promise<void> {
    await Promise.all(this.children.map((c) => this.launch(c)));
  }

  /** Each running child's metrics (one that does not answer within 2 s is left out of this scrape). */
  async metrics() {
    const got = await Promise.all(this.children.map((c) => (c.proc ? askMetrics(c.proc, 2_000) : undefined)));
    return got.filter((m) => m !== undefined);
  }

  private launch(c: Child): Promise<void> {
    const proc = spawn(process.execPath, [...process.execArgv, this.o.entry], {
      env: { ...this.o.env, FAIRLANE_WORKER_ID: c.name, [START_CHILD_ENV]: "1" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      detached: true,
    });
    c.proc = proc;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      proc.on("message", (m: { type?: string }) => {
        if (m?.type !== "ready" || ready) return;
        ready = true;
        this.o.log.info({ pid: proc.pid, workerId: c.name }, "exec process ready");
        resolve();
      });
      const timer = setTimeout(() => {
        if (!ready) proc.kill("SIGKILL");
      }, this.o.readyTimeoutMs ?? 60_000);
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (c.proc === proc) c.proc = undefined;
        if (!ready) return reject(new Error(`the exec process exited (${signal ?? code}) before it was ready; its log is above`));
        if (!this.stopping) this.died(c, signal ?? String(code));
      });
    });
  }

  private died(c: Child, exit: string): void {
    const now = Date.now();
    c.deaths = [...c.deaths.filter((t) => now - t < 60_000), now];
    this.o.log.error({ workerId: c.name, exit, deathsInMinute: c.deaths.length }, "exec process died; restarting it");
    if (c.deaths.length >= (this.o.maxDeathsPerMinute ?? 5)) {
      this.o.onGiveUp(new Error(`the exec process died ${c.deaths.length} times in a minute`));
      return;
    }
    setTimeout(() => {
      if (this.stopping) return;
      this.launch(c).catch((err: Error) => this.died(c, err.message));
    }, this.o.restartDelayMs ?? 500).unref();
  }

  /** SIGTERM to each child (it drains its runs, as the exec role does), SIGKILL after stopTimeoutMs. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.children.map(({ proc }) => {
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return undefined;
        return new Promise<void>((resolve) => {
          const kill = setTimeout(() => proc.kill("SIGKILL"), this.o.stopTimeoutMs);
          proc.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          proc.kill("SIGTERM");
        });
      }),
    );
  }
}

/**
 * In an exec process `npm start` runs (START_CHILD_ENV set, an IPC channel open; otherwise undefined):
 * from now on answers its metrics requests and stops this process (SIGTERM: the role's own drain) when
 * the channel closes, i.e. when `npm start` is gone, even by kill -9; `ready()` tells it the role runs.
 */
export function startParentLink(): { ready(): void } | undefined {
  if (!process.env[START_CHILD_ENV] || !process.send) return undefined;
  answerMetrics();
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
  return { ready: () => process.send?.({ type: "ready" }) };
}
