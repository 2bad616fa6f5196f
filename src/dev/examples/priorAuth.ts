import { setTimeout as sleep } from "node:timers/promises";
import { DeadlineExceededError } from "../../runtime/errors.ts";
import type { ToolResult } from "../../runtime/tools.ts";
import { defineWorkflow, type WorkflowContext } from "../../workflows/registry.ts";
import { FHIR_RESOURCES } from "./tools.ts";

/**
 * `prior-auth`: a backpressure-aware prior-authorization agent. Each
 * reasoning step (a durable step) fans out 4–9 tool calls, at most
 * ctx.parallelism at a time: after a THROTTLED the agent goes sequential and
 * retries the throttled calls after retryAfterMs, widening again as calls pass.
 * With `review: true` a person decides before it submits (ctx.review): the workflow is suspended
 * until a reviewer of its tenant's pool approves (it submits) or rejects (it stops, submitting nothing).
 * payload: { steps?: 3, fanout?: 6, latencyMs?: number, submit?: true, review?: false }
 */
export async function fanOut(
  ctx: WorkflowContext,
  calls: { tool: string; args?: unknown }[],
): Promise<{ results: ToolResult[]; throttled: number }> {
  const results: ToolResult[] = [];
  let pending = calls;
  let throttled = 0;
  while (pending.length && !ctx.signal.aborted) {
    const batch = pending.slice(0, ctx.parallelism);
    pending = pending.slice(batch.length);
    const out = await ctx.all(batch);
    const retry: typeof calls = [];
    out.forEach((r, i) => {
      if (!r.ok && (r.code === "THROTTLED" || (r.code === "ABORTED" && !ctx.signal.aborted))) retry.push(batch[i]!);
      else results.push(r);
    });
    const t = out.find((r) => !r.ok && r.code === "THROTTLED");
    if (t && !t.ok && t.code === "THROTTLED") {
      throttled++;
      if (ctx.remainingMs() <= t.retryAfterMs) break;
      await sleep(t.retryAfterMs, undefined, { signal: ctx.signal }).catch(() => undefined);
    }
    pending = [...retry, ...pending];
  }
  return { results, throttled };
}

/**
 * The agent itself, exported so a benchmark can wrap it with its own observer. Each reasoning step is one
 * of the tier's `maxIterations`: a tenant whose tier allows fewer steps than asked stops there, submits
 * nothing and answers `stoppedBy: "max_iterations"` (a human reviews what it gathered).
 */
export async function priorAuthAgent(
  ctx: WorkflowContext,
): Promise<{ steps: number; calls: number; throttled: number; stoppedBy: "finished" | "max_iterations" | "rejected" }> {
  const steps = Math.min(10, Math.max(1, Number(ctx.payload.steps ?? 3)));
  const width = Math.min(9, Math.max(4, Number(ctx.payload.fanout ?? 6)));
  const latencyMs = ctx.payload.latencyMs;
  let calls = 0;
  let throttled = 0;
  for (let s = 0; s < steps && !ctx.signal.aborted; s++) {
    if (!ctx.iterations.next()) return { steps: s, calls, throttled, stoppedBy: "max_iterations" };
    const summary = await ctx.step(`reason-${s}`, async () => {
      const batch = Array.from({ length: width }, (_, i) => ({
        tool: FHIR_RESOURCES[(s + i) % FHIR_RESOURCES.length]!,
        args: { step: s, latencyMs },
      }));
      const { results, throttled: t } = await fanOut(ctx, batch);
      const failed = results.filter((r) => !r.ok).map((r) => (r.ok ? "" : r.code));
      if (failed.includes("DEADLINE_EXCEEDED") || results.length < batch.length)
        throw new DeadlineExceededError(`step ${s}: the deadline ran out during the fan-out`);
      if (failed.length) throw new Error(`step ${s}: ${failed.length} tool calls failed (${[...new Set(failed)].join(", ")})`);
      return { calls: results.length, throttled: t };
    });
    calls += summary.calls;
    throttled += summary.throttled;
  }
  if (ctx.payload.review === true) {
    const r = await ctx.review({
      summary: `prior authorization ready: ${calls} records gathered in ${steps} steps`,
      data: { steps, calls },
    });
    if (r.decision === "reject") return { steps, calls, throttled, stoppedBy: "rejected" };
  }
  if (ctx.payload.submit !== false && !ctx.signal.aborted) {
    await ctx.step("submit", async () => {
      const [r] = (await fanOut(ctx, [{ tool: "prior-auth-submit", args: { latencyMs } }])).results;
      if (!r?.ok) throw new Error(`submit failed: ${r?.ok === false ? r.code : "deadline"}`);
      return true;
    });
  }
  return { steps, calls, throttled, stoppedBy: "finished" };
}

defineWorkflow("prior-auth", priorAuthAgent, { dependencies: ["fhir-gateway"] });
