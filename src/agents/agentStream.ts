/**
 * ctx.agent.stream (aiSdk.ts): streamText within a session, whose result also carries `fairlane`
 * (the outcome, or what stopped the run) and whose textStream throws what stopped the run.
 */
import { streamText, type StepResult, type ToolSet } from "ai";
import type { AgentHost, AgentOutcome, StreamOptions } from "./agentTypes.ts";
import { sdkOptions } from "./sdkOptions.ts";
import { openSession, type Session } from "./session.ts";

export function streamGeneration<T extends ToolSet>(
  h: AgentHost,
  options: StreamOptions<T>,
): ReturnType<typeof streamText<T>> & { fairlane: Promise<AgentOutcome> } {
  const { reserveMs: _r, fairlanePrompt: _p, timeout: _t, tools, onError, ...rest } = options;
  const s = openSession(h, options, Object.keys(tools ?? {}));
  let failure: unknown;
  const result = streamText({
    ...sdkOptions(h, rest, tools, s),
    onError: async (e: { error: unknown }) => {
      failure ??= e.error;
      await onError?.(e);
    },
  } as unknown as Parameters<typeof streamText>[0]);
  const fairlane = outcomeOf(result.steps, s, () => failure);
  // On the result itself (not a wrapper): the SDK's own getters tee `this.baseStream`, and must see one.
  const sdkTextStream = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(result), "textStream")!.get!;
  const raw = () => sdkTextStream.call(result) as AsyncIterable<string>;
  return Object.defineProperties(result, { fairlane: { value: fairlane }, textStream: { get: () => textStream(s, raw) } }) as never;
}

/** The outcome once the steps are in, or what stopped the run (`failure`: the first error the stream reported). */
function outcomeOf(steps: PromiseLike<unknown>, s: Session, failure: () => unknown): Promise<AgentOutcome> {
  const fairlane = Promise.resolve(steps).then(
    async (all) => {
      if (failure() !== undefined || s.wasCut()) throw await s.translate(failure());
      s.settle();
      return s.outcome(all as StepResult<ToolSet>[]);
    },
    async (err: unknown) => {
      throw await s.translate(failure() ?? err);
    },
  );
  fairlane.catch(() => undefined); // read by the caller; never an unhandled rejection
  return fairlane;
}

/** Each read of textStream (a fresh copy, as the SDK's) throws what stopped the run, not the SDK's wrapper. */
function textStream(s: Session, raw: () => AsyncIterable<string>): ReadableStream<string> {
  // ReadableStream.from is in Node 20.6+ (package.json engines), not yet in the typings TypeScript ships.
  return (ReadableStream as unknown as { from<T>(it: AsyncIterable<T>): ReadableStream<T> }).from(
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
}
