/**
 * The time box of a generation's model requests (session.ts): each request gets its own,
 * `remaining − reserve` at its start (modelTimeBox), cleared when the request ends; when it fires,
 * the request aborts with a DeadlineExceededError, and the generation's tool calls stop with it.
 */
import { wrapLanguageModel, type LanguageModel } from "ai";
import { DeadlineExceededError } from "../runtime/errors.ts";
import { modelTimeBox } from "../runtime/model.ts";
import type { AgentCallOptions, AgentHost } from "./agentTypes.ts";
import { modelFor, type Choice } from "./modelChooser.ts";
import type { StepState } from "./stepState.ts";

export interface TimeBox {
  /** The box errors of this generation's requests that fired (a stream cancelled early may fire later: harmless). */
  cuts: Set<unknown>;
  /** The chosen model, boxed; one wrapper per model for the generation. */
  boxed(c: Choice): LanguageModel;
}

export function timeBox(h: AgentHost, o: AgentCallOptions, state: StepState): TimeBox {
  const cuts = new Set<unknown>();
  const timers = new WeakMap<object, NodeJS.Timeout>();
  const wrapped = new Map<string, LanguageModel>();
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
          const timer = setTimeout(
            () => {
              cuts.add(cut);
              box.abort(cut);
              // The generation is over: its tool calls (a stream runs them while it reads) stop with it.
              state.stop.abort(cut);
            },
            modelTimeBox(left, o.reserveMs),
          );
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
  return {
    cuts,
    boxed(c: Choice): LanguageModel {
      let m = wrapped.get(c.modelId);
      if (!m) wrapped.set(c.modelId, (m = box(c)));
      return m;
    },
  };
}
