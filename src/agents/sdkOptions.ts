/** What ctx.agent's generate and stream (aiSdk.ts, agentStream.ts) pass the AI SDK for one generation. */
import type { ToolSet } from "ai";
import type { AgentHost } from "./agentTypes.ts";
import { bind } from "./governedTool.ts";
import type { Session } from "./session.ts";

export type CallerOptions = {
  headers?: Record<string, string | undefined>;
  experimental_include?: object;
  experimental_telemetry?: object;
};

/** The caller's options, with the generation's model, tools, signal and hooks. */
export function sdkOptions(h: AgentHost, rest: CallerOptions, tools: ToolSet | undefined, s: Session): Record<string, unknown> {
  return {
    ...rest,
    tools: bind(h, tools, s.state),
    model: s.model,
    abortSignal: s.abortSignal,
    headers: { ...s.headers, ...rest.headers },
    stopWhen: s.stopWhen,
    prepareStep: s.prepareStep,
    onStepFinish: s.onStepFinish,
    // Never inputs or outputs in spans, whatever the caller asks: they hold the patient's data.
    experimental_telemetry: { ...rest.experimental_telemetry, isEnabled: true, recordInputs: false, recordOutputs: false },
    // A step's request body is the whole prompt: not kept on the result, where a ctx.step could store it.
    experimental_include: { requestBody: false, ...rest.experimental_include },
  };
}
