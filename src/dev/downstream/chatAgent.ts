/**
 * The simulated model's agent policy (pure, stateless: each answer is derived from the
 * request alone), behind the OpenAI-compatible endpoint in chatCompletions.ts.
 *
 *   Settings  `fanout=N rounds=N tokenMs=N answerTokens=N` in system/user text (later wins), overridden
 *             by headers x-sim-fanout, x-sim-rounds, x-sim-token-ms, x-sim-answer-tokens.
 *             Defaults 6, 1, 0, 20; clamped to 1..32, 0..50, 0..5000, 1..2000.
 *   Plan      fanout × rounds tool calls i = 0..N-1. Call i names tools[i % tools.length] (function tools,
 *             in request order) with arguments made from its JSON schema: string "sim-<i>", integer or
 *             number i, boolean true, enum/const its first value, array [], object recursed; none: {}.
 *   Ids       call_<i>_<step>, step = assistant messages in the request: a tool result maps back to i.
 *   Done      call i is done once a tool message answers one of its ids with content that is not a JSON
 *             object whose status is "THROTTLED" or "RATE_LIMITED"; every other call is pending.
 *   Width     W = tool calls in the last assistant message (none: width = fanout). Any of their results
 *             throttled: the smallest positive-integer `parallelism` among those results (absent: 1),
 *             at most fanout. All passed: min(fanout, 2W). parallel_tool_calls false: 1.
 *   Step      the lowest min(width, pending) pending calls, finish_reason "tool_calls". Nothing pending,
 *             no tools, or tool_choice "none": the text "decision: approve token1 token2 ..." of
 *             answerTokens tokens (cut to max_tokens: finish_reason "length", else "stop").
 *             Streamed one token per chunk, tokenMs apart; tool calls and non-streamed answers at once.
 *   Usage     prompt ceil(message chars / 4); completion = text tokens, or 10 per tool call.
 */

export class ChatError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AgentSettings {
  fanout: number;
  rounds: number;
  tokenMs: number;
  answerTokens: number;
}

export interface ChatMessage {
  role: string;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: unknown;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  /** Function tools, in request order, already narrowed by a tool_choice naming one. */
  tools: { name: string; parameters: unknown }[];
  toolChoiceNone: boolean;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number | null;
  parallelToolCalls: boolean;
}

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, as OpenAI sends it. */
  arguments: string;
}

export type AgentTurn = { kind: "tools"; calls: ToolCall[] } | { kind: "text"; tokens: string[]; finishReason: "stop" | "length" };

const SETTING = /\b(fanout|rounds|tokenMs|answerTokens)=(\d+)/g;
const LIMITS: Record<keyof AgentSettings, { header: string; fallback: number; min: number; max: number }> = {
  fanout: { header: "x-sim-fanout", fallback: 6, min: 1, max: 32 },
  rounds: { header: "x-sim-rounds", fallback: 1, min: 0, max: 50 },
  tokenMs: { header: "x-sim-token-ms", fallback: 0, min: 0, max: 5000 },
  answerTokens: { header: "x-sim-answer-tokens", fallback: 20, min: 1, max: 2000 },
};
const CALL_ID = /^call_(\d+)_(\d+)$/;
export const TOKENS_PER_TOOL_CALL = 10;

// ---- Policy: pure functions of the request ----

/** The scenario settings of a request: text settings in system/user messages, then x-sim-* headers. */
export function scenarioSettings(messages: ChatMessage[], headers: Record<string, string | string[] | undefined>): AgentSettings {
  const raw: Partial<Record<keyof AgentSettings, number>> = {};
  for (const m of messages) {
    if (m.role !== "system" && m.role !== "developer" && m.role !== "user") continue;
    for (const [, name, value] of textOf(m.content).matchAll(SETTING)) raw[name as keyof AgentSettings] = Number(value);
  }
  const out = {} as AgentSettings;
  for (const [name, limit] of Object.entries(LIMITS) as [keyof AgentSettings, (typeof LIMITS)[keyof AgentSettings]][]) {
    const h = headers[limit.header];
    const fromHeader = Array.isArray(h) ? h[0] : h;
    if (fromHeader !== undefined && fromHeader !== "") {
      if (!/^\d+$/.test(fromHeader.trim()))
        throw new ChatError(400, "invalid_request_error", "invalid_header", `${limit.header} must be a non-negative integer`);
      raw[name] = Number(fromHeader.trim());
    }
    out[name] = Math.min(limit.max, Math.max(limit.min, raw[name] ?? limit.fallback));
  }
  return out;
}

/** What the simulated agent does next: a step of tool calls, or its text answer. */
export function agentTurn(request: ChatRequest, settings: AgentSettings): AgentTurn {
  const answer = (): AgentTurn => textTurn(settings.answerTokens, request.maxTokens);
  const tools = request.toolChoiceNone ? [] : request.tools;
  if (tools.length === 0) return answer();
  const planned = settings.fanout * settings.rounds;

  const results = new Map<string, string>(); // tool_call_id -> result text
  for (const m of request.messages)
    if (m.role === "tool" && typeof m.tool_call_id === "string") results.set(m.tool_call_id, textOf(m.content));
  const done = new Set<number>();
  for (const [id, content] of results) {
    const i = planIndex(id, planned);
    if (i !== null && throttled(content) === null) done.add(i);
  }
  const pending = Array.from({ length: planned }, (_, i) => i).filter((i) => !done.has(i));
  if (pending.length === 0) return answer();

  const assistants = request.messages.filter((m) => m.role === "assistant");
  const last = assistants.at(-1);
  const lastIds = last ? toolCallsOf(last).map((c) => c.id) : [];
  let width = settings.fanout;
  if (lastIds.length > 0) {
    const refusals = lastIds.flatMap((id) => {
      const content = results.get(id);
      const t = content === undefined ? null : throttled(content);
      return t === null ? [] : [t.parallelism];
    });
    width = refusals.length > 0 ? Math.min(settings.fanout, ...refusals) : Math.min(settings.fanout, lastIds.length * 2);
  }
  if (!request.parallelToolCalls) width = 1;

  const step = assistants.length;
  const calls = pending.slice(0, width).map((i): ToolCall => {
    const tool = tools[i % tools.length]!;
    return { id: `call_${i}_${step}`, name: tool.name, arguments: JSON.stringify(argumentsFor(tool.parameters, i)) };
  });
  return { kind: "tools", calls };
}

/** prompt_tokens: a quarter of the characters the messages carry, at least 1. */
export function promptTokens(messages: ChatMessage[]): number {
  let chars = 0;
  for (const m of messages) {
    chars += textOf(m.content).length;
    for (const c of toolCallsOf(m)) chars += c.name.length + c.arguments.length;
  }
  return Math.max(1, Math.ceil(chars / 4));
}

function textTurn(answerTokens: number, maxTokens: number | null): AgentTurn {
  const n = maxTokens === null ? answerTokens : Math.min(answerTokens, maxTokens);
  const tokens = Array.from({ length: n }, (_, k) => (k === 0 ? "decision:" : k === 1 ? " approve" : ` token${k - 1}`));
  return { kind: "text", tokens, finishReason: n < answerTokens ? "length" : "stop" };
}

/** The plan index an id of ours names, or null (not ours, or beyond this plan). */
function planIndex(id: string, planned: number): number | null {
  const m = CALL_ID.exec(id);
  const i = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(i) && i < planned ? i : null;
}

/** A THROTTLED or RATE_LIMITED result's allowed parallelism (1 unless a positive integer is given), or null. */
function throttled(content: string): { parallelism: number } | null {
  let v: unknown;
  try {
    v = JSON.parse(content);
  } catch {
    return null;
  }
  if (!isRecord(v) || (v.status !== "THROTTLED" && v.status !== "RATE_LIMITED")) return null;
  const p = v.parallelism;
  return { parallelism: typeof p === "number" && Number.isInteger(p) && p > 0 ? p : 1 };
}

/** Arguments that satisfy a JSON schema as plain tools declare them, recognisably numbered by i. */
function argumentsFor(schema: unknown, i: number): Record<string, unknown> {
  const v = valueFor(schema, i, 0);
  return isRecord(v) ? v : {};
}

function valueFor(schema: unknown, i: number, depth: number): unknown {
  if (!isRecord(schema) || depth > 8) return {};
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const branches = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(branches) && branches.length > 0) {
    return valueFor(branches.find((b) => !(isRecord(b) && b.type === "null")) ?? branches[0], i, depth + 1);
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "string":
      return `sim-${i}`;
    case "integer":
    case "number":
      return i;
    case "boolean":
      return true;
    case "array":
      return [];
    case "null":
      return null;
    default: {
      const props = isRecord(schema.properties) ? schema.properties : {};
      return Object.fromEntries(Object.entries(props).map(([k, s]) => [k, valueFor(s, i, depth + 1)]));
    }
  }
}

/** A message's text: a string, or the text parts of a content array. */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((p) => (isRecord(p) && typeof p.text === "string" ? p.text : "")).join("");
}

function toolCallsOf(m: ChatMessage): ToolCall[] {
  if (!Array.isArray(m.tool_calls)) return [];
  return m.tool_calls.flatMap((c) => {
    const f = isRecord(c) && isRecord(c.function) ? c.function : null;
    if (!isRecord(c) || typeof c.id !== "string" || !f) return [];
    return [{ id: c.id, name: typeof f.name === "string" ? f.name : "", arguments: typeof f.arguments === "string" ? f.arguments : "" }];
  });
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
