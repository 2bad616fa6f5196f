/**
 * Benchmark workflow types, loaded into Fairlane's exec workers with
 * FAIRLANE_WORKFLOW_MODULES. Each wraps real work in the benchmark's own
 * observer (lib/observer.ts):
 *   bench-prior-auth  the product's prior-auth agent (src/dev/examples/priorAuth.ts):
 *                     steps of fan-out tool calls through ctx.tool (gate, deadline,
 *                     backpressure), THROTTLED-aware. payload as prior-auth's.
 *   bench-prior-auth-agent  the same agent built on the Vercel AI SDK (src/dev/examples/priorAuthAgent.ts,
 *                     ctx.agent), its model the simulated downstream's OpenAI-compatible
 *                     endpoint: `npm run bench -- --agent ai-sdk` runs the storm with it.
 *   bench-sleep       holds its slot for payload.durationMs (a loan decision's
 *                     duration, time-scaled), no tool calls.
 *   bench-noop        the throughput benchmark's job: ticks the drain clock
 *                     (lib/drainClock.ts, env BENCH_DRAIN_KEY) and returns null,
 *                     as plain BullMQ's test/bench/plainWorker.ts does.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { priorAuthAgent } from "../../src/dev/examples/priorAuth.ts";
import { priorAuthLlmAgent } from "../../src/dev/examples/priorAuthAgent.ts";
import { defineWorkflow } from "../../src/workflows/registry.ts";
import { drainClock } from "./lib/drainClock.ts";
import { observed } from "./lib/observer.ts";

defineWorkflow(
  "bench-prior-auth",
  // The end record carries the THROTTLED signals the agent itself received.
  (ctx) =>
    observed(
      String(ctx.payload.obs),
      ctx.workflowId,
      ctx.tenant,
      ctx.class,
      () => priorAuthAgent(ctx),
      (r) => `throttled=${r.throttled}`,
    ),
  { dependencies: ["fhir-gateway"] },
);

defineWorkflow(
  "bench-prior-auth-agent",
  (ctx) =>
    observed(
      String(ctx.payload.obs),
      ctx.workflowId,
      ctx.tenant,
      ctx.class,
      () => priorAuthLlmAgent(ctx),
      (r) => `throttled=${Number(r.throttled ?? 0)}`,
    ),
  { dependencies: ["fhir-gateway"] },
);

defineWorkflow("bench-sleep", (ctx) =>
  observed(String(ctx.payload.obs), ctx.workflowId, ctx.tenant, ctx.class, async () => {
    await sleep(Number(ctx.payload.durationMs ?? 0), undefined, { signal: ctx.signal });
    return { ok: true };
  }),
);

const clock = drainClock(process.env.REDIS_URL, process.env.BENCH_DRAIN_KEY);
defineWorkflow("bench-noop", async () => {
  clock.tick();
  return null;
});
