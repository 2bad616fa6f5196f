import type { Redis } from "ioredis";
import { createKeys, type CellKeys, type Keys } from "../../queues/keys.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { TenantBudget } from "../../src/runtime/budget.ts";
import { TenantRateLimits } from "../../src/runtime/rateLimit.ts";
import { ToolGate } from "../../src/runtime/toolGate.ts";
import type { RuntimeDeps } from "../../src/runtime/workflowContext.ts";
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

/** What an in-process WorkflowContext needs on a test gate's Redis, in cell "default" (no model endpoint). */
export function contextDeps(redis: Redis, gate: ToolGate, keys: Keys): RuntimeDeps {
  const cell = keys.cell("default");
  return {
    redis,
    gate,
    clock: systemClock,
    rateLimits: new TenantRateLimits(redis, cell.rateLimitPrefix),
    budget: new TenantBudget(redis, cell.budgetPrefix, systemClock),
    modelUrl: "http://127.0.0.1:9/none",
  };
}

/**
 * The gate scripts' view for script tests: a Redis connection, a fresh cell, and what the scripts
 * published on the cell's gate channel (its own subscriber connection).
 */
export interface GateChannel {
  redis: Redis;
  cell: CellKeys;
  /** What was published on the gate channel since the last call (a sentinel marks the end: one connection delivers in order). */
  published(): Promise<string[]>;
  close(): Promise<void>;
}

export async function openGateChannel(): Promise<GateChannel> {
  const redis = connect(await testRedisUrl());
  const sub = connect(await testRedisUrl());
  const cell = createKeys(freshPrefix()).cell("default");
  let messages: string[] = [];
  sub.on("message", (channel: string, m: string) => {
    if (channel === cell.gateChannel) messages.push(m);
  });
  await sub.subscribe(cell.gateChannel);
  return {
    redis,
    cell,
    async published() {
      const end = `end-${Math.random()}`;
      await redis.publish(cell.gateChannel, end);
      while (!messages.includes(end)) await new Promise((r) => setImmediate(r));
      const out = messages.slice(0, messages.indexOf(end));
      messages = [];
      return out;
    },
    async close() {
      await sub.quit();
      await redis.quit();
    },
  };
}
