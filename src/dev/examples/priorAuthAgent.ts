import { stepCountIs, tool } from "ai";
import { z } from "zod";
import { defineWorkflow, type WorkflowContext } from "../../workflows/registry.ts";
import { FHIR_RESOURCES } from "./tools.ts";

/**
 * `prior-auth-agent`: seed 000's prior-authorization agent, built on the Vercel
 * AI SDK through `ctx.agent` (src/agents/aiSdk.ts). The model gathers evidence
 * with the FHIR tools (the same Fairlane httpTools `prior-auth` calls), in as
 * many parallel calls per step as it likes; Fairlane's gate, budget, deadline
 * and tier limits govern them, and a THROTTLED comes back to the model as a
 * result it reads. Then it decides; an approved request is submitted.
 *
 * Under `npm start` the model is the simulated downstream's OpenAI-compatible
 * endpoint, whose scripted policy reads `fanout=` and `rounds=` from the prompt;
 * any OpenAI-compatible model works the same (FAIRLANE_LLM_BASE_URL).
 * payload: { fanout?: 6, steps?: 2, latencyMs?: number, submit?: true, request?: string }
 * result:  { decision: "approve" | "deny" | "needs_review", reason?, modelSteps, toolCalls, throttled, model, spentUsd }
 */
const SYSTEM = [
  "You are a prior-authorization agent for a health plan.",
  "Gather the evidence you need with the tools, calling independent tools in parallel, then answer with one line:",
  '"decision: approve", "decision: deny" or "decision: needs_review", followed by a one-sentence reason.',
].join(" ");

const lookup = (resource: string) =>
  tool({
    description: `Reads the patient's ${resource.replace(/-/g, " ")} from the FHIR gateway.`,
    inputSchema: z.object({ patientRef: z.string().describe("the patient's reference in the request") }),
  });

export async function priorAuthLlmAgent(ctx: WorkflowContext): Promise<Record<string, unknown>> {
  const fanout = Math.min(9, Math.max(1, Number(ctx.payload.fanout ?? 6)));
  const rounds = Math.min(10, Math.max(1, Number(ctx.payload.steps ?? 2)));
  const latencyMs = ctx.payload.latencyMs;
  const fixed = (input: unknown) => ({ ...(input as object), ...(latencyMs === undefined ? {} : { latencyMs }) });
  const tools = ctx.agent.tools(
    Object.fromEntries(FHIR_RESOURCES.map((r) => [r, lookup(r)])),
    Object.fromEntries(FHIR_RESOURCES.map((r) => [r, { args: fixed }])),
  );
  let throttled = 0;
  const run = await ctx.step("decide", async () => {
    const result = await ctx.agent.generate({
      system: SYSTEM,
      prompt: `Request ${String(ctx.payload.request ?? ctx.workflowId)}: decide it. Evidence plan: fanout=${fanout} rounds=${rounds}.`,
      tools,
      stopWhen: stepCountIs(50),
      onStepFinish: (s) => {
        throttled += s.toolResults.filter((r) => (r.output as { status?: string } | null)?.status === "THROTTLED").length;
      },
    });
    const toolCalls = result.steps.reduce((n, s) => n + s.toolCalls.length, 0);
    const decision = /decision:\s*(approve|deny|needs_review)/i.exec(result.text)?.[1]?.toLowerCase();
    const f = result.fairlane;
    if (f.stoppedBy === "max_iterations")
      return {
        decision: "needs_review",
        reason: "MAX_ITERATIONS",
        modelSteps: f.steps,
        toolCalls,
        throttled,
        model: f.model,
        spentUsd: f.spentUsd,
      };
    return { decision: decision ?? "needs_review", modelSteps: f.steps, toolCalls, throttled, model: f.model, spentUsd: f.spentUsd };
  });
  if (run.decision === "approve" && ctx.payload.submit !== false) {
    await ctx.step("submit", async () => {
      const r = await ctx.tool("prior-auth-submit", { latencyMs });
      if (!r.ok) throw new Error(`submit failed: ${r.code}`);
      return true;
    });
  }
  return run;
}

defineWorkflow("prior-auth-agent", priorAuthLlmAgent, { dependencies: ["fhir-gateway"] });
