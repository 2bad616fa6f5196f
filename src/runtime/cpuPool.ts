/**
 * Worker-thread pool for CPU-heavy result processing (seed 001). Workflow
 * handlers share the exec worker's event loop, so one tenant parsing and
 * summarising a large clinical-notes JSON inline stalls every other tenant's
 * tool calls on that loop. `CpuPool` moves such work to worker threads via
 * piscina (queueing, thread reuse, idle reaping and abort handled by a
 * well-kept library rather than by hand).
 *
 * How the threads run TypeScript: the worker module is `cpuWorker.ts`, run
 * as-is. A worker thread starts with the process's `execArgv` (and reads
 * `NODE_OPTIONS`), so under `node --import tsx` (or the `tsx` CLI, which puts
 * its loader into execArgv) every thread registers tsx itself — verified on
 * Node 20. Loader hooks registered programmatically (`module.register`,
 * `tsx/esm/api`) do NOT reach worker threads on Node 20, so when neither
 * execArgv nor NODE_OPTIONS names tsx we add `--import <tsx loader URL>` for
 * the threads (an absolute URL, so it resolves whatever the cwd). Inheriting
 * execArgv as-is is not enough either: `--input-type` (as in
 * `node --import tsx --input-type=module -e ...`) makes every thread fail at
 * startup, so it is dropped.
 * Note: piscina tries `require()` first, and tsx's require hook compiles the
 * worker module to CommonJS, so worker code must avoid top-level await.
 *
 * The worker filename is given per task rather than in the pool options: with
 * a pool-level filename piscina loads the module while the thread boots, and a
 * load failure there (e.g. no TypeScript loader) leaves queued tasks waiting
 * forever; per task, the same failure rejects that task with the cause.
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { runCpuTask, type CpuTaskName } from "./cpuTasks.ts";
import type { CpuTaskMessage } from "./cpuWorker.ts";

export type { CpuTaskName } from "./cpuTasks.ts";

export interface CpuPoolOptions {
  /** Default: cores − 1 (at least 1), leaving a core for the event loop. */
  maxThreads?: number;
  /** An idle thread exits after this long (default 30 s); the next task starts a new one. */
  idleTimeoutMs?: number;
}

// Compiled (npm run build, plain node) this module is cpuPool.js and its sibling cpuWorker.js needs no loader.
const COMPILED = import.meta.url.endsWith(".js");
const WORKER_FILE = fileURLToPath(new URL(COMPILED ? "./cpuWorker.js" : "./cpuWorker.ts", import.meta.url));
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/** The process's execArgv, minus what threads refuse, plus tsx if the threads would not get it (and run TypeScript). */
function workerExecArgv(): string[] {
  const argv = process.execArgv.filter((arg, i, all) => !arg.startsWith("--input-type") && all[i - 1] !== "--input-type");
  const hasTsx = [...argv, process.env.NODE_OPTIONS ?? ""].some((arg) => arg.includes("tsx"));
  return hasTsx || COMPILED ? argv : [...argv, "--import", import.meta.resolve("tsx")];
}

export class CpuPool {
  readonly #pool: Piscina<CpuTaskMessage, unknown>;
  #destroyed = false;

  constructor(opts: CpuPoolOptions = {}) {
    this.#pool = new Piscina<CpuTaskMessage, unknown>({
      maxThreads: opts.maxThreads ?? Math.max(1, availableParallelism() - 1),
      minThreads: 0, // no threads until work arrives; idle ones are reaped
      idleTimeout: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      execArgv: workerExecArgv(),
    });
    // A thread that dies with no task to fail is reported as an 'error' event;
    // unhandled, it would crash the exec worker and every tenant's workflows.
    this.#pool.on("error", (error: unknown) => process.emitWarning(`CpuPool worker error: ${String(error)}`));
  }

  /**
   * Runs `task` on a worker thread. When `signal` fires, a queued task is
   * dropped and a running one's thread is terminated (piscina replaces it); the
   * promise rejects with an Error named "AbortError" whose `cause` is the reason.
   */
  async run<T>(task: CpuTaskName, input: unknown, signal?: AbortSignal): Promise<T> {
    if (this.#destroyed) throw new Error("CpuPool is destroyed");
    return (await this.#pool.run({ task, input }, { filename: WORKER_FILE, signal: signal ?? null })) as T;
  }

  /** Terminates every thread; pending tasks reject. */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    await this.#pool.destroy();
  }

  /** Threads currently alive. */
  get threads(): number {
    return this.#pool.threads.length;
  }
}

/** The same work done inline on the calling thread (what offloading avoids); used by the benchmark and as the fallback. */
export function runInline<T>(task: CpuTaskName, input: unknown): T {
  return runCpuTask(task, input) as T;
}
