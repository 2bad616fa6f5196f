/**
 * Which model a tenant's agent may call, where, and at what price (pure; the
 * adapter in aiSdk.ts applies it).
 *
 * - **Tier.** The tenant's `modelTier` picks the model; a budget that says
 *   "degrade" drops one tier (premium → standard → small), never below small.
 * - **Residency.** A tenant with `dataResidency` (e.g. "eu") is served only by
 *   the endpoint configured for that region. There is no fallback: a region
 *   with no endpoint is an error (`RESIDENCY_UNAVAILABLE`), and an endpoint
 *   that is down fails or parks the workflow, never reroutes it. A tenant
 *   without residency uses the `default` endpoint.
 * - **Price.** USD per million input and output tokens, per tier; a step's cost
 *   is what the provider reports it used.
 *
 * Settings come from the environment (docs/configuration.md):
 *   FAIRLANE_LLM_BASE_URL   the default endpoint (OpenAI-compatible, ".../v1")
 *   FAIRLANE_LLM_REGIONS    "eu=https://eu.example/v1,us=..." more endpoints by region
 *   FAIRLANE_LLM_API_KEY    the key for every endpoint; FAIRLANE_LLM_API_KEY_<REGION> overrides one
 *   FAIRLANE_LLM_MODELS     "small=<model id>,standard=...,premium=..."
 *   FAIRLANE_LLM_PRICES     "small=0.15/0.6,..." USD per 1M input/output tokens
 */

export interface LlmEndpoint {
  region: string;
  baseURL: string;
  /** Never logged, never put in an error message. */
  apiKey?: string;
}

export interface TierPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface LlmSettings {
  /** By region; "default" serves tenants without data residency. */
  endpoints: Record<string, LlmEndpoint>;
  /** Model id by tier. */
  models: Record<string, string>;
  prices: Record<string, TierPrice>;
}

export const TIERS = ["small", "standard", "premium"] as const;
const CHEAPER: Record<string, string> = { premium: "standard", standard: "small", small: "small" };

/** The simulated downstream's model names and list prices like today's small/mid/large models. */
export const DEFAULT_MODELS: Record<string, string> = { small: "sim-small", standard: "sim-standard", premium: "sim-premium" };
export const DEFAULT_PRICES: Record<string, TierPrice> = {
  small: { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  standard: { inputPerMTok: 0.4, outputPerMTok: 1.6 },
  premium: { inputPerMTok: 2, outputPerMTok: 8 },
};

export function cheaperTier(tier: string): string {
  return CHEAPER[tier] ?? "small";
}

export type ModelChoice =
  | { ok: true; tier: string; modelId: string; endpoint: LlmEndpoint; price: TierPrice }
  | { ok: false; code: "RESIDENCY_UNAVAILABLE" | "MODEL_UNAVAILABLE"; message: string };

/** The endpoint and model for a tenant's tier and residency, one tier down when degrading. */
export function chooseModel(s: LlmSettings, o: { tier: string; residency: string | null | undefined; degrade: boolean }): ModelChoice {
  const region = o.residency ? o.residency.toLowerCase() : "default";
  // Policy strings are free-form: "constructor" must not find Object.prototype's.
  const own = <T>(m: Record<string, T>, k: string): T | undefined => (Object.hasOwn(m, k) ? m[k] : undefined);
  const endpoint = own(s.endpoints, region);
  if (!endpoint)
    return {
      ok: false,
      code: "RESIDENCY_UNAVAILABLE",
      message: `no model endpoint is configured for data residency "${region}"; calls are never sent to another region`,
    };
  const tier = o.degrade ? cheaperTier(o.tier) : o.tier;
  const modelId = own(s.models, tier);
  const price = own(s.prices, tier);
  if (!modelId || !price) return { ok: false, code: "MODEL_UNAVAILABLE", message: `no model is configured for tier "${tier}"` };
  return { ok: true, tier, modelId, endpoint, price };
}

/** USD for a step's reported usage; missing counts cost nothing (the provider did not say). */
export function usageCostUsd(price: TierPrice, usage: { inputTokens?: number; outputTokens?: number }): number {
  return ((usage.inputTokens ?? 0) * price.inputPerMTok + (usage.outputTokens ?? 0) * price.outputPerMTok) / 1_000_000;
}

/** What a step will likely cost before it runs: the prompt so far and up to `maxOutputTokens` out. */
export function estimateStepUsd(price: TierPrice, promptChars: number, maxOutputTokens: number): number {
  return usageCostUsd(price, { inputTokens: Math.ceil(promptChars / 4), outputTokens: maxOutputTokens });
}

/** Parses "a=x,b=y" into entries, naming the variable and the bad part. */
function pairs(name: string, raw: string): [string, string][] {
  return raw
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const i = p.indexOf("=");
      if (i <= 0 || i === p.length - 1) throw new Error(`${name}: expected "key=value" pairs separated by commas, got "${p.slice(0, 40)}"`);
      return [p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim()];
    });
}

function url(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`${name}: not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`${name}: not an http(s) URL`);
  if (u.username || u.password) throw new Error(`${name}: put the key in FAIRLANE_LLM_API_KEY, not in the URL`);
  return raw.replace(/\/+$/, "");
}

/** Settings from the environment; throws naming the variable on bad input. */
export function llmSettingsFromEnv(env: NodeJS.ProcessEnv, defaultBaseURL: string): LlmSettings {
  // Region "eu-west" reads FAIRLANE_LLM_API_KEY_EU_WEST (a shell cannot export a name with "-").
  const key = (region: string) =>
    env[`FAIRLANE_LLM_API_KEY_${region.toUpperCase().replace(/-/g, "_")}`] || env.FAIRLANE_LLM_API_KEY || undefined;
  const endpoints: Record<string, LlmEndpoint> = {
    default: {
      region: "default",
      baseURL: url("FAIRLANE_LLM_BASE_URL", env.FAIRLANE_LLM_BASE_URL || defaultBaseURL),
      apiKey: key("default"),
    },
  };
  for (const [region, u] of pairs("FAIRLANE_LLM_REGIONS", env.FAIRLANE_LLM_REGIONS ?? "")) {
    if (!/^[a-z0-9_-]{1,32}$/.test(region))
      throw new Error(`FAIRLANE_LLM_REGIONS: region "${region.slice(0, 40)}" must be 1-32 of a-z, 0-9, _ and -`);
    endpoints[region] = { region, baseURL: url(`FAIRLANE_LLM_REGIONS (${region})`, u), apiKey: key(region) };
  }
  const models = { ...DEFAULT_MODELS, ...Object.fromEntries(pairs("FAIRLANE_LLM_MODELS", env.FAIRLANE_LLM_MODELS ?? "")) };
  const prices = { ...DEFAULT_PRICES };
  for (const [tier, p] of pairs("FAIRLANE_LLM_PRICES", env.FAIRLANE_LLM_PRICES ?? "")) {
    const m = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(p);
    if (!m) throw new Error(`FAIRLANE_LLM_PRICES: "${tier}" must be "<input>/<output>" USD per 1M tokens, got "${p.slice(0, 40)}"`);
    prices[tier] = { inputPerMTok: Number(m[1]), outputPerMTok: Number(m[2]) };
  }
  return { endpoints, models, prices };
}
