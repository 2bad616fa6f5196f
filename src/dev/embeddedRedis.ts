import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { isOtherNode, isRedisServing, ppidOf } from "../lib/processes.ts";

export { alive } from "../lib/processes.ts";

export interface EmbeddedRedisOptions {
  dir: string;
  /** 0 picks a free port (kept for restarts). */
  port: number;
  appendfsync: "always" | "everysec" | "no";
  /** AUTH password; written to a mode-600 redis.conf in `dir`, never on a command line. */
  password?: string;
  /** `maxmemory` ("1gb", "512mb"; "0" = unbounded, the default). The policy is always noeviction. */
  maxmemory?: string;
  /**
   * Restart the server when it dies while running, on the same port and data
   * (the AOF keeps what was acknowledged), after 0.2, 0.5, 1, 2, 4 s. More than
   * `maxDeathsPerMinute` deaths in a minute calls `onGiveUp` instead.
   */
  supervise?: {
    maxDeathsPerMinute?: number;
    onDeath?(info: { pid: number; exit: string }): void;
    onRestart?(info: { pid: number; restarts: number }): void;
    onGiveUp(err: Error): void;
  };
}

/**
 * A private redis-server on loopback, data (AOF on) under `dir`. Used by
 * `npm start` when REDIS_URL is unset, by `npm run topology` and by the tests.
 *
 * Ownership. The server runs in its own process group, so a terminal's Ctrl-C
 * reaches only its owner, which drains and then stops it. `dir` records the
 * server's pid (redis.pid) and its owner's (redis.owner). A start finds a
 * previous server there and:
 *   - stops it when it serves this `dir` and its owner is dead (a killed run);
 *   - refuses when its owner is another live node process (it is in use);
 *   - ignores the pid file otherwise (the pid now names someone else).
 * A port held by anything else is never used: the start refuses. A watchdog
 * (a `sh` reading a pipe from this process) SIGTERMs the server when this
 * process dies without stopping it, kill -9 included.
 */
export class EmbeddedRedis {
  private child: ChildProcess | undefined;
  private watchdog: ChildProcess | undefined;
  private port = 0;
  private stopping = false;
  private unrefed = false;
  private deaths: number[] = [];
  private restarts = 0;
  private reviving: Promise<void> | undefined;
  url = "";

  constructor(private readonly opts: EmbeddedRedisOptions) {}

  async start(): Promise<string> {
    mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
    await stopStale(this.opts.dir);
    this.port = this.opts.port || (await freePort());
    const auth = this.opts.password ? `:${encodeURIComponent(this.opts.password)}@` : "";
    this.url = `redis://${auth}127.0.0.1:${this.port}`;
    await this.launch();
    return this.url;
  }

  /** Synchronous SIGKILL, for `process.on("exit")` handlers. */
  killNow(): void {
    this.stopping = true;
    this.watchdog?.kill("SIGKILL");
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  /** Lets this process exit while the server runs (tests kill it in an exit handler). */
  unref(): void {
    this.unrefed = true;
    this.child?.unref();
    this.unrefWatchdog();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.reviving;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM"); // redis fsyncs the AOF and exits
      await Promise.race([exited, sleep(10_000, undefined, { ref: false })]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    this.watchdog?.kill("SIGKILL");
  }

  /** Spawns the server on `this.port` and waits until it (that very process) answers. */
  private async launch(): Promise<void> {
    const { dir } = this.opts;
    if (!(await portFree(this.port)))
      throw new Error(`port ${this.port} is in use by another process (not this data folder's Redis); set FAIRLANE_REDIS_PORT or stop it`);
    const bin = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim();
    if (!bin) throw new Error("redis-server is not installed (npm start installs Debian's redis-server; or set REDIS_URL)");
    const conf: string[] = [];
    if (this.opts.password) {
      const file = join(dir, "redis.conf");
      writeFileSync(file, `# written by Fairlane at each start\nrequirepass ${this.opts.password}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      conf.push(file);
    }
    const child = spawn(
      bin,
      [
        ...conf,
        "--bind",
        "127.0.0.1",
        "--port",
        String(this.port),
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        this.opts.appendfsync,
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--maxmemory",
        this.opts.maxmemory ?? "0",
        // A queue refuses new work when full; it never drops what it acknowledged.
        "--maxmemory-policy",
        "noeviction",
        "--pidfile",
        join(dir, "redis.pid"),
        "--logfile",
        join(dir, "redis.log"),
      ],
      // Its own process group: a terminal's Ctrl-C must not stop Redis under a draining owner.
      { stdio: "ignore", detached: true },
    );
    this.child = child;
    if (this.unrefed) child.unref();
    writeFileSync(join(dir, "redis.pid"), String(child.pid));
    writeFileSync(join(dir, "redis.owner"), String(process.pid));
    this.startWatchdog(child.pid!);
    try {
      await waitForPing(this.url, child);
    } catch (err) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      throw err;
    }
    child.once("exit", (code, signal) => {
      if (this.stopping || this.child !== child) return;
      const exit = signal ?? `code ${code}`;
      this.opts.supervise?.onDeath?.({ pid: child.pid!, exit });
      if (this.opts.supervise) this.reviving = this.revive(exit).finally(() => (this.reviving = undefined));
    });
  }

  /** Restarts after a death, with backoff; gives up after too many deaths in a minute. */
  private async revive(lastExit: string): Promise<void> {
    const s = this.opts.supervise!;
    const max = s.maxDeathsPerMinute ?? 5;
    let reason = `exit ${lastExit}`;
    while (!this.stopping) {
      const now = Date.now();
      this.deaths = [...this.deaths.filter((t) => now - t < 60_000), now];
      if (this.deaths.length > max) {
        s.onGiveUp(
          new Error(
            `the embedded redis-server died ${this.deaths.length} times within a minute (last: ${reason}); giving up, see ${join(this.opts.dir, "redis.log")}`,
          ),
        );
        return;
      }
      await sleep([200, 500, 1_000, 2_000][this.deaths.length - 1] ?? 4_000);
      if (this.stopping) return;
      try {
        await this.launch();
        this.restarts++;
        s.onRestart?.({ pid: this.child!.pid!, restarts: this.restarts });
        return;
      } catch (err) {
        reason = (err as Error).message;
      }
    }
  }

  /**
   * `sh` reads a pipe only this process writes to: it sees end-of-file when this
   * process is gone, however it died, and then SIGTERMs the server if that pid
   * still serves `dir`. Stopped (SIGKILL) with the server by stop() and killNow().
   */
  private startWatchdog(pid: number): void {
    this.watchdog?.kill("SIGKILL");
    const script =
      'cat >/dev/null; if [ -d /proc/self ]; then [ "$(readlink "/proc/$1/cwd")" = "$2" ] || exit 0; fi; kill -TERM "$1" 2>/dev/null';
    this.watchdog = spawn("sh", ["-c", script, "fairlane-redis-watchdog", String(pid), realpathSync(this.opts.dir)], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    this.watchdog.stdin!.on("error", () => undefined);
    if (this.unrefed) this.unrefWatchdog();
  }

  private unrefWatchdog(): void {
    this.watchdog?.unref();
    (this.watchdog?.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

/** Stops a server left in `dir` by a dead owner; refuses one a live owner still runs. */
async function stopStale(dir: string): Promise<void> {
  const pidfile = join(dir, "redis.pid");
  if (!existsSync(pidfile)) return;
  const pid = Number(readFileSync(pidfile, "utf8").trim());
  if (!pid || !isRedisServing(pid, dir)) return; // gone, or the pid now names another process
  // Its owner: the pid recorded at its start, or its parent (a server from before redis.owner existed).
  const ownerfile = join(dir, "redis.owner");
  const recorded = existsSync(ownerfile) ? Number(readFileSync(ownerfile, "utf8").trim()) : 0;
  const owner = [recorded, ppidOf(pid)].find((p) => isOtherNode(p));
  if (owner) throw new Error(`the Redis of ${dir} (pid ${pid}) belongs to running process ${owner}; stop that first`);
  process.kill(pid, "SIGTERM"); // fsyncs the AOF
  for (let i = 0; i < 100 && isRedisServing(pid, dir); i++) await sleep(100);
  if (isRedisServing(pid, dir)) process.kill(pid, "SIGKILL");
  for (let i = 0; i < 50 && isRedisServing(pid, dir); i++) await sleep(100);
}

/** Nothing listens on 127.0.0.1:port (a listener on 0.0.0.0 or :: counts too: the bind fails). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until `child` itself answers on `url`: another server on that port must never pass for it. */
async function waitForPing(url: string, child: ChildProcess): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    for (const until = Date.now() + 60_000; Date.now() < until; ) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`redis-server exited (${child.signalCode ?? `code ${child.exitCode}`}); see its redis.log`);
      try {
        if (client.status !== "ready") await client.connect();
        const info = await client.info("server");
        if (Number(/process_id:(\d+)/.exec(info)?.[1]) !== child.pid) throw new Error("another server answered");
        return;
      } catch {
        client.disconnect();
        await sleep(50);
      }
    }
    throw new Error("redis-server did not answer within 60 s");
  } finally {
    client.disconnect();
  }
}
