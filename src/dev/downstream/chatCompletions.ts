/**
 * The simulated downstream's model: an OpenAI-compatible chat-completions API
 * with a small deterministic agent policy, so the real Vercel AI SDK (`ai` +
 * `@ai-sdk/openai-compatible`) can run tool-calling agents over real HTTP and
 * real streaming, and tests can count what the model was asked to do.
 *
 *   POST /v1/chat/completions  OpenAI body: model, messages, tools, tool_choice, stream,
 *                              stream_options.include_usage, max_tokens, parallel_tool_calls.
 *                              stream: SSE `data: {chunk}\n\n` ... `data: [DONE]\n\n`; else one chat.completion.
 *   GET  /v1/models            a few model ids (chat/completions accepts any model id)
 *   Both need `Authorization: Bearer <llmApiKey>` when the Downstream has a key (else 401), and
 *   chat/completions answers 503 while the model is down (POST /admin/llm {down}). Errors have
 *   OpenAI's shape {error:{message,type,code}}, so the SDK reports them as API errors.
 *
 * The agent policy (what the model answers) is in chatAgent.ts; how an answer is written (whole or
 * streamed) is in chatAnswer.ts.
 *
 * No logging, as in simulator.ts: tenants, prompts and keys end up only in counters.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  agentTurn,
  ChatError,
  isRecord,
  promptTokens,
  scenarioSettings,
  TOKENS_PER_TOOL_CALL,
  type AgentSettings,
  type AgentTurn,
  type ChatMessage,
  type ChatRequest,
} from "./chatAgent.ts";
import { streamCompletion, wholeCompletion } from "./chatAnswer.ts";

/** Chat-completion counters since start or the last reset (GET /admin/stats `llm`). */
export interface LlmStats {
  /** Every POST /v1/chat/completions: unauthorized + refusedDown + invalid + answered. */
  requests: number;
  /** Answered as SSE (stream: true). */
  streamed: number;
  /** Answers written to their end. */
  completed: number;
  /** Streamed answers the client closed before their end. */
  streamsCut: number;
  toolCallsEmitted: number;
  /** Answered requests by model id. */
  byModel: Record<string, number>;
  /** Requests by X-Tenant-Id ("-" when absent). */
  byTenant: Record<string, number>;
  unauthorized: number;
  /** Answered 503 while the model was down. */
  refusedDown: number;
  /** Answered 400 (malformed body or x-sim-* header). */
  invalid: number;
  maxToolCallsInOneResponse: number;
  /** One entry per answered request, in arrival order, 0 for a text answer (the last 10,000). */
  toolCallsPerResponse: number[];
}

const PER_RESPONSE_HISTORY = 10_000;
/** An agent's conversation carries every tool result so far: far larger than an /admin body. */
const BODY_LIMIT = 4 * 1024 * 1024;
/** The model ids Fairlane asks for by default (src/agents/models.ts DEFAULT_MODELS); any id is answered. */
const MODELS = ["sim-small", "sim-standard", "sim-premium"];

// ---- Edge: validating the OpenAI body ----

function parseChatRequest(b: Record<string, unknown>): ChatRequest {
  const bad = (message: string) => new ChatError(400, "invalid_request_error", "invalid_request", message);
  if (typeof b.model !== "string" || b.model === "") throw bad("model must be a non-empty string");
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw bad("messages must be a non-empty array");
  const messages = b.messages.map((m): ChatMessage => {
    if (!isRecord(m) || typeof m.role !== "string") throw bad("every message needs a role");
    return m as unknown as ChatMessage;
  });
  if (b.tools != null && !Array.isArray(b.tools)) throw bad("tools must be an array");
  let tools = ((b.tools ?? []) as unknown[]).flatMap((t) => {
    const f = isRecord(t) && t.type === "function" && isRecord(t.function) ? t.function : null;
    return f && typeof f.name === "string" && f.name !== "" ? [{ name: f.name, parameters: f.parameters }] : [];
  });
  const choice = b.tool_choice;
  if (isRecord(choice) && isRecord(choice.function)) {
    const name = choice.function.name;
    tools = tools.filter((t) => t.name === name);
    if (tools.length === 0) throw bad(`tool_choice names a tool that is not in tools: ${String(name).slice(0, 64)}`);
  }
  const max = b.max_tokens ?? b.max_completion_tokens;
  if (max != null && !(typeof max === "number" && Number.isInteger(max) && max >= 1)) throw bad("max_tokens must be an integer >= 1");
  return {
    model: b.model,
    messages,
    tools,
    toolChoiceNone: choice === "none",
    stream: b.stream === true,
    includeUsage: isRecord(b.stream_options) && b.stream_options.include_usage === true,
    maxTokens: (max as number | null | undefined) ?? null,
    parallelToolCalls: b.parallel_tool_calls !== false,
  };
}

// ---- Mechanism: HTTP ----

export function freshLlmStats(): LlmStats {
  return {
    requests: 0,
    streamed: 0,
    completed: 0,
    streamsCut: 0,
    toolCallsEmitted: 0,
    // No prototype: a model or tenant named "__proto__" is just a key.
    byModel: Object.create(null) as Record<string, number>,
    byTenant: Object.create(null) as Record<string, number>,
    unauthorized: 0,
    refusedDown: 0,
    invalid: 0,
    maxToolCallsInOneResponse: 0,
    toolCallsPerResponse: [],
  };
}

export class ChatCompletions {
  private s = freshLlmStats();
  private down = false;
  private answered = 0;
  /** sha256 of the key, compared in constant time; null: no key needed. */
  private readonly keyDigest: Buffer | null;

  constructor(opts: { apiKey?: string } = {}) {
    this.keyDigest = opts.apiKey === undefined ? null : digest(opts.apiKey);
  }

  stats(): LlmStats {
    return structuredClone(this.s);
  }

  /** Zeroes the counters; an answer still streaming counts its end in the new window. */
  resetStats(): void {
    this.s = freshLlmStats();
  }

  setDown(on: boolean): void {
    this.down = on;
  }

  models(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    if (!this.authorized(req)) {
      sendError(res, unauthorized());
      return;
    }
    send(res, 200, { object: "list", data: MODELS.map((id) => ({ id, object: "model", created: 0, owned_by: "fairlane-sim" })) });
  }

  async completions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = this.s;
    s.requests++;
    bump(s.byTenant, headerOf(req, "x-tenant-id") ?? "-");
    const refused = this.refusal(req);
    if (refused) {
      req.resume();
      return sendError(res, refused);
    }
    let request: ChatRequest;
    let settings: AgentSettings;
    try {
      request = parseChatRequest(await readJson(req));
      settings = scenarioSettings(request.messages, req.headers);
    } catch (err) {
      this.s.invalid++; // this.s, not s: a reset while the body arrived starts a new window
      return sendError(
        res,
        err instanceof ChatError ? err : new ChatError(400, "invalid_request_error", "invalid_request", "unreadable body"),
      );
    }

    const turn = agentTurn(request, settings);
    this.count(request, turn);
    const completion = turn.kind === "tools" ? turn.calls.length * TOKENS_PER_TOOL_CALL : turn.tokens.length;
    const prompt = promptTokens(request.messages);
    const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    const base = { id: `chatcmpl-sim-${++this.answered}`, created: Math.floor(Date.now() / 1000), model: request.model };
    let stop = () => {};
    res.once("close", () => {
      stop(); // stop generating for a reader that is gone
      if (res.writableFinished) this.s.completed++;
      else if (request.stream) this.s.streamsCut++;
    });
    if (!request.stream) return send(res, 200, wholeCompletion(base, turn, usage));
    stop = streamCompletion(res, base, turn, request.includeUsage ? usage : null, settings.tokenMs);
  }

  /** The answer to a request without the key or while the model is down (counted), or null: answer it. */
  private refusal(req: IncomingMessage): ChatError | null {
    if (!this.authorized(req)) {
      this.s.unauthorized++;
      return unauthorized();
    }
    if (this.down) {
      this.s.refusedDown++;
      return new ChatError(503, "server_error", "model_down", "the model is down (POST /admin/llm)");
    }
    return null;
  }

  /** Counts an answered request's model and tool calls, in the window it is answered in. */
  private count(request: ChatRequest, turn: AgentTurn): void {
    const calls = turn.kind === "tools" ? turn.calls.length : 0;
    const now = this.s;
    bump(now.byModel, request.model);
    if (request.stream) now.streamed++;
    now.toolCallsEmitted += calls;
    now.maxToolCallsInOneResponse = Math.max(now.maxToolCallsInOneResponse, calls);
    now.toolCallsPerResponse.push(calls);
    if (now.toolCallsPerResponse.length > PER_RESPONSE_HISTORY) now.toolCallsPerResponse.shift();
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.keyDigest === null) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(headerOf(req, "authorization") ?? "");
    return m !== null && timingSafeEqual(digest(m[1]!), this.keyDigest);
  }
}

function unauthorized(): ChatError {
  return new ChatError(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided");
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function headerOf(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined || one === "" ? null : one;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: ChatError): void {
  send(res, err.status, { error: { message: err.message, type: err.type, param: null, code: err.code } });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new ChatError(413, "invalid_request_error", "request_too_large", `body over ${BODY_LIMIT} bytes`);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ChatError(400, "invalid_request_error", "invalid_json", "body is not JSON");
  }
  if (!isRecord(parsed)) throw new ChatError(400, "invalid_request_error", "invalid_json", "body must be a JSON object");
  return parsed;
}
