/**
 * The hooks a generation (session.ts) gives the SDK around its model steps:
 * - stopWhen: the tier's iteration limit, checked live, then the caller's conditions;
 * - prepareStep: the budget's say on the step (refuse stops the run, degrade picks the cheaper tier),
 *   the iteration count, the back-off a THROTTLED call was given, the step's tool-call cap and the
 *   system prompt that states it (THROTTLE_PROMPT), the tools the policy allows;
 * - onStepFinish: the charge for the step's tokens.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  stepCountIs,
  type LanguageModel,
  type ModelMessage,
  type StepResult,
  type StopCondition,
  type SystemModelMessage,
  type ToolSet,
} from "ai";
import { toolAllowed } from "../runtime/budget.ts";
import { BudgetExceededError, MaxIterationsError } from "../runtime/errors.ts";
import type { AgentHost } from "./agentTypes.ts";
import type { Choice } from "./modelChooser.ts";
import { estimateStepUsd, usageCostUsd } from "./models.ts";
import type { StepState } from "./stepState.ts";

/**
 * What the model is told about THROTTLED and parallelism. The adapter adds it to the system prompt
 * (`fairlanePrompt: false` leaves it out, for a team whose prompt already says it).
 */
export const THROTTLE_PROMPT = [
  "Tool calls run under a shared capacity limit.",
  'A tool result of the form {"status":"THROTTLED","retryAfterMs":N,"parallelism":P} or {"status":"RATE_LIMITED",...} means the call did NOT run: it is not an answer and not an error in the data.',
  "Issue that call again in a later step, and in the next step emit at most P tool calls in all (P = 1 means one call at a time).",
  "When calls pass again, you may widen back up to the parallelism stated below.",
  'A result {"status":"ERROR","code":...} is a real failure of that call; do not retry it unchanged more than once.',
].join(" ");

export type SystemPrompt = string | SystemModelMessage | SystemModelMessage[] | undefined;

/** The caller's options the hooks read. */
export interface StepOptions {
  system?: SystemPrompt;
  maxOutputTokens?: number;
  prepareStep?: unknown;
  stopWhen?: unknown;
  onStepFinish?: unknown;
  fairlanePrompt?: false;
}

/** What a generation's steps spent, and the model of the last one (session.ts reports it). */
export interface Spend {
  current: Choice;
  spentUsd: number;
  steps: number;
  chargeFailure: unknown;
}

const asMessages = (p: SystemPrompt): SystemModelMessage[] =>
  p === undefined ? [] : typeof p === "string" ? [{ role: "system", content: p }] : Array.isArray(p) ? p : [p];

export function stepHooks(
  h: AgentHost,
  o: StepOptions,
  toolNames: string[],
  state: StepState,
  spend: Spend,
  choose: (degrade: boolean) => Choice,
  boxed: (c: Choice) => LanguageModel,
) {
  /** The caller's system prompt, then Fairlane's: what THROTTLED means and this step's parallelism. */
  const systemFor = (base: SystemPrompt, cap: number): SystemModelMessage[] => [
    ...asMessages(base),
    {
      role: "system",
      content: [o.fairlanePrompt === false ? "" : THROTTLE_PROMPT, `Tool-call parallelism for this step: ${cap}.`]
        .filter(Boolean)
        .join("\n\n"),
    },
  ];
  // Tools the tenant's policy forbids are not offered to the model at all.
  const allowed = toolNames.filter((n) => toolAllowed(n, h.policy.allowedTools, h.policy.deniedTools));
  const activeTools = allowed.length < toolNames.length ? allowed : undefined;
  const userPrepare = o.prepareStep as ((s: { stepNumber: number; messages: ModelMessage[] }) => unknown) | undefined;
  const userFinish = o.onStepFinish as ((s: StepResult<ToolSet>) => unknown) | undefined;
  const userStop = o.stopWhen as StopCondition<ToolSet> | StopCondition<ToolSet>[] | undefined;

  return {
    // The SDK's default of one step stays; the tier's limit is checked live, so generations sharing it stop in time.
    stopWhen: [
      () => h.iterations.left === 0,
      ...(userStop === undefined ? [stepCountIs(1)] : Array.isArray(userStop) ? userStop : [userStop]),
    ],
    prepareStep: async (s: { stepNumber: number; messages: ModelMessage[] }) => {
      const mine = ((await userPrepare?.(s)) ?? {}) as Record<string, unknown>;
      if (mine.model !== undefined)
        throw new Error("ctx.agent picks the model from the tenant's tier and data residency: prepareStep may not return a model");
      const base = (mine.system ?? o.system) as SystemPrompt;
      const chars = JSON.stringify(s.messages).length + JSON.stringify(base ?? "").length;
      spend.current = await budgetStep(h, choose, chars, o.maxOutputTokens);
      if (!h.iterations.next()) throw new MaxIterationsError(h.iterations.limit);
      await backOff(h, state);
      state.cap = state.narrowNext ? 1 : Math.max(1, h.parallelism());
      state.narrowNext = false;
      state.calls = 0;
      // A prepareStep's own activeTools are kept within what the policy allows.
      const own = mine.activeTools as string[] | undefined;
      return {
        ...mine,
        model: boxed(spend.current),
        system: systemFor(base, state.cap),
        activeTools: own ? own.filter((n) => allowed.includes(n)) : activeTools,
      };
    },
    onStepFinish: async (s: StepResult<ToolSet>) => {
      // The SDK swallows what this callback throws: a failed charge stops the generation instead.
      try {
        spend.steps++;
        const usd = usageCostUsd(spend.current.price, s.usage);
        spend.spentUsd += usd;
        await h.charge(usd);
      } catch (err) {
        spend.chargeFailure ??= err;
        state.stop.abort(err);
      } finally {
        await userFinish?.(s);
      }
    },
  };
}

/** The budget's say on the next step, estimated at the tier's price: refuse stops the run; degrade picks the cheaper tier. */
async function budgetStep(
  h: AgentHost,
  choose: (degrade: boolean) => Choice,
  chars: number,
  maxOutputTokens: number | undefined,
): Promise<Choice> {
  const decision = await h.budget(estimateStepUsd(choose(false).price, chars, maxOutputTokens ?? 1000));
  if (decision === "refuse") throw new BudgetExceededError("the next model step would exceed the workflow's or the tenant's cost budget");
  return choose(decision === "degrade");
}

/**
 * A model cannot wait: the back-off a throttled call was given is waited here, before the model is asked again
 * (within the deadline; the signal ends the wait).
 */
async function backOff(h: AgentHost, state: StepState): Promise<void> {
  const wait = Math.min(state.backoffMs, Math.max(0, h.remainingMs() - 1));
  state.backoffMs = 0;
  if (wait > 0) await sleep(wait, undefined, { signal: AbortSignal.any([h.signal, state.stop.signal]) });
}
