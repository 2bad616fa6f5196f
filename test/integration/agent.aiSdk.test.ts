import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { tool } from "ai";
import type { Redis } from "ioredis";
import { z } from "zod";
import type { Keys } from "../../queues/keys.ts";
import { llmSettingsFromEnv, type LlmSettings } from "../../src/agents/models.ts";
import { HealthCache } from "../../src/backpressure/healthCache.ts";
import { Downstream } from "../../src/dev/downstream/simulator.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { TenantBudget } from "../../src/runtime/budget.ts";
import { createContext } from "../../src/runtime/context.ts";
import { TenantRateLimits } from "../../src/runtime/rateLimit.ts";
import type { ToolGate } from "../../src/runtime/toolGate.ts";
import { defineTool } from "../../src/runtime/tools.ts";
import { resolvePolicy, runtimePolicy, type PolicySpec } from "../../src/tenancy/policy.ts";
import { startTestGate } from "../helpers/gate.ts";

/**
 * ctx.agent with the real `ai` package and its OpenAI-compatible provider, over real HTTP (and real SSE)
 * to the simulated downstream's chat-completions endpoint, on a real Redis and tool gate. What the model
 * was asked and what reached the tools are the downstream's own counters.
 */
describe("ctx.agent: the Vercel AI SDK under the tenant's gate, deadline, budget and model policy", () => {
  let redis: Redis;
  let keys: Keys;
  let gate: ToolGate;
  let close: () => Promise<void>;
  let us: Downstream;
  let eu: Downstream;
  let llm: LlmSettings;
  before(async () => {
    ({ redis, keys, gate, close } = await startTestGate());
    us = new Downstream({ capacity: 100, latencyMs: { min: 120, max: 160 }, seed: 3 });
    eu = new Downstream({ capacity: 100, latencyMs: { min: 20, max: 40 }, seed: 4 });
    const [usUrl, euUrl] = [await us.start(), await eu.start()];
    llm = llmSettingsFromEnv({ FAIRLANE_LLM_REGIONS: `eu=${euUrl}/v1` }, `${usUrl}/v1`);
  });
  after(async () => {
    await close();
    await us.stop();
    await eu.stop();
  });

  let runs = 0;
  function make(tenant: string, spec: PolicySpec, o: { deadlineMs?: number; health?: HealthCache } = {}) {
    const r = resolvePolicy(spec);
    assert.ok(r.ok, JSON.stringify(r));
    const cell = keys.cell("default");
    const controller = new AbortController();
    const parked: string[] = [];
    const budget = new TenantBudget(redis, cell.budgetPrefix, systemClock);
    const deadlineAt = Date.now() + (o.deadlineMs ?? 20_000);
    // As the runner does: the run's signal fires at the deadline.
    setTimeout(() => controller.abort("deadline"), deadlineAt - Date.now()).unref();
    const made = createContext(
      {
        redis,
        gate,
        clock: systemClock,
        rateLimits: new TenantRateLimits(redis, cell.rateLimitPrefix),
        budget,
        modelUrl: "http://127.0.0.1:9/none",
        llm,
        health: o.health,
      },
      {
        cellName: "default",
        cell,
        workflowId: `wf_${tenant}_${++runs}`,
        tenant,
        cls: "B",
        type: "agent",
        payload: {},
        deadlineAt,
        traceId: "0".repeat(32),
        attempt: 1,
        policy: runtimePolicy(r.policy),
        signal: controller.signal,
        review: () => {},
        park: (dep) => {
          parked.push(dep);
          controller.abort("park");
        },
      },
    );
    return { ...made, controller, parked, budget };
  }

  /** An ordinary AI SDK tool whose execute calls the downstream's FHIR API, as a team's own tool would. */
  const fhir = (ds: Downstream, tenant: string, resource: string) =>
    tool({
      description: `reads ${resource}`,
      inputSchema: z.object({ patientRef: z.string() }),
      execute: async (_input, { abortSignal }) => {
        const res = await fetch(`${ds.url}/fhir/${resource}`, { headers: { "X-Tenant-Id": tenant }, signal: abortSignal });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return res.json();
      },
    });

  it("8 parallel tool calls with mctc 3: never more than 3 at the downstream, THROTTLED comes back as a result, the model goes sequential and widens again", async () => {
    // The model is told parallelism 3; the 5 calls it emits beyond that come back THROTTLED (step_cap).
    us.resetStats();
    const { ctx, run, tracking } = make("fanout", { tier: "enterprise", mctc: 3, toolQueueDepth: 2, toolWaitTimeoutMs: 20_000 });
    const tools = ctx.agent.tools({ eligibility: fhir(us, "fanout", "eligibility"), formulary: fhir(us, "fanout", "formulary") });
    const result = await run(() => ctx.agent.generate({ prompt: "Decide. fanout=8 rounds=1", tools, stopWhen: () => false }));

    const s = us.stats();
    assert.ok(s.byTenant.fanout!.peakInFlight <= 3, `peak at the downstream ${s.byTenant.fanout!.peakInFlight} (mctc 3)`);
    assert.equal(s.byTenant.fanout!.requests, 8, "every planned call reached the downstream exactly once in the end");
    const perResponse = s.llm.toolCallsPerResponse;
    assert.equal(perResponse[0], 8, "the model's first step asked for 8 calls at once");
    assert.equal(perResponse[1], 1, "after THROTTLED results it issued one call at a time");
    assert.ok(
      perResponse.slice(2, -1).some((n) => n >= 2),
      `then widened again as calls passed: ${perResponse.join(",")}`,
    );
    assert.equal(perResponse.at(-1), 0, "and answered once every call had passed");
    const throttledResults = result.steps[0]!.toolResults.map((r) => r.output as { status?: string; parallelism?: number }).filter(
      (o) => o.status === "THROTTLED",
    );
    assert.equal(
      throttledResults.length,
      5,
      "the 5 calls past parallelism 3 came back to the model as THROTTLED tool results, not exceptions",
    );
    assert.ok(
      throttledResults.every((o) => o.parallelism === 1),
      "each telling the model to go sequential",
    );
    assert.equal(tracking.throttled, 5);
    assert.match(result.text, /^decision: approve/);
    assert.equal(tracking.active.size, 0, "no tool call left in flight");
  });

  it("cuts a stream at remaining − reserve: the endpoint counts the cut and the run fails DEADLINE_EXCEEDED, nothing in flight", async () => {
    us.resetStats();
    const { ctx, run, tracking } = make("slowtalker", { tier: "professional" }, { deadlineMs: 1_500 });
    const startedAt = Date.now();
    let text = "";
    const s = ctx.agent.stream({ prompt: "Explain at length. answerTokens=2000 tokenMs=10", reserveMs: 300 });
    const err = await run(async () => {
      for await (const piece of s.textStream) text += piece;
    }).catch((e: { code?: string }) => e);
    const tookMs = Date.now() - startedAt;
    assert.equal((err as { code?: string })?.code, "DEADLINE_EXCEEDED", "reading the stream throws DEADLINE_EXCEEDED");
    assert.ok(text.length > 0 && text.split(" ").length < 2000, "some of the answer arrived, then it was cut");
    assert.equal(((await s.fairlane.catch((e: unknown) => e)) as { code?: string }).code, "DEADLINE_EXCEEDED", "and so does its outcome");
    assert.ok(tookMs < 1_500 + 1_000, `cut near remaining − reserve (took ${tookMs} ms of a 1,500 ms deadline)`);
    for (let i = 0; i < 40 && us.stats().llm.streamsCut < 1; i++) await sleep(25);
    assert.equal(us.stats().llm.streamsCut, 1, "the endpoint saw the connection close mid-stream");
    assert.equal(tracking.active.size, 0);
  });

  it("charges token usage to the budget; a run whose budget runs low gets the cheaper model next", async () => {
    us.resetStats();
    // perWorkflowUsd 0.02: the first step fits at premium (estimate ~0.008 for 1,000 output tokens at $8/M);
    // its $0.01 tool call leaves under 0.01, of which the next premium estimate is more than 80%: degrade.
    const { ctx, run, budget } = make("spender", { tier: "enterprise", modelTier: "premium", budget: { perWorkflowUsd: 0.02 } });
    const monthBefore = await budget.monthSpentUsd("spender");
    const tools = ctx.agent.tools(
      { eligibility: tool({ description: "x", inputSchema: z.object({ patientRef: z.string() }), execute: async () => ({ ok: true }) }) },
      { eligibility: { costUsd: 0.01 } },
    );
    const first = await run(() =>
      ctx.agent.generate({ prompt: "fanout=1 rounds=1", tools, maxOutputTokens: 1_000, stopWhen: () => false }),
    );
    assert.equal(first.steps.length, 2);
    assert.deepEqual(us.stats().llm.byModel, { "sim-premium": 1, "sim-standard": 1 }, "the step after the tool call was degraded one tier");
    assert.equal(first.fairlane.model, "sim-standard");
    const second = await run(() => ctx.agent.generate({ prompt: "Summarize. answerTokens=5", maxOutputTokens: 1_000 }));
    assert.equal(second.fairlane.model, "sim-standard", "and so is the next generation");
    assert.deepEqual(us.stats().llm.byModel, { "sim-premium": 1, "sim-standard": 2 }, "as the endpoint saw");
    const charged = first.fairlane.spentUsd + second.fairlane.spentUsd;
    assert.ok(charged > 0, "token usage was charged");
    const monthAfter = await budget.monthSpentUsd("spender");
    assert.ok(
      Math.abs(monthAfter - monthBefore - (charged + 0.01)) < 1e-5,
      `the tenant's month grew by tokens + the tool (${monthAfter - monthBefore})`,
    );
    assert.ok(Math.abs(ctx.budget.spentUsd - (charged + 0.01)) < 1e-9, "and so did the run's own spend");
  });

  it("a GDPR tenant's generations reach only the EU endpoint; with it down the run fails or parks, and the US endpoint sees nothing", async () => {
    us.resetStats();
    eu.resetStats();
    const gdpr = { tier: "professional", dataResidency: "eu" } as const;
    const ok = make("gdpr", gdpr);
    const r = await ok.run(() => ok.ctx.agent.generate({ prompt: "Decide. answerTokens=3" }));
    assert.equal(r.fairlane.region, "eu");
    assert.equal(eu.stats().llm.requests, 1);

    eu.setLlmDown(true);
    try {
      const down = make("gdpr", gdpr);
      const err = await down
        .run(() => down.ctx.agent.generate({ prompt: "Decide.", maxRetries: 0 }))
        .catch((e: { code?: string; message: string }) => e);
      assert.equal((err as { code?: string }).code, "MODEL_UNAVAILABLE");
      assert.match((err as Error).message, /eu model endpoint did not answer \(HTTP 503\); data residency forbids any other region/);

      // With a probe watching the EU endpoint and saying it is down, the workflow parks instead.
      const watched = make("gdpr", gdpr, {
        health: new HealthCache({ isHealthy: async (_c, dep) => dep !== "llm-eu" }, () => Date.now(), 250),
      });
      await watched.run(() => watched.ctx.agent.generate({ prompt: "Decide.", maxRetries: 0 })).catch(() => undefined);
      assert.deepEqual(watched.parked, ["llm-eu"]);
      assert.equal(watched.controller.signal.reason, "park");
    } finally {
      eu.setLlmDown(false);
    }
    assert.equal(us.stats().llm.requests, 0, "the US endpoint never saw the EU tenant");

    const sentBefore = us.stats().llm.requests + eu.stats().llm.requests;
    const nowhere = make("swiss", { tier: "professional", dataResidency: "ch" });
    const err = await nowhere.run(() => nowhere.ctx.agent.generate({ prompt: "Decide." })).catch((e: { code?: string }) => e);
    assert.equal((err as { code?: string }).code, "RESIDENCY_UNAVAILABLE");
    assert.equal(us.stats().llm.requests + eu.stats().llm.requests, sentBefore, "nothing sent anywhere for a region with no endpoint");
  });

  it("stops after the tier's maxIterations model steps: free 2, professional 5, with a clear outcome", async () => {
    const tools = (ctx: ReturnType<typeof make>["ctx"]) =>
      ctx.agent.tools({
        eligibility: tool({ description: "x", inputSchema: z.object({ patientRef: z.string() }), execute: async () => ({ ok: true }) }),
      });
    for (const [tier, limit] of [
      ["free", 2],
      ["professional", 5],
    ] as const) {
      us.resetStats();
      const { ctx, run } = make(`iter-${tier}`, { tier });
      const r = await run(() => ctx.agent.generate({ prompt: "fanout=1 rounds=20", tools: tools(ctx), stopWhen: () => false }));
      assert.equal(us.stats().llm.requests, limit, `${tier}: the endpoint saw ${limit} requests`);
      assert.equal(r.fairlane.stoppedBy, "max_iterations");
      assert.deepEqual(r.fairlane.iterations, { used: limit, limit });
      const again = await run(() => ctx.agent.generate({ prompt: "one more" })).catch((e: { code?: string }) => e);
      assert.equal((again as { code?: string }).code, "MAX_ITERATIONS", "no model step is left for this run");
      assert.equal(us.stats().llm.requests, limit);
    }
  });

  it("caps the tool calls of a step at ctx.parallelism, answering the rest THROTTLED (step_cap) without running them", async () => {
    us.resetStats();
    let ran = 0;
    const { ctx, run } = make("capped", { tier: "enterprise", mctc: 2 });
    const tools = ctx.agent.tools({
      eligibility: tool({
        description: "x",
        inputSchema: z.object({ patientRef: z.string() }),
        execute: async () => {
          ran++;
          return { ok: true };
        },
      }),
    });
    const r = await run(() => ctx.agent.generate({ prompt: "fanout=5 rounds=1", tools, stopWhen: () => false }));
    const first = r.steps[0]!.toolResults.map((x) => (x.output as { status?: string; reason?: string }).reason ?? "ran");
    assert.equal(first.filter((x) => x === "ran").length, 2, "parallelism is min(16, mctc) = 2: two ran");
    assert.equal(first.filter((x) => x === "step_cap").length, 3, "three came back THROTTLED step_cap");
    assert.equal(ran, 5, "every call ran in the end, in later steps");
    assert.ok(
      us
        .stats()
        .llm.toolCallsPerResponse.slice(1, -1)
        .every((n) => n <= 2),
      "later steps stayed within the cap",
    );
  });

  it("a gate THROTTLED (another run holds the tenant's permits) reaches the model with its reason; the gate keeps the downstream within mctc", async () => {
    us.resetStats();
    const spec = { tier: "enterprise", mctc: 3, toolQueueDepth: 0 } as const;
    const runs = [make("shared", spec), make("shared", spec)];
    const results = await Promise.all(
      runs.map(({ ctx, run }) =>
        run(() =>
          ctx.agent.generate({
            prompt: "fanout=3 rounds=1",
            tools: { eligibility: fhir(us, "shared", "eligibility") },
            stopWhen: () => false,
          }),
        ),
      ),
    );
    const reasons = results.flatMap((r) => r.steps.flatMap((st) => st.toolResults.map((t) => (t.output as { reason?: string }).reason)));
    assert.ok(reasons.includes("queue_full"), `the gate itself throttled some calls: ${reasons.join(",")}`);
    assert.ok(!reasons.includes("step_cap"), "no run went past its own step cap");
    assert.ok(us.stats().byTenant.shared!.peakInFlight <= 3, "never more than mctc at the downstream");
    assert.equal(us.stats().byTenant.shared!.requests, 6, "every call ran once in the end");
    for (const r of results) assert.match(r.text, /^decision: approve/);
  });

  it("governs a raw AI SDK tool passed straight to generate, and refuses a prepareStep that picks its own model", async () => {
    us.resetStats();
    const { ctx, run } = make("raw", { tier: "enterprise", mctc: 2 });
    const r = await run(() =>
      ctx.agent.generate({ prompt: "fanout=4 rounds=1", tools: { eligibility: fhir(us, "raw", "eligibility") }, stopWhen: () => false }),
    );
    const first = r.steps[0]!.toolResults.map((x) => (x.output as { reason?: string }).reason ?? "ran");
    assert.deepEqual(
      [first.filter((x) => x === "ran").length, first.filter((x) => x === "step_cap").length],
      [2, 2],
      "capped at mctc 2 like a wrapped tool",
    );
    assert.ok(us.stats().byTenant.raw!.peakInFlight <= 2);

    const euBefore = eu.stats().llm.requests;
    const other = make("own-model", { tier: "professional", dataResidency: "eu" });
    const err = await other
      .run(() => other.ctx.agent.generate({ prompt: "hi", prepareStep: () => ({ model: "anything" as never }) }))
      .catch((e: Error) => e);
    assert.match((err as Error).message, /prepareStep may not return a model/);
    assert.equal(eu.stats().llm.requests, euBefore, "nothing was sent");
  });

  it("when the deadline leaves a tool call no time, it is aborted, the run ends DEADLINE_EXCEEDED, the model is not asked again, nothing is left in flight", async () => {
    us.resetStats();
    let sawAbort = false;
    const startedAt = Date.now();
    const { ctx, run, tracking } = make("late", { tier: "enterprise" }, { deadlineMs: 1_200 });
    const tools = ctx.agent.tools({
      slow: tool({
        description: "x",
        inputSchema: z.object({ patientRef: z.string() }),
        execute: async (_i, { abortSignal }) => {
          await sleep(10_000, undefined, { signal: abortSignal }).catch((e: unknown) => {
            sawAbort = true;
            throw e;
          });
          return { ok: true };
        },
      }),
    });
    const err = await run(() => ctx.agent.generate({ prompt: "fanout=1 rounds=1", tools, stopWhen: () => false })).catch(
      (e: { code?: string }) => e,
    );
    // The call's retries stop once too little time is left for another attempt: DEADLINE_EXCEEDED ends the run then.
    assert.equal((err as { code?: string }).code, "DEADLINE_EXCEEDED");
    assert.ok(Date.now() - startedAt < 1_200 + 1_000, "by the deadline");
    assert.ok(sawAbort, "the tool's own signal fired");
    assert.equal(tracking.active.size, 0, "no tool call outlived the run");
    assert.equal(us.stats().llm.requests, 1, "the model was not asked again after the deadline");
  });

  it("two generations in one step send different idempotency keys for the same call; a re-run of the step sends the same ones", async () => {
    const keys: string[] = [];
    defineTool({
      name: "agent-keyed",
      async run(_args, c) {
        keys.push(c.idempotencyKey);
        return { ok: true };
      },
    });
    const tools = { "agent-keyed": tool({ description: "x", inputSchema: z.object({ patientRef: z.string() }) }) };
    const twice = async (ctx: ReturnType<typeof make>["ctx"]) =>
      ctx.step("plan-then-act", async () => {
        for (let i = 0; i < 2; i++) await ctx.agent.generate({ prompt: "fanout=1 rounds=1", tools, stopWhen: () => false });
        return null;
      });
    const first = make("keyed", { tier: "enterprise" });
    await first.run(() => twice(first.ctx));
    assert.equal(keys.length, 2);
    assert.notEqual(keys[0], keys[1], "the second generation's identical call is not mistaken for the first");
    // The same workflow run again (a resume whose step did not finish): the same keys, in the same order.
    const again = keys.map((k) => k.replace(/^[^:]+/, ""));
    keys.length = 0;
    const rerun = make("keyed", { tier: "enterprise" });
    await rerun.run(() => twice(rerun.ctx));
    assert.deepEqual(
      keys.map((k) => k.replace(/^[^:]+/, "")),
      again,
    );
  });

  it("a stream's textStream can be read after its promises (usage, steps), as with the SDK's own result", async () => {
    const { ctx, run } = make("reader", { tier: "professional" });
    await run(async () => {
      const s = ctx.agent.stream({ prompt: "answerTokens=5" });
      const usage = s.usage;
      let text = "";
      for await (const piece of s.textStream) text += piece;
      assert.match(text, /^decision: approve/);
      assert.ok((await usage).outputTokens! > 0);
      assert.equal((await s.fairlane).steps, 1);
    });
  });
});
