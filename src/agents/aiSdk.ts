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
 *   answers the rest THROTTLED (`reason: "step_cap"`, `retryAfterMs: 0`),
 *   which narrows the parallelism to 1 as a gate THROTTLED does.
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
 * Prompts and tool arguments never reach spans or logs (telemetry records neither).
 */
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, RetryError, generateText, stepCountIs, streamText, wrapLanguageModel, type LanguageModel, type ModelMessage, type StepResult, type StopCondition, type ToolSet } from "ai";
import { modelTimeBox } from "../runtime/model.ts";
import { BudgetExceededError, DeadlineExceededError, MaxIterationsError, ModelUnavailableError } from "../runtime/errors.ts";
import { toolDefinition, type ToolDefinition, type ToolResult } from "../runtime/tools.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { IterationBudget } from "./iterations.ts";
import { chooseModel, estimateStepUsd, usageCostUsd, type LlmEndpoint, type LlmSettings, type ModelChoice } from "./models.ts";

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

/** Per-tool settings a plain AI SDK tool does not carry. */
export interface AgentToolOptions {
  /** The downstream it calls: rate limits, health and parking apply to it. */
  dependency?: string;
  /** Estimated USD per call, checked against the budget before the call and charged after it. */
  costUsd?: number;
  timeoutMs?: number;
  /** Which errors a deadline-aware retry may help with (default: `transient: true` and timeouts). */
  isTransient?: (err: unknown) => boolean;
  /** What the tool receives, from the model's input (default: the input as is), e.g. to add fixed settings. */
  args?: (input: unknown) => unknown;
}

/** How the run ended, next to the AI SDK's own result. */
export interface AgentOutcome {
  /** Model steps this generation made, and the run's total against its limit. */
  steps: number;
  iterations: { used: number; limit: number };
  /** "max_iterations": the model still asked for tools when the tier's limit stopped it. */
  stoppedBy: "finished" | "max_iterations";
  /** The last step's tier and model (a degraded step shows the cheaper one). */
  tier: string;
  model: string;
  region: string;
  /** USD charged for this generation's tokens. */
  spentUsd: number;
}

/** What the adapter needs from the run (src/runtime/context.ts builds it). */
export interface AgentHost {
  tenant: string;
  cellName: string;
  deadlineAt: number | null;
  policy: RuntimePolicy;
  signal: AbortSignal;
  remainingMs(): number;
  parallelism(): number;
  /** A step ran past its cap: counts as a THROTTLED signal and narrows ctx.parallelism to 1. */
  throttled(): void;
  iterations: IterationBudget;
  callTool(name: string, args: unknown, opts: { signal?: AbortSignal; def?: ToolDefinition }): Promise<ToolResult>;
  budget(estimateUsd: number): Promise<"ok" | "degrade" | "refuse">;
  charge(usd: number): Promise<void>;
  /** False when a watched dependency is down (a missing probe counts as healthy). */
  dependencyHealthy(dependency: string): Promise<boolean>;
  park(dependency: string, reason: string): void;
  llm: LlmSettings | undefined;
}

type GenerateOptions<T extends ToolSet> = Omit<Parameters<typeof generateText<T>>[0], "model" | "abortSignal"> & AgentCallOptions;
type StreamOptions<T extends ToolSet> = Omit<Parameters<typeof streamText<T>>[0], "model" | "abortSignal" | "onError"> & AgentCallOptions;
interface AgentCallOptions {
  /** Kept back from each model request's time box for the tool calls that follow (default 20% of what is left). */
  reserveMs?: number;
  /** Leave THROTTLE_PROMPT out of the system prompt. */
  fairlanePrompt?: false;
}

export interface WorkflowAgent {
  tools<T extends ToolSet>(set: T, options?: { [K in keyof T]?: AgentToolOptions }): T;
  generate<T extends ToolSet>(options: GenerateOptions<T>): Promise<Awaited<ReturnType<typeof generateText<T>>> & { fairlane: AgentOutcome }>;
  /**
   * As streamText's result; reading `textStream` throws what stopped the run (DEADLINE_EXCEEDED when the time
   * box cut it), and `await result.fairlane` gives the outcome or throws the same.
   */
  stream<T extends ToolSet>(options: StreamOptions<T>): ReturnType<typeof streamText<T>> & { fairlane: Promise<AgentOutcome> };
}

/** One provider per endpoint for the process's life (it holds no connection, only settings). */
const providers = new Map<string, ReturnType<typeof createOpenAICompatible>>();
function providerFor(e: LlmEndpoint): ReturnType<typeof createOpenAICompatible> {
  const id = `${e.region}|${e.baseURL}`;
  let p = providers.get(id);
  if (!p) providers.set(id, (p = createOpenAICompatible({ name: `fairlane-${e.region}`, baseURL: e.baseURL, apiKey: e.apiKey, includeUsage: true })));
  return p;
}

const THROTTLED_STATUSES = new Set(["THROTTLED", "RATE_LIMITED"]);
/** Outcomes that stop the run rather than inform the model: the run's signal has fired or is about to. */
const STOPS_RUN = new Set(["PARKED", "ABORTED", "DEADLINE_EXCEEDED"]);

export function createAgent(h: AgentHost): WorkflowAgent {
  /** The current model step's cap and count (prepareStep sets it; calls outside a generation are uncapped). */
  let step = { cap: Infinity, calls: 0 };

  function tools<T extends ToolSet>(set: T, options: { [K in keyof T]?: AgentToolOptions } = {}): T {
    const out: ToolSet = {};
    for (const [name, t] of Object.entries(set)) {
      const o: AgentToolOptions = options[name as keyof T] ?? {};
      const own = t.execute;
      if (!own && !toolDefinition(name)) throw new Error(`tool "${name}" has no execute and no Fairlane tool of that name is defined`);
      out[name] = {
        ...t,
        execute: async (input: unknown, opts: { toolCallId: string; messages: ModelMessage[]; abortSignal?: AbortSignal }) => {
          const mine = step;
          if (++mine.calls > mine.cap) {
            // More calls than the model was told it may run: a throttle like the gate's, so the next step narrows.
            h.throttled();
            return { status: "THROTTLED", reason: "step_cap", retryAfterMs: 0, parallelism: h.parallelism(), message: `at most ${mine.cap} tool calls ran in this step; issue this one again` };
          }
          const def: ToolDefinition | undefined = own && {
            name,
            dependency: o.dependency,
            costUsd: o.costUsd,
            timeoutMs: o.timeoutMs,
            isTransient: o.isTransient,
            // The call's own signal (deadline, cancel, attempt timeout) replaces the SDK's.
            run: (args, c) => own(args, { ...opts, abortSignal: c.signal }) as Promise<unknown>,
          };
          const res = await h.callTool(name, o.args ? o.args(input) : input, { signal: opts.abortSignal, def });
          if (res.ok) return res.value;
          if (THROTTLED_STATUSES.has(res.code)) {
            const retryAfterMs = "retryAfterMs" in res ? res.retryAfterMs : 0;
            return { status: res.code, retryAfterMs, parallelism: h.parallelism(), message: res.message };
          }
          // The run's signal fires (park, deadline, cancel): the SDK records the error and the next request aborts.
          if (STOPS_RUN.has(res.code)) throw Object.assign(new Error(res.message), { code: res.code });
          return { status: "ERROR", code: res.code, message: res.message };
        },
      } as ToolSet[string];
    }
    return out as T;
  }

  /** Everything one generation shares: its model choice per step, time boxes, charges and outcome. */
  function session(o: AgentCallOptions & { system?: unknown; maxOutputTokens?: number; prepareStep?: unknown; stopWhen?: unknown; onStepFinish?: unknown }) {
    if (!h.llm) throw new ModelUnavailableError("MODEL_UNAVAILABLE", "this process has no model endpoint configured");
    const llm = h.llm;
    if (h.iterations.left === 0) throw new MaxIterationsError(h.iterations.limit);
    const first = choose(false);
    let current = first;
    /** The current model request's time box: fires with DeadlineExceededError, so the SDK and a stream's reader throw that. */
    let box: { signal: AbortSignal; timer: NodeJS.Timeout } | undefined;
    const closeBox = () => box && clearTimeout(box.timer);
    let spentUsd = 0;
    let steps = 0;

    function choose(degrade: boolean): Extract<ModelChoice, { ok: true }> {
      const c = chooseModel(llm, { tier: h.policy.modelTier, residency: h.policy.dataResidency, degrade });
      if (!c.ok) throw new ModelUnavailableError(c.code, c.message);
      return c;
    }
    /** The chosen model, each request boxed by the deadline: remaining − reserve, and the run's signal. */
    function boxed(c: Extract<ModelChoice, { ok: true }>): LanguageModel {
      return wrapLanguageModel({
        model: providerFor(c.endpoint).chatModel(c.modelId),
        middleware: {
          specificationVersion: "v3",
          transformParams: async ({ params }) => {
            const left = h.remainingMs();
            const signals = [h.signal, ...(params.abortSignal ? [params.abortSignal] : [])];
            if (left !== Infinity) {
              closeBox();
              const c = new AbortController();
              const cut = new DeadlineExceededError("the model's time box (remaining time minus the reserve) ran out: the generation was cut");
              box = { signal: c.signal, timer: setTimeout(() => c.abort(cut), modelTimeBox(left, o.reserveMs)) };
              box.timer.unref();
              signals.push(c.signal);
            }
            return { ...params, abortSignal: AbortSignal.any(signals) };
          },
        },
      });
    }
    const system = (cap: number) =>
      [typeof o.system === "string" ? o.system : "", o.fairlanePrompt === false ? "" : THROTTLE_PROMPT, `Tool-call parallelism for this step: ${cap}.`]
        .filter(Boolean)
        .join("\n\n");
    const userPrepare = o.prepareStep as ((s: { stepNumber: number; messages: ModelMessage[] }) => unknown) | undefined;
    const userFinish = o.onStepFinish as ((s: StepResult<ToolSet>) => unknown) | undefined;
    const userStop = o.stopWhen as StopCondition<ToolSet> | StopCondition<ToolSet>[] | undefined;

    return {
      model: boxed(first),
      /** As ctx.model and httpTool send them: who asks (for the endpoint's own fairness and audit) and by when. */
      headers: { "X-Tenant-Id": h.tenant, ...(h.deadlineAt === null ? {} : { "X-Request-Deadline": new Date(h.deadlineAt).toISOString() }) } as Record<string, string>,
      stopWhen: [stepCountIs(h.iterations.left), ...(userStop === undefined ? [] : Array.isArray(userStop) ? userStop : [userStop])],
      prepareStep: async (s: { stepNumber: number; messages: ModelMessage[] }) => {
        const mine = ((await userPrepare?.(s)) ?? {}) as Record<string, unknown>;
        if (!h.iterations.next()) throw new MaxIterationsError(h.iterations.limit);
        const chars = JSON.stringify(s.messages).length;
        const decision = await h.budget(estimateStepUsd(choose(false).price, chars, o.maxOutputTokens ?? 1000));
        if (decision === "refuse") throw new BudgetExceededError("the next model step would exceed the workflow's or the tenant's cost budget");
        current = choose(decision === "degrade");
        step = { cap: Math.max(1, h.parallelism()), calls: 0 };
        return { ...mine, model: mine.model ?? boxed(current), system: mine.system ?? (o.system === undefined || typeof o.system === "string" ? system(step.cap) : undefined) };
      },
      onStepFinish: async (s: StepResult<ToolSet>) => {
        steps++;
        const usd = usageCostUsd(current.price, s.usage);
        spentUsd += usd;
        await h.charge(usd);
        await userFinish?.(s);
      },
      outcome(all: StepResult<ToolSet>[]): AgentOutcome {
        const last = all.at(-1);
        const wantedMore = last?.finishReason === "tool-calls";
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
        closeBox();
        step = { cap: Infinity, calls: 0 };
        if (h.signal.aborted) return err; // the runner reads why from the run's own signal
        if (box?.signal.aborted) return box.signal.reason;
        const code = (err as { code?: string }).code;
        if (code === "BUDGET_EXCEEDED" || code === "MAX_ITERATIONS" || code === "MODEL_UNAVAILABLE" || code === "RESIDENCY_UNAVAILABLE") return err;
        const status = statusOf(err);
        if (isProviderFailure(err) && (status === undefined || status >= 500 || status === 429)) {
          const region = current.endpoint.region;
          const dependency = `llm-${region}`;
          const residency = h.policy.dataResidency ? "; data residency forbids any other region" : "";
          if (!(await h.dependencyHealthy(dependency))) {
            h.park(dependency, `the ${region} model endpoint is not healthy`);
            return err;
          }
          return new ModelUnavailableError("MODEL_UNAVAILABLE", `the ${region} model endpoint did not answer${status ? ` (HTTP ${status})` : ""}${residency}`, { cause: err });
        }
        return err;
      },
      done() {
        closeBox();
        step = { cap: Infinity, calls: 0 };
      },
    };
  }

  return {
    tools,
    async generate(options) {
      const s = session(options);
      const { reserveMs: _r, fairlanePrompt: _p, ...rest } = options;
      try {
        const result = await generateText({
          ...rest,
          model: s.model,
          headers: { ...s.headers, ...options.headers },
          abortSignal: h.signal,
          stopWhen: s.stopWhen,
          prepareStep: s.prepareStep,
          onStepFinish: s.onStepFinish,
          experimental_telemetry: { isEnabled: true, recordInputs: false, recordOutputs: false, ...options.experimental_telemetry },
        } as Parameters<typeof generateText>[0]);
        return Object.assign(result, { fairlane: s.outcome(result.steps as StepResult<ToolSet>[]) }) as never;
      } catch (err) {
        throw await s.translate(err);
      } finally {
        s.done();
      }
    },
    stream(options) {
      const s = session(options);
      const { reserveMs: _r, fairlanePrompt: _p, ...rest } = options;
      let failure: unknown;
      const result = streamText({
        ...rest,
        model: s.model,
        headers: { ...s.headers, ...options.headers },
        abortSignal: h.signal,
        stopWhen: s.stopWhen,
        prepareStep: s.prepareStep,
        onStepFinish: s.onStepFinish,
        onError: ({ error }: { error: unknown }) => {
          failure ??= error;
        },
        experimental_telemetry: { isEnabled: true, recordInputs: false, recordOutputs: false, ...options.experimental_telemetry },
      } as Parameters<typeof streamText>[0]);
      const fairlane = Promise.resolve(result.steps).then(
        async (steps) => {
          s.done();
          if (failure !== undefined || h.signal.aborted) throw await s.translate(failure ?? h.signal.reason);
          return s.outcome(steps as StepResult<ToolSet>[]);
        },
        async (err: unknown) => {
          s.done();
          throw await s.translate(failure ?? err);
        },
      );
      fairlane.catch(() => undefined); // read by the caller; never an unhandled rejection
      // Reading the text throws what stopped the run (DeadlineExceededError when the box cut it), not the SDK's wrapper.
      const raw = result.textStream;
      // ReadableStream.from is in Node 20.6+, not yet in the DOM typings TypeScript ships.
      const textStream = (ReadableStream as unknown as { from<T>(it: AsyncIterable<T>): ReadableStream<T> }).from(
        (async function* () {
          try {
            for await (const piece of raw) yield piece;
          } catch (err) {
            throw await s.translate(err);
          }
        })(),
      );
      return Object.create(result, { fairlane: { value: fairlane }, textStream: { value: textStream } }) as never;
    },
  };
}

/** The provider's request failed (an HTTP error or no answer), as opposed to a bug or a bad option. */
function isProviderFailure(err: unknown): boolean {
  return APICallError.isInstance(err) || RetryError.isInstance(err);
}

/** The HTTP status of a provider error (APICallError, or the last one a RetryError wraps); undefined for a network failure. */
function statusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: number; lastError?: { statusCode?: number }; cause?: unknown };
  return e?.statusCode ?? e?.lastError?.statusCode;
}
