import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";

export interface EmbeddedRedisOptions {
  dir: string;
  /** 0 picks a free port. */
  port: number;
  appendfsync: "always" | "everysec" | "no";
}

/**
 * A private redis-server on loopback, data (AOF on) under `dir`. Used by
 * `npm start` when REDIS_URL is unset and by the test suite. A server left
 * running by a killed parent (pidfile in `dir`) is stopped before a new one
 * starts on the same data.
 */
export class EmbeddedRedis {
  private child: ChildProcess | undefined;
  url = "";

  constructor(private readonly opts: EmbeddedRedisOptions) {}

  async start(): Promise<string> {
    mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
    await stopStale(join(this.opts.dir, "redis.pid"));
    const port = this.opts.port || (await freePort());
    const bin = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim();
    if (!bin) throw new Error("redis-server is not installed (npm start installs Debian's redis-server; or set REDIS_URL)");
    this.child = spawn(
      bin,
      [
        "--bind", "127.0.0.1",
        "--port", String(port),
        "--dir", this.opts.dir,
        "--appendonly", "yes",
        "--appendfsync", this.opts.appendfsync,
        "--save", "",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--pidfile", join(this.opts.dir, "redis.pid"),
        "--logfile", join(this.opts.dir, "redis.log"),
      ],
      { stdio: "ignore" },
    );
    writeFileSync(join(this.opts.dir, "redis.pid"), String(this.child.pid));
    this.url = `redis://127.0.0.1:${port}`;
    await waitForPing(this.url, this.child);
    return this.url;
  }

  /** Synchronous SIGKILL, for `process.on("exit")` handlers. */
  killNow(): void {
    if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
  }

  /** Lets this process exit while the server runs (tests kill it in an exit handler). */
  unref(): void {
    this.child?.unref();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM"); // redis fsyncs the AOF and exits
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

async function stopStale(pidfile: string): Promise<void> {
  if (!existsSync(pidfile)) return;
  const pid = Number(readFileSync(pidfile, "utf8").trim());
  if (!pid || !alive(pid) || !isRedis(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function isRedis(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("redis-server");
  } catch {
    return false;
  }
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

async function waitForPing(url: string, child: ChildProcess): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    for (const until = Date.now() + 60_000; Date.now() < until; ) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
      try {
        if (client.status !== "ready") await client.connect();
        await client.ping();
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
