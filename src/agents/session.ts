/**
 * One generation of ctx.agent (a generate or stream call): what its steps share.
 *
 * - Model: chosen before each step from the tenant's tier and residency (models.ts), one tier
 *   down when the budget says degrade; never the caller's (prepareStep may not return one).
 * - Time box: each model request gets its own, `remaining − reserve` at its start, cleared when
 *   the request ends; when it fires, the request aborts with a DeadlineExceededError.
 * - Steps: the tool-call cap of the current step (ctx.parallelism at its start; 1 after a step
 *   ran past its cap), the iteration count, the charge for each step's tokens, and the back-off
 *   before the next step when a call came back THROTTLED (a model cannot wait; the loop does).
 * - Stop: a tool outcome that ends the run (deadline, park, abort) or a failed charge aborts the
 *   generation's own signal, so no further model request is made.
 * - Errors: translate() turns what the SDK throws into the runtime's codes.
 *
 * Each has its file: the model chooser (modelChooser.ts), the time box (timeBox.ts), the step hooks
 * with the budget step (stepHooks.ts), the translate step (translateError.ts) and the state the
 * tools share (stepState.ts); this file puts them together.
 */
import type { StepResult, ToolSet } from "ai";
import { MaxIterationsError } from "../runtime/errors.ts";
import type { AgentCallOptions, AgentHost, AgentOutcome } from "./agentTypes.ts";
import { modelChooser } from "./modelChooser.ts";
import { stepHooks, type Spend, type StepOptions } from "./stepHooks.ts";
import { stepState } from "./stepState.ts";
import { timeBox } from "./timeBox.ts";
import { translateError } from "./translateError.ts";

export { stepState, type StepState } from "./stepState.ts";

type UserOptions = AgentCallOptions & StepOptions & { abortSignal?: AbortSignal };

export type Session = ReturnType<typeof openSession>;

export function openSession(h: AgentHost, o: UserOptions, toolNames: string[]) {
  const choose = modelChooser(h);
  if (h.iterations.left === 0) throw new MaxIterationsError(h.iterations.limit);
  const state = stepState();
  state.generation = h.nextGeneration();
  const spend: Spend = { current: choose(false), spentUsd: 0, steps: 0, chargeFailure: undefined };
  const box = timeBox(h, o, state);

  return {
    state,
    model: box.boxed(spend.current),
    abortSignal: AbortSignal.any([h.signal, state.stop.signal, ...(o.abortSignal ? [o.abortSignal] : [])]),
    /** As ctx.model and httpTool send them: who asks (for the endpoint's own fairness and audit) and by when. */
    headers: {
      "X-Tenant-Id": h.tenant,
      ...(h.deadlineAt === null ? {} : { "X-Request-Deadline": new Date(h.deadlineAt).toISOString() }),
    } as Record<string, string>,
    ...stepHooks(h, o, toolNames, state, spend, choose, box.boxed),
    /**
     * After the SDK returned normally: throws what stopped the generation anyway (the SDK ends a loop whose
     * signal fired without throwing, and swallows a failed charge), so the handler does no more work.
     */
    settle(): void {
      if (spend.chargeFailure !== undefined) throw spend.chargeFailure;
      if (state.stop.signal.aborted) throw state.stop.signal.reason;
      if (h.signal.aborted) throw new Error(`the run was stopped (${String(h.signal.reason)})`);
    },
    wasCut: () => box.cuts.size > 0,
    stopped: () => state.stop.signal.aborted || h.signal.aborted,
    outcome(all: StepResult<ToolSet>[]): AgentOutcome {
      const wantedMore = all.at(-1)?.finishReason === "tool-calls";
      return {
        steps: spend.steps,
        iterations: { used: h.iterations.used, limit: h.iterations.limit },
        stoppedBy: wantedMore && h.iterations.left === 0 ? "max_iterations" : "finished",
        tier: spend.current.tier,
        model: spend.current.modelId,
        region: spend.current.endpoint.region,
        spentUsd: spend.spentUsd,
      };
    },
    /** What stopped a generation, in the runtime's codes. */
    translate: (err: unknown): Promise<unknown> => translateError(h, state, box.cuts, spend.current, err),
  };
}
