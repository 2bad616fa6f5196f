/**
 * Which model a generation's steps ask (session.ts): the tenant's `modelTier` and `dataResidency` pick
 * the model and the endpoint (models.ts), one tier down when the budget says degrade; a residency
 * region never falls back to another.
 */
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModel } from "ai";
import { ModelUnavailableError } from "../runtime/errors.ts";
import type { AgentHost } from "./agentTypes.ts";
import { chooseModel, type LlmEndpoint } from "./models.ts";

export type Choice = Extract<ReturnType<typeof chooseModel>, { ok: true }>;

/**
 * One model object per endpoint and model id for the process's life: it holds settings, no connection, and
 * building one builds the provider's response schemas (5% of an agent's CPU when it was made per step).
 */
const models = new Map<string, LanguageModel>();
export function modelFor(e: LlmEndpoint, modelId: string): LanguageModel {
  const id = `${e.region}|${e.baseURL}|${modelId}`;
  let m = models.get(id);
  if (!m) {
    const provider = createOpenAICompatible({ name: `fairlane-${e.region}`, baseURL: e.baseURL, apiKey: e.apiKey, includeUsage: true });
    models.set(id, (m = provider.chatModel(modelId)));
  }
  return m;
}

/** The run's chooser (`degrade`: one tier down); throws MODEL_UNAVAILABLE at once when the process has no model endpoint. */
export function modelChooser(h: AgentHost): (degrade: boolean) => Choice {
  if (!h.llm) throw new ModelUnavailableError("MODEL_UNAVAILABLE", "this process has no model endpoint configured");
  const llm = h.llm;
  return (degrade: boolean): Choice => {
    const c = chooseModel(llm, { tier: h.policy.modelTier, residency: h.policy.dataResidency, degrade });
    if (!c.ok) throw new ModelUnavailableError(c.code, c.message);
    return c;
  };
}
