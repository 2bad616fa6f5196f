/**
 * What stopped a generation (session.ts), in the runtime's codes: the run's own stop, the generation's
 * stop (a tool outcome, a failed charge), a time box that fired, or the provider's failure, which parks
 * the run on an unhealthy model endpoint or becomes MODEL_UNAVAILABLE / MODEL_ERROR with a fixed message.
 */
import { AISDKError, APICallError, RetryError } from "ai";
import { ModelUnavailableError } from "../runtime/errors.ts";
import type { AgentHost } from "./agentTypes.ts";
import type { Choice } from "./modelChooser.ts";
import type { StepState } from "./stepState.ts";

/** `cuts`: the time-box errors that fired; `current`: the model of the last step. */
export async function translateError(h: AgentHost, state: StepState, cuts: Set<unknown>, current: Choice, err: unknown): Promise<unknown> {
  // The runner reads why from the run's own signal; a handler still gets an Error to catch.
  if (h.signal.aborted) return err ?? new Error(`the run was stopped (${String(h.signal.reason)})`);
  if (state.stop.signal.aborted) return state.stop.signal.reason;
  const cut = [...cuts].find((c) => causedBy(err, c));
  if (cut) return cut;
  if (cuts.size && (err === undefined || isAbort(err))) return [...cuts][0];
  const code = (err as { code?: string }).code;
  if (code === "BUDGET_EXCEEDED" || code === "MAX_ITERATIONS" || code === "MODEL_UNAVAILABLE" || code === "RESIDENCY_UNAVAILABLE")
    return err;
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
    return new ModelUnavailableError(
      "MODEL_UNAVAILABLE",
      `the ${region} model endpoint did not answer${status ? ` (HTTP ${status})` : ""}${residency}`,
    );
  }
  // Any other provider or SDK error: its message may quote the provider's answer or the prompt, so the
  // workflow's record gets a fixed one.
  if (isProviderFailure(err) || AISDKError.isInstance(err))
    return new ModelUnavailableError("MODEL_ERROR", `the model request failed${status ? ` (HTTP ${status})` : ""}: ${(err as Error).name}`);
  return err;
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
