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
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { AISDKError, APICallError, RetryError, stepCountIs, wrapLanguageModel, type LanguageModel, type ModelMessage, type StepResult, type StopCondition, type SystemModelMessage, type ToolSet } from "ai";
import { modelTimeBox } from "../runtime/model.ts";
import { BudgetExceededError, DeadlineExceededError, MaxIterationsError, ModelUnavailableError } from "../runtime/errors.ts";
import { toolAllowed } from "../runtime/budget.ts";
import { THROTTLE_PROMPT, type AgentCallOptions, type AgentHost, type AgentOutcome } from "./aiSdk.ts";
import { chooseModel, estimateStepUsd, usageCostUsd, type LlmEndpoint } from "./models.ts";

type Choice = Extract<ReturnType<typeof chooseModel>, { ok: true }>;
type SystemPrompt = string | SystemModelMessage | SystemModelMessage[] | undefined;

/** What the tools of one generation share with it (aiSdk.ts reads and writes it). */
export interface StepState {
  /** How many tool calls the current step may run; Infinity outside a generation. */
  cap: number;
  calls: number;
  /** The step ran past its cap: the next one is capped at 1. */
  narrowNext: boolean;
  /** Fires to stop the generation (a tool outcome that ends the run, a failed charge). */
  stop: AbortController;
  /** Occurrences of each (tool, arguments) pair, for idempotency keys a re-run repeats. */
  seen: Map<string, number>;
  /** The longest retryAfterMs a THROTTLED or RATE_LIMITED call of this step was given: waited before the next step. */
  backoffMs: number;
  /** This generation's number in its ctx.step (idempotency keys of two generations in one step differ). */
  generation: number;
}

export function stepState(): StepState {
  return { cap: Infinity, calls: 0, narrowNext: false, stop: new AbortController(), seen: new Map(), backoffMs: 0, generation: -1 };
}

/**
 * One model object per endpoint and model id for the process's life: it holds settings, no connection, and
 * building one builds the provider's response schemas (5% of an agent's CPU when it was made per step).
 */
const models = new Map<string, LanguageModel>();
function modelFor(e: LlmEndpoint, modelId: string): LanguageModel {
  const id = `${e.region}|${e.baseURL}|${modelId}`;
  let m = models.get(id);
  if (!m) {
    const provider = createOpenAICompatible({ name: `fairlane-${e.region}`, baseURL: e.baseURL, apiKey: e.apiKey, includeUsage: true });
    models.set(id, (m = provider.chatModel(modelId)));
  }
  return m;
}

type UserOptions = AgentCallOptions & {
  system?: SystemPrompt;
  maxOutputTokens?: number;
  prepareStep?: unknown;
  stopWhen?: unknown;
  onStepFinish?: unknown;
  abortSignal?: AbortSignal;
};

export function openSession(h: AgentHost, o: UserOptions, toolNames: string[]) {
  if (!h.llm) throw new ModelUnavailableError("MODEL_UNAVAILABLE", "this process has no model endpoint configured");
  const llm = h.llm;
  if (h.iterations.left === 0) throw new MaxIterationsError(h.iterations.limit);
  const choose = (degrade: boolean): Choice => {
    const c = chooseModel(llm, { tier: h.policy.modelTier, residency: h.policy.dataResidency, degrade });
    if (!c.ok) throw new ModelUnavailableError(c.code, c.message);
    return c;
  };
  const state = stepState();
  state.generation = h.nextGeneration();
  let current = choose(false);
  let spentUsd = 0;
  let steps = 0;
  let chargeFailure: unknown;
  /** The box errors of this generation's requests that fired (a stream cancelled early may fire later: harmless). */
  const cuts = new Set<unknown>();
  const timers = new WeakMap<object, NodeJS.Timeout>();

  /** The chosen model, boxed; one wrapper per model for the generation. */
  const wrapped = new Map<string, LanguageModel>();
  function boxed(c: Choice): LanguageModel {
    let m = wrapped.get(c.modelId);
    if (!m) wrapped.set(c.modelId, (m = box(c)));
    return m;
  }
  function box(c: Choice): LanguageModel {
    return wrapLanguageModel({
      model: modelFor(c.endpoint, c.modelId) as Parameters<typeof wrapLanguageModel>[0]["model"],
      middleware: {
        specificationVersion: "v3",
        transformParams: async ({ params }) => {
          const left = h.remainingMs();
          if (left === Infinity) return params;
          const box = new AbortController();
          const cut = new DeadlineExceededError("the model's time box (remaining time minus the reserve) ran out: the generation was cut");
          const timer = setTimeout(() => {
            cuts.add(cut);
            box.abort(cut);
            // The generation is over: its tool calls (a stream runs them while it reads) stop with it.
            state.stop.abort(cut);
          }, modelTimeBox(left, o.reserveMs));
          timer.unref();
          const next = { ...params, abortSignal: params.abortSignal ? AbortSignal.any([params.abortSignal, box.signal]) : box.signal };
          timers.set(next, timer);
          return next;
        },
        wrapGenerate: async ({ doGenerate, params }) => {
          try {
            return await doGenerate();
          } finally {
            clearTimeout(timers.get(params));
          }
        },
        wrapStream: async ({ doStream, params }) => {
          const timer = timers.get(params);
          try {
            const r = await doStream();
            return { ...r, stream: r.stream.pipeThrough(new TransformStream({ flush: () => clearTimeout(timer) })) };
          } catch (err) {
            clearTimeout(timer);
            throw err;
          }
        },
      },
    });
  }

  const asMessages = (p: SystemPrompt): SystemModelMessage[] =>
    p === undefined ? [] : typeof p === "string" ? [{ role: "system", content: p }] : Array.isArray(p) ? p : [p];
  /** The caller's system prompt, then Fairlane's: what THROTTLED means and this step's parallelism. */
  const systemFor = (base: SystemPrompt, cap: number): SystemModelMessage[] => [
    ...asMessages(base),
    { role: "system", content: [o.fairlanePrompt === false ? "" : THROTTLE_PROMPT, `Tool-call parallelism for this step: ${cap}.`].filter(Boolean).join("\n\n") },
  ];
  // Tools the tenant's policy forbids are not offered to the model at all.
  const allowed = toolNames.filter((n) => toolAllowed(n, h.policy.allowedTools, h.policy.deniedTools));
  const activeTools = allowed.length < toolNames.length ? allowed : undefined;
  const userPrepare = o.prepareStep as ((s: { stepNumber: number; messages: ModelMessage[] }) => unknown) | undefined;
  const userFinish = o.onStepFinish as ((s: StepResult<ToolSet>) => unknown) | undefined;
  const userStop = o.stopWhen as StopCondition<ToolSet> | StopCondition<ToolSet>[] | undefined;

  return {
    state,
    model: boxed(current),
    abortSignal: AbortSignal.any([h.signal, state.stop.signal, ...(o.abortSignal ? [o.abortSignal] : [])]),
    /** As ctx.model and httpTool send them: who asks (for the endpoint's own fairness and audit) and by when. */
    headers: { "X-Tenant-Id": h.tenant, ...(h.deadlineAt === null ? {} : { "X-Request-Deadline": new Date(h.deadlineAt).toISOString() }) } as Record<string, string>,
    // The SDK's default of one step stays; the tier's limit is checked live, so generations sharing it stop in time.
    stopWhen: [() => h.iterations.left === 0, ...(userStop === undefined ? [stepCountIs(1)] : Array.isArray(userStop) ? userStop : [userStop])],
    prepareStep: async (s: { stepNumber: number; messages: ModelMessage[] }) => {
      const mine = ((await userPrepare?.(s)) ?? {}) as Record<string, unknown>;
      if (mine.model !== undefined) throw new Error("ctx.agent picks the model from the tenant's tier and data residency: prepareStep may not return a model");
      const base = (mine.system ?? o.system) as SystemPrompt;
      const chars = JSON.stringify(s.messages).length + JSON.stringify(base ?? "").length;
      const decision = await h.budget(estimateStepUsd(choose(false).price, chars, o.maxOutputTokens ?? 1000));
      if (decision === "refuse") throw new BudgetExceededError("the next model step would exceed the workflow's or the tenant's cost budget");
      current = choose(decision === "degrade");
      if (!h.iterations.next()) throw new MaxIterationsError(h.iterations.limit);
      // A model cannot wait: the back-off a throttled call was given is waited here, before the model is asked again
      // (within the deadline; the signal ends the wait).
      const wait = Math.min(state.backoffMs, Math.max(0, h.remainingMs() - 1));
      state.backoffMs = 0;
      if (wait > 0) await sleep(wait, undefined, { signal: AbortSignal.any([h.signal, state.stop.signal]) });
      state.cap = state.narrowNext ? 1 : Math.max(1, h.parallelism());
      state.narrowNext = false;
      state.calls = 0;
      // A prepareStep's own activeTools are kept within what the policy allows.
      const own = mine.activeTools as string[] | undefined;
      return { ...mine, model: boxed(current), system: systemFor(base, state.cap), activeTools: own ? own.filter((n) => allowed.includes(n)) : activeTools };
    },
    onStepFinish: async (s: StepResult<ToolSet>) => {
      // The SDK swallows what this callback throws: a failed charge stops the generation instead.
      try {
        steps++;
        const usd = usageCostUsd(current.price, s.usage);
        spentUsd += usd;
        await h.charge(usd);
      } catch (err) {
        chargeFailure ??= err;
        state.stop.abort(err);
      } finally {
        await userFinish?.(s);
      }
    },
    /**
     * After the SDK returned normally: throws what stopped the generation anyway (the SDK ends a loop whose
     * signal fired without throwing, and swallows a failed charge), so the handler does no more work.
     */
    settle(): void {
      if (chargeFailure !== undefined) throw chargeFailure;
      if (state.stop.signal.aborted) throw state.stop.signal.reason;
      if (h.signal.aborted) throw new Error(`the run was stopped (${String(h.signal.reason)})`);
    },
    wasCut: () => cuts.size > 0,
    stopped: () => state.stop.signal.aborted || h.signal.aborted,
    outcome(all: StepResult<ToolSet>[]): AgentOutcome {
      const wantedMore = all.at(-1)?.finishReason === "tool-calls";
      return {
        steps,
        iterations: { used: h.iterations.used, limit: h.iterations.limit },
        stoppedBy: wantedMore && h.iterations.left === 0 ? "max_iterations" : "finished",
        tier: current.tier,
        model: current.modelId,
        region: current.endpoint.region,
        spentUsd,
      };
    },
    /** What stopped a generation, in the runtime's codes. */
    async translate(err: unknown): Promise<unknown> {
      // The runner reads why from the run's own signal; a handler still gets an Error to catch.
      if (h.signal.aborted) return err ?? new Error(`the run was stopped (${String(h.signal.reason)})`);
      if (state.stop.signal.aborted) return state.stop.signal.reason;
      const cut = [...cuts].find((c) => causedBy(err, c));
      if (cut) return cut;
      if (cuts.size && (err === undefined || isAbort(err))) return [...cuts][0];
      const code = (err as { code?: string }).code;
      if (code === "BUDGET_EXCEEDED" || code === "MAX_ITERATIONS" || code === "MODEL_UNAVAILABLE" || code === "RESIDENCY_UNAVAILABLE") return err;
      const status = statusOf(err);
      if (isProviderFailure(err) && (status === undefined || status >= 500 || status === 429)) {
        const region = current.endpoint.region;
        const dependency = `llm-${region}`;
        if (!(await h.dependencyHealthy(dependency))) {
          h.park(dependency, `the ${region} model endpoint is not healthy`);
          return err;
        }
        // No cause: a provider error holds the request body (the prompt), which must not travel further.
        const residency = h.policy.dataResidency ? "; data residency forbids any other region" : "";
        return new ModelUnavailableError("MODEL_UNAVAILABLE", `the ${region} model endpoint did not answer${status ? ` (HTTP ${status})` : ""}${residency}`);
      }
      // Any other provider or SDK error: its message may quote the provider's answer or the prompt, so the
      // workflow's record gets a fixed one.
      if (isProviderFailure(err) || AISDKError.isInstance(err))
        return new ModelUnavailableError("MODEL_ERROR", `the model request failed${status ? ` (HTTP ${status})` : ""}: ${(err as Error).name}`);
      return err;
    },
  };
}

/** Whether `target` is `err` or among its causes (an SDK error wraps the abort reason of a cut stream). */
function causedBy(err: unknown, target: unknown): boolean {
  let e = err as { cause?: unknown; lastError?: unknown } | undefined;
  for (let depth = 0; e && depth < 6; depth++) {
    if (e === target) return true;
    e = (e.cause ?? e.lastError) as typeof e;
  }
  return false;
}

function isAbort(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === "AbortError" || name === "TimeoutError" || name === "DeadlineExceededError";
}

/** The provider's request failed (an HTTP error or no answer), as opposed to a bug or a bad option. */
function isProviderFailure(err: unknown): boolean {
  return APICallError.isInstance(err) || RetryError.isInstance(err);
}

/** The HTTP status of a provider error (APICallError, or the last one a RetryError wraps); undefined for a network failure. */
function statusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: number; lastError?: { statusCode?: number } };
  return e?.statusCode ?? e?.lastError?.statusCode;
}
