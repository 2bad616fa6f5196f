import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Downstream } from "../../src/dev/downstream/simulator.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";

/**
 * The `prior-auth-agent` example (Vercel AI SDK through ctx.agent) on real role processes: the model is
 * the simulated downstream's OpenAI-compatible endpoint over HTTP, and its counters say how many model
 * requests and tool calls each tenant's agent made.
 */
describe("prior-auth-agent: an AI SDK agent run by Fairlane", () => {
  let ds: Downstream;
  let d: Deployment;
  before(async () => {
    ds = new Downstream({ capacity: 200, latencyMs: { min: 10, max: 30 }, seed: 5 });
    const url = await ds.start();
    d = await deployment(
      {
        "pro-clinic": { tier: "professional", mctc: 4 },
        "free-clinic": { tier: "free" },
        "thin-budget": { tier: "professional", budget: { monthlyUsd: 0.003 } },
      },
      { FAIRLANE_DOWNSTREAM_URL: url },
    );
    d.start("exec", { FAIRLANE_CONCURRENCY: "6" });
    d.start("dispatcher");
    await d.waitCapacity(6);
  });
  after(async () => {
    await d?.close();
    await ds?.stop();
  });

  it("decides within the tier's model steps: professional approves and submits, free stops after 2 steps for review", {
    timeout: 60_000,
  }, async () => {
    const [pro] = await d.admit("pro-clinic", [{ type: "prior-auth-agent", class: "B", payload: { fanout: 4, steps: 2 } }]);
    const [free] = await d.admit("free-clinic", [{ type: "prior-auth-agent", class: "B", payload: { fanout: 6, steps: 2 } }]);
    const [proView, freeView] = await d.waitEnded(
      new Map([
        [pro!, "pro-clinic"],
        [free!, "free-clinic"],
      ]),
      45_000,
    );
    assert.equal(proView!.state, "completed", JSON.stringify(proView!.error));
    const proResult = proView!.result as { decision: string; modelSteps: number; toolCalls: number; model: string };
    assert.equal(proResult.decision, "approve");
    assert.ok(proResult.modelSteps <= 5, "within professional's 5 model steps");
    assert.equal(proResult.model, "sim-standard", "professional's model tier");
    const s = ds.stats();
    assert.equal(s.llm.byTenant["pro-clinic"], proResult.modelSteps, "the endpoint saw each of its model requests once");
    assert.ok(
      s.byTenant["pro-clinic"]!.peakInFlight <= 4,
      `its tool calls stayed within mctc 4 at the downstream (peak ${s.byTenant["pro-clinic"]!.peakInFlight})`,
    );
    assert.equal(s.byTenant["pro-clinic"]!.requests, 8 + 1, "8 evidence calls (fanout 4 × 2 rounds) and one submit reached the downstream");

    assert.equal(freeView!.state, "completed");
    assert.deepEqual((freeView!.result as { decision: string; reason: string }).decision, "needs_review");
    assert.equal((freeView!.result as { reason: string }).reason, "MAX_ITERATIONS");
    assert.equal(s.llm.byTenant["free-clinic"], 2, "free tier: the endpoint saw exactly 2 model requests");
  });

  it("charges the agent's tokens to the tenant's month: once spent, admission answers 402", { timeout: 60_000 }, async () => {
    // $0.003 a month at the standard tier ($0.4 / $1.6 per 1M tokens): one tool call ($0.0005), then an answer of
    // 2,000 tokens (~$0.0032; the step's estimate assumed 1,000 and fit) spends the month.
    const payload = { fanout: 1, steps: 1, submit: false, request: "answerTokens=2000" };
    const [id] = await d.admit("thin-budget", [{ type: "prior-auth-agent", class: "B", payload }]);
    const [view] = await d.waitEnded(new Map([[id!, "thin-budget"]]), 45_000);
    assert.equal(view!.state, "completed", JSON.stringify(view!.error));
    assert.ok((view!.result as { spentUsd: number }).spentUsd > 0.003, "the tokens it used were charged");
    await assert.rejects(
      d.admit("thin-budget", [{ type: "prior-auth-agent", class: "B", payload: {} }]),
      (err: { status?: number; code?: string }) => {
        assert.equal(err.status, 402, "the monthly budget is spent");
        return true;
      },
    );
  });
});
