import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { metrics, registry } from "../../src/observability/metrics.ts";
import { TenantBudget } from "../../src/runtime/budget.ts";
import { createContext, currentWorkflow } from "../../src/runtime/context.ts";
import type { ToolGate } from "../../src/runtime/toolGate.ts";
import { defineTool } from "../../src/runtime/tools.ts";
import { resolvePolicy, runtimePolicy, type PolicySpec } from "../../src/tenancy/policy.ts";
import { contextDeps, startTestGate } from "../helpers/gate.ts";
import { HealthCache } from "../../src/backpressure/healthCache.ts";
import { HealthStore } from "../../src/backpressure/healthStore.ts";

/** The WorkflowContext in-process, on a real Redis: tool policy, fan-out abort, AsyncLocalStorage, metrics. */
let running = 0;
let peak = 0;
defineTool({
  name: "ctx-slow",
  async run(args: { ms: number; fail?: boolean }, ctx) {
    running++;
    peak = Math.max(peak, running);
    try {
      if (args.fail) throw new Error("downstream said no");
      await sleep(args.ms, undefined, { signal: ctx.signal });
      return { tenant: currentWorkflow()?.tenant, key: ctx.idempotencyKey };
    } finally {
      running--;
    }
  },
});

let depCalls = 0;
defineTool({
  name: "ctx-dep",
  dependency: "ctx-db",
  async run() {
    depCalls++;
    return "reached";
  },
});

defineTool({
  name: "ctx-priced",
  costUsd: 0.45,
  async run() {
    return "done";
  },
});

describe("workflow context", () => {
  let redis: Redis;
  let keys: Keys;
  let gate: ToolGate;
  let close: () => Promise<void>;
  before(async () => {
    ({ redis, keys, gate, close } = await startTestGate());
  });
  after(() => close());

  function make(tenant: string, spec: PolicySpec, deadlineMs = 10_000, health?: HealthCache, parked?: string[]) {
    const r = resolvePolicy(spec);
    assert.ok(r.ok);
    const cell = keys.cell("default");
    const controller = new AbortController();
    return createContext(
      { ...contextDeps(redis, gate, keys), ...(health ? { health } : {}) },
      {
        cellName: "default",
        cell,
        workflowId: `wf_${tenant}`,
        tenant,
        cls: "B",
        type: "t",
        payload: {},
        deadlineAt: Date.now() + deadlineMs,
        traceId: "0".repeat(32),
        attempt: 1,
        policy: runtimePolicy(r.policy),
        signal: controller.signal,
        park: (dep) => {
          parked?.push(dep);
          controller.abort("park");
        },
        review: () => controller.abort("review"),
      },
    );
  }

  it("refuses a denied tool whatever the handler asks, and counts it", async () => {
    const { ctx, run } = make("denied", { tier: "free", deniedTools: ["ctx-slow"] });
    const r = await run(() => ctx.tool("ctx-slow", { ms: 1 }));
    assert.ok(!r.ok && r.code === "TOOL_NOT_ALLOWED");
    const text = await registry.metrics();
    assert.match(text, /fairlane_tool_calls_total\{tenant="denied",outcome="TOOL_NOT_ALLOWED"\} 1/);
  });

  it("parks a call whose dependency another process marked degraded, before this process hears of it", async () => {
    // This process's view: healthy, fresh (it would not look again for a second). Another process's failed call
    // then marks the dependency degraded in Redis; its announcement has not reached this process.
    const cache = new HealthCache(new HealthStore(redis, keys, ["default"], systemClock), () => Date.now(), 60_000);
    cache.set("default", "ctx-db", true);
    const before = make("dep-ok", { tier: "professional" }, 10_000, cache);
    const ok = await before.run(() => before.ctx.tool("ctx-dep", {}));
    assert.ok(ok.ok, "healthy: the call goes through");
    assert.equal(depCalls, 1);

    await new HealthStore(redis, keys, ["default"], systemClock).markDegraded("ctx-db", "passive: elsewhere", 15_000);
    assert.equal(cache.peek("default", "ctx-db"), true, "this process still believes it healthy");
    const parked: string[] = [];
    const { ctx, run } = make("dep-down", { tier: "professional" }, 10_000, cache, parked);
    const r = await run(() => ctx.tool("ctx-dep", {}));
    assert.ok(!r.ok && r.code === "PARKED", JSON.stringify(r));
    assert.equal(depCalls, 1, "the dependency was not called");
    assert.deepEqual(parked, ["ctx-db"], "the workflow parks on it");
    assert.equal(await redis.zcard(keys.cell("default").gate("dep-down").held), 0, "no permit held");
    assert.equal(cache.peek("default", "ctx-db"), false, "and this process knows now");
  });

  it("aborts fan-out siblings when one fails, releasing their permits", async () => {
    const { ctx, run, tracking } = make("fan", { tier: "professional", mctc: 10 });
    const out = await run(() =>
      ctx.all([
        { tool: "ctx-slow", args: { ms: 5_000 } },
        { tool: "ctx-slow", args: { ms: 5_000 } },
        { tool: "ctx-slow", args: { ms: 20, fail: true } },
      ]),
    );
    assert.deepEqual(
      out.map((r) => (r.ok ? "ok" : r.code)),
      ["ABORTED", "ABORTED", "TOOL_ERROR"],
    );
    assert.equal(tracking.active.size, 0, "no orphaned call");
    assert.equal(running, 0);
    assert.equal(await redis.zcard(keys.cell("default").gate("fan").held), 0, "no permit left held");
  });

  it("carries the workflow's tenant through AsyncLocalStorage into code deep in the call stack, per step", async () => {
    const a = make("tenant-a", { tier: "professional" });
    const b = make("tenant-b", { tier: "professional" });
    const [ra, rb] = await Promise.all([
      a.run(() => a.ctx.step("s1", () => a.ctx.tool<{ tenant: string; key: string }>("ctx-slow", { ms: 30 }))),
      b.run(() => b.ctx.tool<{ tenant: string; key: string }>("ctx-slow", { ms: 10 })),
    ]);
    assert.ok(ra.ok && rb.ok);
    assert.equal(ra.value.tenant, "tenant-a");
    assert.equal(rb.value.tenant, "tenant-b");
    assert.equal(ra.value.key, "wf_tenant-a:s1:0", "idempotency key: workflow, step, call index");
    const again = await a.run(() => a.ctx.step("s1", async () => "not run"));
    assert.deepEqual(again, ra, "a finished step is not run again");
    // What the run's end is told (FinishInput.steps): whether it left a steps hash to expire with its record.
    assert.equal(a.tracking.wroteSteps, true, "a run that checkpointed a step has step results");
    assert.equal(await redis.exists(keys.cell("default").steps("wf_tenant-a")), 1);
    assert.equal(b.tracking.wroteSteps, false, "a run that checkpointed none has none");
    assert.equal(await redis.exists(keys.cell("default").steps("wf_tenant-b")), 0);
  });

  it("applies a tenant's rate limit to its own calls only", async () => {
    const limited = make("bureau-heavy", { tier: "professional", rateLimits: { "ctx-slow": { limit: 1, per: "hour" } } }, 2_000);
    const other = make("bureau-light", { tier: "professional", rateLimits: { "ctx-slow": { limit: 1, per: "hour" } } }, 2_000);
    const first = await limited.run(() => limited.ctx.tool("ctx-slow", { ms: 1 }));
    const second = await limited.run(() => limited.ctx.tool("ctx-slow", { ms: 1 }));
    const others = await other.run(() => other.ctx.tool("ctx-slow", { ms: 1 }));
    assert.equal(first.ok, true);
    assert.ok(
      !second.ok && second.code === "RATE_LIMITED" && second.retryAfterMs > 0,
      "the hour window does not reopen before the deadline",
    );
    assert.equal(others.ok, true, "another tenant's limit is its own");
  });

  it("refuses a call that would overspend the workflow's budget, and says degrade before that", async () => {
    const { ctx, run } = make("thrifty", { tier: "free", budget: { perWorkflowUsd: 1, monthlyUsd: 100 } });
    assert.equal(await ctx.budget.decide(0.45), "ok");
    assert.equal((await run(() => ctx.tool("ctx-priced"))).ok, true);
    assert.equal(await ctx.budget.decide(0.45), "degrade", "0.45 of the 0.55 left is over 80 %");
    assert.equal((await run(() => ctx.tool("ctx-priced"))).ok, true);
    const third = await run(() => ctx.tool("ctx-priced"));
    assert.ok(!third.ok && third.code === "BUDGET_EXCEEDED");
    assert.ok(Math.abs(ctx.budget.spentUsd - 0.9) < 1e-9);
  });

  it("adds a tool call's cost to the tenant's month with its permit's release, and refuses past the month", async () => {
    const { ctx, run } = make("monthly", { tier: "free", budget: { perWorkflowUsd: 10, monthlyUsd: 1 } });
    assert.equal((await run(() => ctx.tool("ctx-priced"))).ok, true);
    assert.equal((await run(() => ctx.tool("ctx-priced"))).ok, true);
    const cell = keys.cell("default");
    const month = new TenantBudget(redis, cell.budgetPrefix, systemClock).spendKey("monthly");
    assert.equal(await redis.get(month), "900000", "0.9 USD in micro-dollars, in Redis");
    assert.equal(await redis.exists(...Object.values(cell.gate("monthly"))), 0, "both permits given back");
    // This process learnt the new total from the release itself: 0.1 USD left, no read needed.
    const third = await run(() => ctx.tool("ctx-priced"));
    assert.ok(!third.ok && third.code === "BUDGET_EXCEEDED", JSON.stringify(third));
    assert.equal(await redis.get(month), "900000", "a refused call costs nothing");
  });

  it("keeps the deadline read-only", () => {
    const { ctx } = make("frozen", { tier: "free" });
    assert.throws(() => {
      (ctx as { deadlineAt: number | null }).deadlineAt = Date.now() + 3_600_000;
    });
  });

  it("exports per-tenant gate waits and in-flight calls", async () => {
    metrics.toolCalls.reset();
    const { ctx, run } = make("metered", { tier: "professional", mctc: 2 });
    await run(() =>
      ctx.all([
        { tool: "ctx-slow", args: { ms: 30 } },
        { tool: "ctx-slow", args: { ms: 30 } },
      ]),
    );
    const text = await registry.metrics();
    assert.match(text, /fairlane_tool_calls_total\{tenant="metered",outcome="ok"\} 2/);
    assert.match(text, /fairlane_tool_gate_wait_seconds_count\{tenant="metered"\} 2/);
    assert.match(text, /fairlane_tool_calls_in_flight\{tenant="metered"\} 0/);
  });
});
