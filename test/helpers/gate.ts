import type { Redis } from "ioredis";
import { createKeys, type Keys } from "../../queues/keys.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { ToolGate } from "../../src/runtime/toolGate.ts";
import { freshPrefix, testRedisUrl } from "./redis.ts";

/** A ToolGate on the test Redis with a fresh prefix (fast polling), and how to close it. */
export async function startTestGate(): Promise<{ redis: Redis; keys: Keys; gate: ToolGate; close(): Promise<void> }> {
  const redis = connect(await testRedisUrl());
  const sub = connect(await testRedisUrl());
  const keys = createKeys(freshPrefix());
  const gate = new ToolGate(redis, sub, keys, systemClock, { leaseMs: 15_000, renewMs: 5_000, pollMs: 50 });
  await gate.start(["default"]);
  return {
    redis,
    keys,
    gate,
    async close() {
      gate.stop();
      await sub.quit();
      await redis.quit();
    },
  };
}
