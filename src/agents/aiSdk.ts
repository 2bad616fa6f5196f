/**
 * The Vercel AI SDK (`ai`) inside a Fairlane workflow: `ctx.agent`.
 *
 *   const tools = ctx.agent.tools({ eligibility: tool({ description, inputSchema, execute }) },
 *                                 { eligibility: { dependency: "fhir-gateway", costUsd: 0.0005 } });
 *   const result = await ctx.agent.generate({ system, prompt, tools, stopWhen: stepCountIs(10) });
 *
 * What changes for the team's agent, and nothing else does:
 * - **Tools.** Each `execute` runs through the whole `ctx.tool` path: allow and
 *   deny lists, budget, per-tenant rate limits, the MCTC gate, deadline-aware
 *   retries, idempotency keys, parking on an unhealthy dependency, spans. A
 *   tool without `execute` runs the Fairlane tool of the same name (httpTool,
 *   grpcTool). The parallel calls of one model step are governed together by
 *   the gate. A throttled or rate-limited call comes back to the model as a
 *   result it can read, `{ status: "THROTTLED", retryAfterMs, parallelism }`,
 *   never as an exception; a parked dependency or the deadline stops the run
 *   (its signal fires and the next model request is aborted).
 * - **Parallelism.** Before each model step the step hook reads
 *   `ctx.parallelism` and tells the model (the system prompt's last line); a
 *   step that emits more tool calls than that runs only the first ones and
 *   answers the rest THROTTLED (`reason: "step_cap"`, `parallelism: 1`), and
 *   the next step is capped at 1, as after a gate THROTTLED. Tools passed to
 *   generate/stream without ctx.agent.tools are governed the same way.
 * - **Deadline.** Every model request is boxed by the workflow's remaining time
 *   minus a reserve (`reserveMs`, default 20% of what is left) and by the
 *   workflow's signal; a stream is cut mid-way (the endpoint sees the
 *   connection close) and the run fails `DEADLINE_EXCEEDED`.
 * - **Model.** The tenant's `modelTier` and `dataResidency` pick the model and
 *   the endpoint (models.ts); a residency region never falls back to another.
 *   Each step's reported token usage is charged to the run's and the tenant's
 *   budget at the tier's price; before a step, a budget that says "degrade"
 *   switches that step to the cheaper tier, and one that says "refuse" stops
 *   the run with `BUDGET_EXCEEDED`.
 * - **Iterations.** The loop stops after the tier's `maxIterations` model steps
 *   (counted per run with hand-written loops' `ctx.iterations`); the result's
 *   `fairlane.stoppedBy` says "max_iterations" when the model still wanted
 *   tools, and a generate with none left throws `MAX_ITERATIONS`.
 * Prompts and tool arguments never reach spans or logs (telemetry records neither,
 * whatever the caller asks), nor a step's stored request body.
 * The per-generation mechanics (model, box, budget, errors) are in session.ts, the governed
 * tools in governedTool.ts, a stream's result in agentStream.ts, the types in agentTypes.ts.
 */
import { generateText, type StepResult, type ToolSet } from "ai";
import { toolDefinition } from "../runtime/tools.ts";
import { streamGeneration } from "./agentStream.ts";
import type { AgentHost, AgentToolOptions, WorkflowAgent } from "./agentTypes.ts";
import { GOVERNED, governed } from "./governedTool.ts";
import { sdkOptions } from "./sdkOptions.ts";
import { openSession } from "./session.ts";
import { stepState } from "./stepState.ts";

export type { AgentCallOptions, AgentHost, AgentOutcome, AgentToolOptions, WorkflowAgent } from "./agentTypes.ts";
export { THROTTLE_PROMPT } from "./stepHooks.ts";

export function createAgent(h: AgentHost): WorkflowAgent {
  /** Tools called outside any generation (a handler calling execute itself) are not capped. */
  const outside = stepState();

  return {
    tools<T extends ToolSet>(set: T, options: { [K in keyof T]?: AgentToolOptions } = {}): T {
      const out: ToolSet = {};
      for (const [name, t] of Object.entries(set)) {
        if (!t.execute && !toolDefinition(name))
          throw new Error(`tool "${name}" has no execute and no Fairlane tool of that name is defined`);
        const o: AgentToolOptions = options[name as keyof T] ?? {};
        out[name] = Object.assign(governed(h, name, t, o, outside), { [GOVERNED]: { tool: t, options: o } });
      }
      return out as T;
    },

    async generate(options) {
      // `timeout`: the time box replaces it (and the SDK's would hold a listener on the run's signal).
      const { reserveMs: _r, fairlanePrompt: _p, timeout: _t, tools, ...rest } = options;
      const s = openSession(h, options, Object.keys(tools ?? {}));
      try {
        const result = await generateText(sdkOptions(h, rest, tools, s) as unknown as Parameters<typeof generateText>[0]);
        s.settle();
        return Object.assign(result, { fairlane: s.outcome(result.steps as StepResult<ToolSet>[]) }) as never;
      } catch (err) {
        throw await s.translate(err);
      }
    },

    stream(options) {
      return streamGeneration(h, options);
    },
  };
}
