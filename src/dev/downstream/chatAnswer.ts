/**
 * How the simulated model (chatCompletions.ts) writes one agent turn: as a whole OpenAI
 * chat.completion, or as SSE `chat.completion.chunk` events ending in `data: [DONE]`.
 */
import type { ServerResponse } from "node:http";
import type { AgentTurn } from "./chatAgent.ts";

/** The fields every answer and chunk of one completion share. */
export interface CompletionBase {
  id: string;
  created: number;
  model: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The body of a non-streamed answer. */
export function wholeCompletion(base: CompletionBase, turn: AgentTurn, usage: Usage): Record<string, unknown> {
  const message =
    turn.kind === "tools"
      ? {
          role: "assistant",
          content: null,
          tool_calls: turn.calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })),
        }
      : { role: "assistant", content: turn.tokens.join("") };
  const finish = turn.kind === "tools" ? "tool_calls" : turn.finishReason;
  return { ...base, object: "chat.completion", choices: [{ index: 0, message, finish_reason: finish, logprobs: null }], usage };
}

/**
 * Streams the turn as SSE: tool calls and, with `tokenMs` 0, text at once; else one text token per
 * `tokenMs`, the first at once. Returns what stops the generation (for a reader that is gone).
 */
export function streamCompletion(
  res: ServerResponse,
  base: CompletionBase,
  turn: AgentTurn,
  usage: Usage | null,
  tokenMs: number,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer) clearTimeout(timer);
  };
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
  res.flushHeaders(); // the client sees the stream start before the first token
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    event(res, { ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] });
  const end = (finish: string) => {
    chunk({}, finish);
    if (usage) event(res, { ...base, object: "chat.completion.chunk", choices: [], usage });
    res.end("data: [DONE]\n\n");
  };
  if (turn.kind === "tools") {
    // As OpenAI streams them: a call's id and name first, then its arguments.
    chunk({ role: "assistant", content: null });
    turn.calls.forEach((c, index) => {
      chunk({ tool_calls: [{ index, id: c.id, type: "function", function: { name: c.name, arguments: "" } }] });
      chunk({ tool_calls: [{ index, function: { arguments: c.arguments } }] });
    });
    end("tool_calls");
    return stop;
  }
  const { tokens, finishReason } = turn;
  const emit = (k: number) => chunk(k === 0 ? { role: "assistant", content: tokens[0] } : { content: tokens[k] });
  if (tokenMs === 0) {
    tokens.forEach((_, k) => emit(k));
    end(finishReason);
    return stop;
  }
  // One token "generated" per tokenMs, each its own chunk; the first at once.
  let k = 0;
  const next = () => {
    timer = undefined;
    emit(k++);
    if (k === tokens.length) end(finishReason);
    else timer = setTimeout(next, tokenMs);
  };
  next();
  return stop;
}

function event(res: ServerResponse, data: unknown): void {
  if (!res.destroyed) res.write(`data: ${JSON.stringify(data)}\n\n`);
}
