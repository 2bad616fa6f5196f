/**
 * Test workflow type `observed`, loaded into real exec worker processes with
 * FAIRLANE_WORKFLOW_MODULES. Each run writes `start` and `end` events to the
 * observer's own Redis keys (payload.obs), ordered by an atomic sequence —
 * an independent record of what really ran, where and when, that the tests
 * check caps and double runs against (never Fairlane's own counters).
 * `observed-gw` is the same run declaring the dependency `gw`.
 * payload: { obs: string, durationMs?: number, spinMs?: number, step?: boolean } (spinMs: first keep the CPU
 * busy that long, blocking the process's event loop, as a CPU-heavy step would; step: checkpoint a durable step)
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { connect, redisTargetFromEnv } from "../../src/lib/redis.ts";
import { defineWorkflow, type WorkflowContext } from "../../src/workflows/registry.ts";

const RECORD = "local s = redis.call('INCR', KEYS[1]) redis.call('RPUSH', KEYS[2], s .. '|' .. ARGV[1]) return s";
let redis: Redis | undefined;
// The role's own Redis (REDIS_URL, or REDIS_CLUSTER_NODES: a cluster client). The observer's
// keys share one hash tag (`obs:{...}`), so the script below touches one slot.
const client = () => (redis ??= connect(redisTargetFromEnv(process.env)!));

export function recordEvent(obs: string, fields: (string | number)[], redis: Redis = client()): Promise<unknown> {
  return redis.eval(RECORD, 2, `${obs}:seq`, `${obs}:log`, fields.join("|"));
}

const observed = async (ctx: WorkflowContext) => {
  const obs = String(ctx.payload.obs);
  const pool = process.env.FAIRLANE_POOL ?? "default";
  const base = [ctx.workflowId, ctx.tenant, ctx.class, pool, process.pid];
  await recordEvent(obs, ["start", ...base, Date.now()]);
  const spinUntil = Date.now() + Number(ctx.payload.spinMs ?? 0);
  while (Date.now() < spinUntil); // busy on purpose: the event loop waits for it
  try {
    if (ctx.payload.step) await ctx.step("observed", async () => ({ at: Date.now() }));
    await sleep(Number(ctx.payload.durationMs ?? 0), undefined, { signal: ctx.signal }).catch(() => undefined);
  } finally {
    await recordEvent(obs, ["end", ...base, Date.now(), ctx.signal.aborted ? String(ctx.signal.reason) : "done"]);
  }
  return { ok: true };
};
defineWorkflow("observed", observed);
// Asks for a review at once (payload.case names it), then records the decision it resumed with.
defineWorkflow("reviewed", async (ctx: WorkflowContext) => {
  const obs = String(ctx.payload.obs);
  await recordEvent(obs, ["asked", ctx.workflowId, ctx.tenant, Date.now()]);
  const d = await ctx.review({ summary: `case ${String(ctx.payload.case)}`, data: { case: ctx.payload.case } });
  await recordEvent(obs, ["decided", ctx.workflowId, d.decision, Date.now()]);
  return { decision: d.decision, note: d.note };
});
// The same, declaring a dependency (`gw`): the dispatcher parks it while gw is down.
defineWorkflow("observed-gw", observed, { dependencies: ["gw"] });
