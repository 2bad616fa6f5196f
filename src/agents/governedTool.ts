/**
 * The tools of ctx.agent (aiSdk.ts): an AI SDK tool wrapped so that each call runs through the whole
 * ctx.tool path (host.callTool), counts against its generation's step cap, gets an idempotency key a
 * re-run repeats, and comes back to the model as a result it can read (THROTTLED, RATE_LIMITED, ERROR)
 * unless its outcome ends the run.
 */
import { createHash } from "node:crypto";
import type { Tool, ToolExecutionOptions, ToolSet } from "ai";
import stableStringify from "safe-stable-stringify";
import { DeadlineExceededError } from "../runtime/errors.ts";
import { DEFAULT_RETRY } from "../runtime/retry.ts";
import { toolDefinition, type ToolDefinition, type ToolResult } from "../runtime/tools.ts";
import type { AgentHost, AgentToolOptions } from "./agentTypes.ts";
import type { StepState } from "./stepState.ts";

/** Marks a tool set wrapped by ctx.agent.tools with what it was made from, so a generation can bind it. */
export const GOVERNED = Symbol("fairlane.agent.tool");
type Governed = { [GOVERNED]: { tool: Tool; options: AgentToolOptions } };
const isGoverned = (t: unknown): t is Tool & Governed => typeof t === "object" && t !== null && GOVERNED in t;

/** Results that say the call did not run: the model reads them as they are, whatever the tool's toModelOutput does. */
const isFairlaneStatus = (v: unknown): boolean =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as { status?: unknown }).status === "string" &&
  ["THROTTLED", "RATE_LIMITED", "ERROR"].includes((v as { status: string }).status);
/** Outcomes that stop the run rather than inform the model. */
const STOPS_RUN = new Set(["PARKED", "ABORTED", "DEADLINE_EXCEEDED"]);
/** Below this, a DEADLINE_EXCEEDED call means the run is out of time: the runtime's own rule (toolCall.ts, outOfTime). */
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

/** `t` governed by the run `h`, counted against `state` (its generation's current step). */
export function governed(h: AgentHost, name: string, t: Tool, o: AgentToolOptions, state: StepState): Tool {
  const own = t.execute;
  return {
    ...t,
    ...(t.toModelOutput && {
      toModelOutput: (x: Parameters<NonNullable<Tool["toModelOutput"]>>[0]) =>
        isFairlaneStatus(x.output) ? { type: "json", value: x.output } : t.toModelOutput!(x),
    }),
    execute: async (input: unknown, opts: ToolExecutionOptions) => {
      if (++state.calls > state.cap) return overCap(h, state);
      const args = o.args ? o.args(input) : input;
      const keyPart = callKey(name, args, state);
      const def: ToolDefinition | undefined = own && definition(name, own, o, opts);
      const res = await h.callTool(name, args, { signal: opts.abortSignal, def, keyPart });
      return forModel(h, state, res);
    },
  } as Tool;
}

/** More calls than the model was told it may run: a throttle like the gate's, so the next step runs one. */
function overCap(h: AgentHost, state: StepState): unknown {
  h.throttled();
  state.narrowNext = true;
  return {
    status: "THROTTLED",
    reason: "step_cap",
    retryAfterMs: 0,
    parallelism: 1,
    message: `at most ${state.cap} tool calls ran in this step; issue this one again`,
  };
}

/** The call's idempotency key within the ctx.step: the same call in a re-run of this generation gets the same key, whatever order the model emits it in. */
function callKey(name: string, args: unknown, state: StepState): string {
  const pair = `${name}:${createHash("sha256")
    .update(stableStringify(args) ?? "")
    .digest("base64url")
    .slice(0, 16)}`;
  const n = state.seen.get(pair) ?? 0;
  state.seen.set(pair, n + 1);
  return `g${state.generation}:${pair}:${n}`;
}

/** The Fairlane tool a tool with its own execute runs as. */
function definition(name: string, own: NonNullable<Tool["execute"]>, o: AgentToolOptions, opts: ToolExecutionOptions): ToolDefinition {
  return {
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
}

/** A call's outcome as the model reads it; an outcome that ends the run stops the generation and throws. */
function forModel(h: AgentHost, state: StepState, res: ToolResult): unknown {
  if (res.ok) return res.value;
  if (res.code === "THROTTLED" || res.code === "RATE_LIMITED") {
    state.backoffMs = Math.max(state.backoffMs, res.retryAfterMs);
    const why = res.code === "THROTTLED" ? { reason: res.reason } : {};
    return { status: res.code, ...why, retryAfterMs: res.retryAfterMs, parallelism: h.parallelism(), message: res.message };
  }
  // A tool's own DEADLINE_EXCEEDED (say, a server's internal timeout) with time left is the model's to handle.
  if (STOPS_RUN.has(res.code) && (res.code !== "DEADLINE_EXCEEDED" || h.remainingMs() < NO_TIME_LEFT_MS)) {
    // The run is over (its signal fired, or its deadline leaves no time): no further model request.
    const stop =
      res.code === "DEADLINE_EXCEEDED" ? new DeadlineExceededError(res.message) : Object.assign(new Error(res.message), { code: res.code });
    state.stop.abort(stop);
    throw stop;
  }
  return { status: "ERROR", code: res.code, message: res.message };
}

/** The generation's tools: each governed and counted against its own steps; a raw AI SDK tool is governed too. */
export function bind(h: AgentHost, set: ToolSet | undefined, state: StepState): ToolSet | undefined {
  if (!set) return undefined;
  const out: ToolSet = {};
  for (const [name, t] of Object.entries(set)) {
    if (isGoverned(t)) out[name] = governed(h, name, t[GOVERNED].tool, t[GOVERNED].options, state);
    else if (t.execute || toolDefinition(name)) out[name] = governed(h, name, t, {}, state);
    else out[name] = t; // a tool the caller answers itself (no execute): the generation stops at it, as in the SDK
  }
  return out;
}
