import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { EmbeddedRedis } from "../../src/dev/embeddedRedis.ts";

/**
 * One real redis-server per test process (node --test runs each file in its
 * own process), started on first use on a free loopback port with its data in
 * a temp folder, killed when the process exits. Tests isolate themselves with
 * a fresh key prefix (`freshPrefix`), as BullMQ's tests use random queue names.
 */
let started: Promise<string> | undefined;

// A test process ended by a signal (a runner timeout, Ctrl-C) still runs its exit handlers, so the
// redis-server and role processes it started do not outlive it.
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => process.exit(1));

export function testRedisUrl(): Promise<string> {
  if (process.env.FAIRLANE_TEST_REDIS_URL) return Promise.resolve(process.env.FAIRLANE_TEST_REDIS_URL);
  started ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "fl-test-redis-"));
    const redis = new EmbeddedRedis({ dir, port: 0, appendfsync: "everysec" });
    process.on("exit", () => {
      redis.killNow();
      rmSync(dir, { recursive: true, force: true });
    });
    const url = await redis.start();
    redis.unref();
    return url;
  })();
  return started;
}

export const freshPrefix = () => `t${randomBytes(4).toString("hex")}`;
