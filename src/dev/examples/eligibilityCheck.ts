import { defineWorkflow } from "../../workflows/registry.ts";
import { fanOut } from "./priorAuth.ts";

/** `eligibility-check`: a quick lookup (Class A/B work): coverage and eligibility in parallel. */
defineWorkflow(
  "eligibility-check",
  async (ctx) => {
    const latencyMs = ctx.payload.latencyMs;
    const { results } = await fanOut(ctx, [
      { tool: "eligibility", args: { latencyMs } },
      { tool: "coverage", args: { latencyMs } },
    ]);
    const failed = results.filter((r) => !r.ok);
    if (failed.length) throw new Error(`eligibility check failed: ${failed.map((r) => (r.ok ? "" : r.code)).join(", ")}`);
    return { eligible: true };
  },
  { dependencies: ["fhir-gateway"] },
);
