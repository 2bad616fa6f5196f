import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { alive, EmbeddedRedis } from "../../src/dev/embeddedRedis.ts";

/**
 * A redis-server of one test's own, for tests that kill, fill or demote it
 * (the shared one of helpers/redis.ts must stay up). Killed with the test
 * process if the test does not stop it.
 */
export interface PrivateRedis {
  server(): EmbeddedRedis;
  dir: string;
  url: string;
  port: number;
  /** A plain connection for the test's own CONFIG / INFO / REPLICAOF. */
  admin: Redis;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  /** A new redis-server on the same folder (its AOF) and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function privateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), "fl-private-redis-"));
  let server = new EmbeddedRedis({ dir, port: 0, appendfsync: "everysec" });
  const cleanup = () => {
    server.killNow();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", cleanup);
  const url = await server.start();
  const port = Number(new URL(url).port);
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  admin.on("error", () => undefined);
  return {
    server: () => server,
    dir,
    url,
    port,
    admin,
    async kill() {
      const pid = server.pid!;
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
      await server.stop(); // its watchdog
    },
    async restart() {
      server = new EmbeddedRedis({ dir, port, appendfsync: "everysec" });
      await server.start();
    },
    async stop() {
      admin.disconnect();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      process.off("exit", cleanup);
    },
  };
}
