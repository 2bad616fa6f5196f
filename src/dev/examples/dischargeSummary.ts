import { defineWorkflow } from "../../workflows/registry.ts";
import { fanOut } from "./priorAuth.ts";

/**
 * `discharge-summary`: gathers notes and labs, asks the model for a summary
 * (streamed under the deadline's time box; a cheaper tier when the budget
 * says degrade), then writes it back.
 */
defineWorkflow(
  "discharge-summary",
  async (ctx) => {
    const latencyMs = ctx.payload.latencyMs;
    await ctx.step("gather", async () => {
      const { results } = await fanOut(ctx, [
        { tool: "clinical-notes", args: { latencyMs } },
        { tool: "lab-results", args: { latencyMs } },
        { tool: "medications", args: { latencyMs } },
      ]);
      if (results.length < 3 || results.some((r) => !r.ok)) throw new Error("could not gather the chart");
      return true;
    });
    const summary = await ctx.model({
      tokens: Number(ctx.payload.tokens ?? 0) || undefined,
      reserveMs: Number(ctx.payload.reserveMs ?? 0) || undefined,
    });
    if (!summary.complete) return { written: false, cut: summary.cut, tokens: summary.tokens, tier: summary.tier };
    await ctx.step("write", async () => {
      const [r] = (await fanOut(ctx, [{ tool: "discharge-write", args: { latencyMs } }])).results;
      if (!r?.ok) throw new Error("write-back failed");
      return true;
    });
    return { written: true, tokens: summary.tokens, tier: summary.tier };
  },
  { dependencies: ["fhir-gateway"] },
);
