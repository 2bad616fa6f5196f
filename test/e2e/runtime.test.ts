import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Downstream } from "../../src/dev/downstream/simulator.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";

/**
 * The workflow runtime on real exec processes against the simulated
 * downstream, which is the observer here: it counts its own in-flight
 * requests per tenant, aborted connections, idempotency keys and the
 * deadline headers it received.
 */
const ended = (ids: string[], tenant: string) => new Map(ids.map((id) => [id, tenant]));

describe("workflow runtime against the simulated downstream", () => {
  let ds: Downstream;
  let d: Deployment;
  let url: string;
  before(async () => {
    ds = new Downstream({ capacity: 500, latencyMs: { min: 30, max: 60 }, seed: 7 });
    url = await ds.start();
    d = await deployment(
      {
        clinic: { tier: "professional", mca: 20, mctc: 5, mctcBatch: 3, toolWaitTimeoutMs: 20_000, deadline: { toolRetries: 0 } },
        lab: { tier: "professional", mca: 20, mctc: 4, mctcBatch: 3, toolWaitTimeoutMs: 20_000 },
        short: { tier: "professional", mca: 20, mctc: 50 },
        durable: { tier: "professional", mca: 5, mctc: 50 },
        narrow: { tier: "professional", mca: 5, mctc: 2, toolQueueDepth: 1, toolWaitTimeoutMs: 5_000, deadline: { toolRetries: 0 } },
        live: { tier: "professional", mca: 20, mctc: 2, toolWaitTimeoutMs: 20_000, paused: true },
      },
      { FAIRLANE_DOWNSTREAM_URL: url, FAIRLANE_LOCK_MS: "2000" },
    );
    d.start("exec", { FAIRLANE_CONCURRENCY: "10" });
    d.start("exec", { FAIRLANE_CONCURRENCY: "10" });
    d.start("dispatcher");
    await d.waitCapacity(20);
  });
  after(async () => {
    await d.close();
    await ds.stop();
  });

  it("never lets a tenant's concurrent tool calls exceed mctc (mctcBatch for Class C), across exec processes", {
    timeout: 120_000,
  }, async () => {
    ds.resetStats();
    const b = await d.admit(
      "clinic",
      Array.from({ length: 8 }, () => ({ type: "prior-auth", class: "B", payload: { steps: 2, fanout: 6 } })),
    );
    const l = await d.admit(
      "lab",
      Array.from({ length: 8 }, () => ({ type: "prior-auth", class: "C", payload: { steps: 2, fanout: 6 } })),
    );
    const views = await d.waitEnded(new Map([...ended(b, "clinic"), ...ended(l, "lab")]), 90_000);
    assert.deepEqual(
      [...new Set(views.map((v) => v.state))],
      ["completed"],
      JSON.stringify(views.find((v) => v.state !== "completed")?.error),
    );
    const s = ds.stats();
    assert.equal(s.byTenant.clinic!.peakInFlight, 5, "clinic reaches its mctc of 5 and never more");
    assert.ok(s.byTenant.lab!.peakInFlight <= 3, `lab's Class C calls peak at ${s.byTenant.lab!.peakInFlight} (mctcBatch 3)`);
    const held = await d.p.redis.zcard(d.p.keys.cell("default").gate("clinic").held);
    assert.equal(held, 0, "no permit left held");
  });

  it("applies an operator's mctc change to workflows admitted before it (the live policy, not the admission snapshot)", {
    timeout: 60_000,
  }, async () => {
    ds.resetStats();
    // Admitted under mctc 2 while the tenant is paused; the operator raises mctc, then resumes.
    const ids = await d.admit(
      "live",
      Array.from({ length: 4 }, () => ({
        type: "prior-auth",
        class: "B",
        payload: { steps: 1, fanout: 6, latencyMs: 300, submit: false },
      })),
    );
    await d.p.registry.put("live", { tier: "professional", mca: 20, mctc: 6, toolWaitTimeoutMs: 20_000, paused: true });
    await sleep(800); // every exec process sees the new policy (polled every 250 ms)
    await d.p.registry.put("live", { tier: "professional", mca: 20, mctc: 6, toolWaitTimeoutMs: 20_000, paused: false });
    const views = await d.waitEnded(ended(ids, "live"), 45_000);
    assert.deepEqual([...new Set(views.map((v) => v.state))], ["completed"]);
    assert.equal(ds.stats().byTenant.live!.peakInFlight, 6, "the new mctc of 6 binds, not the admitted 2");
  });

  it("sends the workflow's deadline with every call, and no call outlives its workflow", { timeout: 60_000 }, async () => {
    ds.resetStats();
    const deadlineAt = new Date(Date.now() + 1_500).toISOString();
    const ids = await d.admit("short", [
      { type: "prior-auth", class: "B", deadlineAt, payload: { steps: 3, fanout: 6, latencyMs: 5_000 } },
    ]);
    const [view] = await d.waitEnded(ended(ids, "short"), 30_000);
    assert.equal(view!.state, "failed");
    assert.equal(view!.error!.code, "DEADLINE_EXCEEDED");
    const s = ds.stats();
    assert.equal(s.byTenant.short!.inFlight, 0, "nothing still running at the downstream once the workflow ended");
    assert.ok(s.aborted >= 6, `the fan-out was aborted at the deadline (${s.aborted} aborted)`);
    const headers = s.deadlines.filter((x) => x.tenant === "short");
    assert.ok(headers.length >= 6);
    for (const h of headers) assert.equal(h.deadlineHeader, view!.deadlineAt, "the header is the workflow's own deadline");
    assert.equal(await d.p.redis.zcard(d.p.keys.cell("default").gate("short").held), 0);
  });

  it("re-runs only the unfinished step after the worker running it is killed (counted at the downstream)", {
    timeout: 120_000,
  }, async () => {
    ds.resetStats();
    const victim = d.start("exec", { FAIRLANE_CONCURRENCY: "1", FAIRLANE_POOL: "durable" });
    await d.p.registry.put("durable", { tier: "professional", mca: 5, mctc: 50, pools: ["durable"] });
    await d.waitCapacity(1, "durable");
    const [id] = await d.admit("durable", [
      { type: "prior-auth", class: "B", payload: { steps: 3, fanout: 4, latencyMs: 400, submit: false } },
    ]);
    const keysOf = () =>
      ds
        .stats()
        .deadlines.filter((x) => x.idempotencyKey?.startsWith(`${id}:`))
        .map((x) => x.idempotencyKey!);
    while (!keysOf().some((k) => k.includes(":reason-2:"))) await sleep(20);
    await victim.kill9();
    d.start("exec", { FAIRLANE_CONCURRENCY: "1", FAIRLANE_POOL: "durable" });
    const [view] = await d.waitEnded(ended([id!], "durable"), 60_000);
    assert.equal(view!.state, "completed");
    assert.equal(view!.attempts, 2, "it ran again after the kill");
    const keys = keysOf();
    const count = (step: string) => keys.filter((k) => k.includes(`:${step}:`)).length;
    assert.equal(count("reason-0"), 4, "finished steps are not called again");
    assert.equal(count("reason-1"), 4);
    assert.ok(count("reason-2") > 4, "the unfinished step ran again");
  });

  it("cuts a model stream that outlives its time box mid-way; the downstream sees the connection close", { timeout: 60_000 }, async () => {
    ds.resetStats();
    const deadlineAt = new Date(Date.now() + 2_000).toISOString();
    const ids = await d.admit("short", [{ type: "discharge-summary", class: "B", deadlineAt, payload: { tokens: 400 } }]);
    const [view] = await d.waitEnded(ended(ids, "short"), 30_000);
    assert.equal(view!.state, "completed");
    assert.deepEqual([(view!.result as { written: boolean }).written, (view!.result as { cut: string }).cut], [false, "time_box"]);
    await sleep(100);
    assert.equal(ds.stats().modelStreams.cutMidway, 1);
  });

  it("drops an agent's fan-out to sequential after THROTTLED and widens again as calls pass (arrivals at the downstream)", {
    timeout: 60_000,
  }, async () => {
    ds.resetStats();
    // Two short agents take the 2 permits and the 1-deep queue; a long agent arriving next is throttled,
    // then runs alone once they finish.
    const short = await d.admit(
      "narrow",
      Array.from({ length: 2 }, () => ({
        type: "prior-auth",
        class: "B",
        payload: { steps: 1, fanout: 8, latencyMs: 150, submit: false },
      })),
    );
    await sleep(100);
    const [id] = await d.admit("narrow", [
      { type: "prior-auth", class: "B", payload: { steps: 4, fanout: 8, latencyMs: 150, submit: false } },
    ]);
    const views = await d.waitEnded(ended([...short, id!], "narrow"), 60_000);
    assert.deepEqual([...new Set(views.map((v) => v.state))], ["completed"], JSON.stringify(views.map((v) => v.error)));
    const long = views.find((v) => v.id === id)!;
    assert.ok((long.result as { throttled: number }).throttled >= 1, "the late agent was throttled");
    // Width = requests of this workflow arriving together (within 40 ms of the first of a burst).
    const arrivals = ds
      .stats()
      .deadlines.filter((x) => x.idempotencyKey?.startsWith(`${id}:`))
      .map((x) => x.receivedAt)
      .sort((a, b) => a - b);
    const widths: number[] = [];
    for (let i = 0; i < arrivals.length; ) {
      let j = i;
      while (j < arrivals.length && arrivals[j]! - arrivals[i]! < 40) j++;
      widths.push(j - i);
      i = j;
    }
    const firstOne = widths.indexOf(1);
    assert.ok(firstOne >= 0, `went sequential: ${widths.join(",")}`);
    assert.ok(
      widths.slice(firstOne).some((w) => w >= 2),
      `widened again: ${widths.join(",")}`,
    );
    assert.ok(Math.max(...widths) <= 2, "never wider than mctc");
  });
});
