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
 * The per-generation mechanics (model, box, budget, errors) are in session.ts.
 */
import { createHash } from "node:crypto";
import { generateText, streamText, type Tool, type ToolExecutionOptions, type ToolSet, type StepResult } from "ai";
import stableStringify from "safe-stable-stringify";
import { DeadlineExceededError } from "../runtime/errors.ts";
import { DEFAULT_RETRY } from "../runtime/retry.ts";
import { toolDefinition, type ToolDefinition, type ToolResult } from "../runtime/tools.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { IterationBudget } from "./iterations.ts";
import type { LlmSettings } from "./models.ts";
import { openSession, stepState, type StepState } from "./session.ts";

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
  /** Numbers the generations of the current ctx.step (0, 1, ...): the same on a re-run of the step. */
  nextGeneration(): number;
  /** A step ran past its cap: counts as a THROTTLED signal and narrows ctx.parallelism to 1. */
  throttled(): void;
  iterations: IterationBudget;
  /** `keyPart`: the call's idempotency key within the current ctx.step (default: its call index). */
  callTool(name: string, args: unknown, opts: { signal?: AbortSignal; def?: ToolDefinition; keyPart?: string }): Promise<ToolResult>;
  budget(estimateUsd: number): Promise<"ok" | "degrade" | "refuse">;
  charge(usd: number): Promise<void>;
  /** False when a watched dependency is down (a missing probe counts as healthy). */
  dependencyHealthy(dependency: string): Promise<boolean>;
  park(dependency: string, reason: string): void;
  llm: LlmSettings | undefined;
}

type GenerateOptions<T extends ToolSet> = Omit<Parameters<typeof generateText<T>>[0], "model"> & AgentCallOptions;
type StreamOptions<T extends ToolSet> = Omit<Parameters<typeof streamText<T>>[0], "model"> & AgentCallOptions;
export interface AgentCallOptions {
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

/** Marks a tool set wrapped by ctx.agent.tools with what it was made from, so a generation can bind it. */
const GOVERNED = Symbol("fairlane.agent.tool");
type Governed = { [GOVERNED]: { tool: Tool; options: AgentToolOptions } };
const isGoverned = (t: unknown): t is Tool & Governed => typeof t === "object" && t !== null && GOVERNED in t;

/** Results that say the call did not run: the model reads them as they are, whatever the tool's toModelOutput does. */
const isFairlaneStatus = (v: unknown): boolean => typeof v === "object" && v !== null && typeof (v as { status?: unknown }).status === "string" && ["THROTTLED", "RATE_LIMITED", "ERROR"].includes((v as { status: string }).status);
/** Outcomes that stop the run rather than inform the model. */
const STOPS_RUN = new Set(["PARKED", "ABORTED", "DEADLINE_EXCEEDED"]);
/** Below this, a DEADLINE_EXCEEDED call means the run is out of time: the runtime's own rule (context.ts, outOfTime). */
const NO_TIME_LEFT_MS = 2 * DEFAULT_RETRY.minViableAttemptMs;

/** A tool's value: an async-iterable execute (preliminary results) runs to its last value while the permit is held. */
async function lastValue(out: unknown): Promise<unknown> {
  if (out && typeof out === "object" && Symbol.asyncIterator in out && !(out instanceof Promise)) {
    let last: unknown;
    for await (const v of out as AsyncIterable<unknown>) last = v;
    return last;
  }
  return out;
}

export function createAgent(h: AgentHost): WorkflowAgent {
  /** Tools called outside any generation (a handler calling execute itself) are not capped. */
  const outside = stepState();

  /** `t` governed by the run, counted against `state` (its generation's current step). */
  function governed(name: string, t: Tool, o: AgentToolOptions, state: StepState): Tool {
    const own = t.execute;
    return {
      ...t,
      ...(t.toModelOutput && { toModelOutput: (x: Parameters<NonNullable<Tool["toModelOutput"]>>[0]) => (isFairlaneStatus(x.output) ? { type: "json", value: x.output } : t.toModelOutput!(x)) }),
      execute: async (input: unknown, opts: ToolExecutionOptions) => {
        if (++state.calls > state.cap) {
          // More calls than the model was told it may run: a throttle like the gate's, so the next step runs one.
          h.throttled();
          state.narrowNext = true;
          return { status: "THROTTLED", reason: "step_cap", retryAfterMs: 0, parallelism: 1, message: `at most ${state.cap} tool calls ran in this step; issue this one again` };
        }
        const args = o.args ? o.args(input) : input;
        // The same call in a re-run of this generation gets the same key, whatever order the model emits it in.
        const pair = `${name}:${createHash("sha256").update(stableStringify(args) ?? "").digest("base64url").slice(0, 16)}`;
        const n = state.seen.get(pair) ?? 0;
        state.seen.set(pair, n + 1);
        const def: ToolDefinition | undefined = own && {
          name,
          dependency: o.dependency,
          costUsd: o.costUsd,
          timeoutMs: o.timeoutMs,
          isTransient: o.isTransient,
          // The call's own signal (deadline, cancel, attempt timeout) replaces the SDK's. A tool that fails because it
          // fired (an AbortError of its own making) failed for that reason: a timed-out attempt is retried within the deadline.
          run: async (a, c) => {
            try {
              return await lastValue(await own(a, { ...opts, abortSignal: c.signal }));
            } catch (err) {
              throw c.signal.aborted ? c.signal.reason : err;
            }
          },
        };
        const res = await h.callTool(name, args, { signal: opts.abortSignal, def, keyPart: `g${state.generation}:${pair}:${n}` });
        if (res.ok) return res.value;
        if (res.code === "THROTTLED" || res.code === "RATE_LIMITED") {
          state.backoffMs = Math.max(state.backoffMs, res.retryAfterMs);
          const why = res.code === "THROTTLED" ? { reason: res.reason } : {};
          return { status: res.code, ...why, retryAfterMs: res.retryAfterMs, parallelism: h.parallelism(), message: res.message };
        }
        // A tool's own DEADLINE_EXCEEDED (say, a server's internal timeout) with time left is the model's to handle.
        if (STOPS_RUN.has(res.code) && (res.code !== "DEADLINE_EXCEEDED" || h.remainingMs() < NO_TIME_LEFT_MS)) {
          // The run is over (its signal fired, or its deadline leaves no time): no further model request.
          const stop = res.code === "DEADLINE_EXCEEDED" ? new DeadlineExceededError(res.message) : Object.assign(new Error(res.message), { code: res.code });
          state.stop.abort(stop);
          throw stop;
        }
        return { status: "ERROR", code: res.code, message: res.message };
      },
    } as Tool;
  }

  /** The generation's tools: each governed and counted against its own steps; a raw AI SDK tool is governed too. */
  function bind(set: ToolSet | undefined, state: StepState): ToolSet | undefined {
    if (!set) return undefined;
    const out: ToolSet = {};
    for (const [name, t] of Object.entries(set)) {
      if (isGoverned(t)) out[name] = governed(name, t[GOVERNED].tool, t[GOVERNED].options, state);
      else if (t.execute || toolDefinition(name)) out[name] = governed(name, t, {}, state);
      else out[name] = t; // a tool the caller answers itself (no execute): the generation stops at it, as in the SDK
    }
    return out;
  }

  /** What generate and stream pass the SDK: the caller's options, with the generation's model, tools, signal and hooks. */
  type CallerOptions = { headers?: Record<string, string | undefined>; experimental_include?: object; experimental_telemetry?: object };
  function sdkOptions(rest: CallerOptions, tools: ToolSet | undefined, s: ReturnType<typeof openSession>): Record<string, unknown> {
    return {
      ...rest,
      tools: bind(tools, s.state),
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

  return {
    tools<T extends ToolSet>(set: T, options: { [K in keyof T]?: AgentToolOptions } = {}): T {
      const out: ToolSet = {};
      for (const [name, t] of Object.entries(set)) {
        if (!t.execute && !toolDefinition(name)) throw new Error(`tool "${name}" has no execute and no Fairlane tool of that name is defined`);
        const o: AgentToolOptions = options[name as keyof T] ?? {};
        out[name] = Object.assign(governed(name, t, o, outside), { [GOVERNED]: { tool: t, options: o } });
      }
      return out as T;
    },

    async generate(options) {
      // `timeout`: the time box replaces it (and the SDK's would hold a listener on the run's signal).
      const { reserveMs: _r, fairlanePrompt: _p, timeout: _t, tools, ...rest } = options;
      const s = openSession(h, options, Object.keys(tools ?? {}));
      try {
        const result = await generateText(sdkOptions(rest, tools, s) as unknown as Parameters<typeof generateText>[0]);
        s.settle();
        return Object.assign(result, { fairlane: s.outcome(result.steps as StepResult<ToolSet>[]) }) as never;
      } catch (err) {
        throw await s.translate(err);
      }
    },

    stream(options) {
      const { reserveMs: _r, fairlanePrompt: _p, timeout: _t, tools, onError, ...rest } = options;
      const s = openSession(h, options, Object.keys(tools ?? {}));
      let failure: unknown;
      const result = streamText({
        ...sdkOptions(rest, tools, s),
        onError: async (e: { error: unknown }) => {
          failure ??= e.error;
          await onError?.(e);
        },
      } as unknown as Parameters<typeof streamText>[0]);
      const fairlane = Promise.resolve(result.steps).then(
        async (steps) => {
          if (failure !== undefined || s.wasCut()) throw await s.translate(failure);
          s.settle();
          return s.outcome(steps as StepResult<ToolSet>[]);
        },
        async (err: unknown) => {
          throw await s.translate(failure ?? err);
        },
      );
      fairlane.catch(() => undefined); // read by the caller; never an unhandled rejection
      /** Each read of textStream (a fresh copy, as the SDK's) throws what stopped the run, not the SDK's wrapper. */
      const textStream = (raw: () => AsyncIterable<string>) =>
        // ReadableStream.from is in Node 20.6+ (package.json engines), not yet in the typings TypeScript ships.
        (ReadableStream as unknown as { from<T>(it: AsyncIterable<T>): ReadableStream<T> }).from(
          (async function* () {
            try {
              for await (const piece of raw()) yield piece;
            } catch (err) {
              throw await s.translate(err);
            }
            // The SDK ends the stream quietly when the run or the generation was stopped: say why.
            if (s.wasCut() || s.stopped()) throw await s.translate(undefined);
          })(),
        );
      // On the result itself (not a wrapper): the SDK's own getters tee `this.baseStream`, and must see one.
      const sdkTextStream = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(result), "textStream")!.get!;
      const raw = () => sdkTextStream.call(result) as AsyncIterable<string>;
      return Object.defineProperties(result, { fairlane: { value: fairlane }, textStream: { get: () => textStream(raw) } }) as never;
    },
  };
}
