import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IterationBudget } from "../../src/agents/iterations.ts";
import { chooseModel, DEFAULT_PRICES, estimateStepUsd, llmSettingsFromEnv, usageCostUsd } from "../../src/agents/models.ts";

/** ctx.agent's model policy (pure): tier, degrade, residency without fallback, prices, settings. */
describe("agent model policy", () => {
  const settings = llmSettingsFromEnv(
    { FAIRLANE_LLM_REGIONS: "eu=http://eu.local/v1/", FAIRLANE_LLM_API_KEY: "k-all", FAIRLANE_LLM_API_KEY_EU: "k-eu" },
    "http://us.local/v1",
  );

  it("picks the tier's model on the default endpoint, one tier down when degrading, never below small", () => {
    const pick = (tier: string, degrade: boolean) => {
      const c = chooseModel(settings, { tier, residency: null, degrade });
      assert.ok(c.ok);
      return [c.tier, c.modelId, c.endpoint.baseURL];
    };
    assert.deepEqual(pick("premium", false), ["premium", "sim-premium", "http://us.local/v1"]);
    assert.deepEqual(pick("premium", true), ["standard", "sim-standard", "http://us.local/v1"]);
    assert.deepEqual(pick("standard", true), ["small", "sim-small", "http://us.local/v1"]);
    assert.deepEqual(pick("small", true), ["small", "sim-small", "http://us.local/v1"]);
  });

  it("serves a residency tenant only from its region's endpoint, and refuses when none is configured", () => {
    const eu = chooseModel(settings, { tier: "standard", residency: "EU", degrade: false });
    assert.ok(eu.ok);
    assert.equal(eu.endpoint.baseURL, "http://eu.local/v1", "trailing slash trimmed, EU endpoint");
    assert.equal(eu.endpoint.apiKey, "k-eu", "the region's own key");
    const ch = chooseModel(settings, { tier: "standard", residency: "ch", degrade: false });
    assert.ok(!ch.ok);
    assert.equal(ch.code, "RESIDENCY_UNAVAILABLE");
    assert.match(ch.message, /"ch".*never sent to another region/);
    for (const name of ["constructor", "__proto__", "toString"]) {
      assert.equal(
        chooseModel(settings, { tier: "standard", residency: name, degrade: false }).ok,
        false,
        `residency "${name}" finds nothing`,
      );
      assert.equal(chooseModel(settings, { tier: name, residency: null, degrade: false }).ok, false, `tier "${name}" finds nothing`);
    }
    const plain = chooseModel(settings, { tier: "standard", residency: null, degrade: false });
    assert.ok(plain.ok && plain.endpoint.apiKey === "k-all");
  });

  it("prices usage per million tokens and estimates a step from its prompt and output cap", () => {
    assert.equal(usageCostUsd(DEFAULT_PRICES.premium!, { inputTokens: 1_000_000, outputTokens: 500_000 }), 2 + 4);
    assert.equal(usageCostUsd(DEFAULT_PRICES.small!, {}), 0, "no usage reported, nothing charged");
    assert.equal(estimateStepUsd({ inputPerMTok: 1, outputPerMTok: 2 }, 4_000, 1_000), (1_000 * 1 + 1_000 * 2) / 1_000_000);
  });

  it("parses models and prices, and names the variable of a bad value", () => {
    const s = llmSettingsFromEnv({ FAIRLANE_LLM_MODELS: "small=gpt-x-mini", FAIRLANE_LLM_PRICES: "small=0.1/0.4" }, "http://h/v1");
    assert.equal(s.models.small, "gpt-x-mini");
    assert.equal(s.models.premium, "sim-premium", "unset tiers keep their defaults");
    assert.deepEqual(s.prices.small, { inputPerMTok: 0.1, outputPerMTok: 0.4 });
    assert.throws(() => llmSettingsFromEnv({ FAIRLANE_LLM_PRICES: "small=cheap" }, "http://h/v1"), /FAIRLANE_LLM_PRICES: "small"/);
    assert.throws(() => llmSettingsFromEnv({ FAIRLANE_LLM_REGIONS: "eu" }, "http://h/v1"), /FAIRLANE_LLM_REGIONS/);
    assert.throws(
      () => llmSettingsFromEnv({ FAIRLANE_LLM_BASE_URL: "https://user:secret@h/v1" }, "http://h/v1"),
      (e: Error) => !e.message.includes("secret") && /FAIRLANE_LLM_API_KEY/.test(e.message),
    );
    assert.throws(() => llmSettingsFromEnv({ FAIRLANE_LLM_REGIONS: "eu=ftp://h" }, "http://h/v1"), /FAIRLANE_LLM_REGIONS \(eu\)/);
  });
});

describe("iteration budget", () => {
  it("counts steps up to the limit and refuses the next without counting it", () => {
    const b = new IterationBudget(2);
    assert.deepEqual([b.next(), b.next(), b.next()], [true, true, false]);
    assert.deepEqual([b.used, b.left, b.limit], [2, 0, 2]);
  });
});
