import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { SPEND_TTL_SEC, TenantBudget } from "../../src/runtime/budget.ts";
import { createContext } from "../../src/runtime/context.ts";
import { TenantRateLimits } from "../../src/runtime/rateLimit.ts";
import { ToolGate } from "../../src/runtime/toolGate.ts";
import { defineTool } from "../../src/runtime/tools.ts";
import { runtimePolicy } from "../../src/tenancy/policy.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * An org's monthly budget bounds its tenants together: spend recorded for a tenant counts toward its org's
 * month, admission refuses every tenant of an org whose month is spent (402), and at run time what remains
 * of a tenant's month is min(its own remaining, its org's). Real Redis, a fake clock choosing the month.
 */
defineTool({
  name: "org-priced",
  costUsd: 10,
  async run() {
    return "done";
  },
});

const MARCH = Date.UTC(2026, 2, 10);
const BANK = { tier: "professional", org: "holding", budget: { perWorkflowUsd: 1000, monthlyUsd: 100 } } as const;

describe("org monthly budget", () => {
  let p: Platform;
  let clock: FakeClock;
  let subscriber: Redis;
  let gate: ToolGate;
  /** Another process recording spend (an exec worker elsewhere): what it writes reaches Redis only. */
  let elsewhere: TenantBudget;
  const spendOf = (who: string) => p.redis.get(elsewhere.spendKey(who)).then(Number);
  const admit = (tenant: string) =>
    p.admission.admitOne(tenant, { type: "noop" }).then(
      (r) => ({ status: r.status as number, code: undefined, message: "" }),
      (err: { status: number; code: string; message: string }) => ({ status: err.status, code: err.code, message: err.message }),
    );

  before(async () => {
    clock = new FakeClock(MARCH);
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"), clock);
    await p.registry.putOrg("holding", { budget: { monthlyUsd: 150 } });
    await p.registry.putOrg("other", { budget: { monthlyUsd: 150 } });
    await p.registry.put("bank-a", BANK);
    await p.registry.put("bank-b", BANK);
    await p.registry.put("bank-c", { ...BANK, org: "other" });
    await p.registry.put("solo", { tier: "professional", budget: { perWorkflowUsd: 1000, monthlyUsd: 100 } });
    elsewhere = new TenantBudget(p.redis, p.keys.cell("default").budgetPrefix, clock, 250, p.registry);
    subscriber = p.connect();
    gate = new ToolGate(p.redis, subscriber, p.keys, clock);
    await gate.start(["default"]);
  });
  after(async () => {
    gate.stop();
    await subscriber.quit();
    await p.close();
  });

  /** A run of `tenant` as the exec role builds it: the budget with no registry of its own (the platform's is bound). */
  function runOf(tenant: string) {
    const entry = p.registry.get(tenant)!;
    const cell = p.keys.cell("default");
    const controller = new AbortController();
    return createContext(
      {
        redis: p.redis,
        gate,
        clock,
        rateLimits: new TenantRateLimits(p.redis, cell.rateLimitPrefix),
        budget: new TenantBudget(p.redis, cell.budgetPrefix, clock, undefined, p.registry), // as workers/exec.ts builds it
        modelUrl: "http://127.0.0.1:9/none",
      },
      {
        cellName: "default",
        cell,
        workflowId: `wf_${tenant}_${clock.now()}`,
        tenant,
        cls: "B",
        type: "t",
        payload: {},
        deadlineAt: clock.now() + 60_000,
        traceId: "0".repeat(32),
        attempt: 1,
        policy: runtimePolicy(entry.policy),
        signal: controller.signal,
        park: () => controller.abort("park"),
        review: () => controller.abort("review"),
      },
    );
  }

  it("counts a tenant's spend toward its org's month in the same script call, and a lone tenant's toward no org", async () => {
    assert.equal(await elsewhere.record("bank-a", 100), 100, "the tenant's own month total");
    assert.equal(await spendOf("@holding"), 100_000_000, "the org's month, micro-dollars");
    const ttl = await p.redis.ttl(elsewhere.orgSpendKey("holding"));
    assert.ok(ttl > SPEND_TTL_SEC - 60 && ttl <= SPEND_TTL_SEC, `the org's month key expires like a tenant's (ttl ${ttl})`);
    await elsewhere.record("solo", 50);
    await elsewhere.record("bank-c", 90);
    assert.equal(await spendOf("solo"), 50_000_000);
    assert.equal(await spendOf("@other"), 90_000_000, "another org's month is its own");
    assert.equal(await spendOf("@holding"), 100_000_000, "neither touched holding's month");
  });

  it("leaves a tenant of an org the smaller of its own remaining month and its org's", async () => {
    clock.advance(1_000); // past maxAgeMs: the spend recorded elsewhere is seen
    const b = runOf("bank-b");
    assert.equal(await b.ctx.budget.decide(30), "ok", "30 of the org's 50 left");
    assert.equal(await b.ctx.budget.decide(45), "degrade", "45 is over 80 % of the org's 50, though B has 100 left");
    assert.equal(await b.ctx.budget.decide(60), "refuse", "60 fits B's own 100 but not the org's 50");
    assert.equal(await b.ctx.budget.decide(0), "ok", "a free step is always ok");
  });

  it("refuses new work of every tenant of an org whose month is spent with 402, naming the org", async () => {
    assert.equal((await admit("bank-b")).status, 202, "before: the org has 50 left");
    await elsewhere.record("bank-b", 50);
    assert.equal(await spendOf("@holding"), 150_000_000);
    assert.equal(await spendOf("bank-b"), 50_000_000, "B's own month is half spent");

    const b = await admit("bank-b");
    assert.equal(b.status, 402);
    assert.equal(b.code, "BUDGET_EXCEEDED");
    assert.match(b.message, /^org holding \(of tenant bank-b\) has spent its monthly budget of \$150$/);
    assert.doesNotMatch(b.message, /bank-a/, "no other tenant's name or figures");
    await assert.rejects(p.admission.admitBulk("bank-b", [{ type: "noop" }]), { status: 402, code: "BUDGET_EXCEEDED" });

    const a = await admit("bank-a");
    assert.equal(a.status, 402, "A's own month is spent too");
    assert.match(a.message, /^tenant bank-a has spent its monthly budget of \$100$/, "its own budget is named first");

    assert.equal((await admit("bank-c")).status, 202, "a tenant of another org is unaffected");
    assert.equal((await admit("solo")).status, 202, "a tenant of no org is unaffected");
  });

  it("refuses the spent org's tenants every costed step at run time, and no one else's", async () => {
    clock.advance(1_000);
    const b = runOf("bank-b");
    assert.equal(await b.ctx.budget.decide(0.01), "refuse");
    const call = await b.run(() => b.ctx.tool("org-priced"));
    assert.ok(!call.ok && call.code === "BUDGET_EXCEEDED", JSON.stringify(call));
    await assert.rejects(
      b.run(() => b.ctx.model({ costUsd: 0.01 })),
      { code: "BUDGET_EXCEEDED" },
    );
    assert.equal(await spendOf("@holding"), 150_000_000, "nothing more was spent");

    const c = runOf("bank-c");
    assert.equal(await c.ctx.budget.decide(0.01), "ok");
    assert.equal((await c.run(() => c.ctx.tool("org-priced"))).ok, true);
    assert.equal(await spendOf("@other"), 100_000_000, "bank-c's call counted toward its own org");
    const solo = runOf("solo");
    assert.equal(await solo.ctx.budget.decide(0.01), "ok");
  });

  it("starts the org's next month at zero", async () => {
    clock.set(Date.UTC(2026, 3, 1));
    assert.equal((await admit("bank-b")).status, 202);
    assert.equal(await runOf("bank-b").ctx.budget.decide(60), "ok");
    clock.set(MARCH + 10_000);
    assert.equal((await admit("bank-b")).status, 402, "March stays spent");
  });
});
