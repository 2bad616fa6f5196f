import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Downstream } from "../../src/dev/downstream/simulator.ts";
import { allZero, deployment, type Deployment } from "../helpers/deployment.ts";

/**
 * The outage and recovery drill on real processes (exec ×2, dispatcher,
 * health, recovery) against the simulated downstream, which counts for itself
 * every request that reaches it.
 */
const WAVE = 4;

describe("backpressure: park instead of retry, recover in waves", () => {
  let ds: Downstream;
  let d: Deployment;
  before(async () => {
    ds = new Downstream({ capacity: 500, latencyMs: { min: 20, max: 40 }, seed: 11 });
    const url = await ds.start();
    d = await deployment(
      {
        hospital: { tier: "enterprise", mca: 40, mctc: 100 },
        quiet: { tier: "professional", mca: 10 },
      },
      {
        FAIRLANE_DOWNSTREAM_URL: url,
        FAIRLANE_HEALTH_INTERVAL_MS: "300",
        FAIRLANE_RECOVERY_STABLE_MS: "900",
        FAIRLANE_RECOVERY_RATE: "8",
        FAIRLANE_RECOVERY_MAX_WAVE: String(WAVE),
      },
    );
    d.start("exec", { FAIRLANE_CONCURRENCY: "20" });
    d.start("exec", { FAIRLANE_CONCURRENCY: "20" });
    d.start("dispatcher");
    // Two of each: the monitors must agree and a parked workflow must be requeued by exactly one recovery worker.
    d.start("health");
    d.start("health");
    d.start("recovery");
    d.start("recovery");
    await d.waitCapacity(40);
    // Wait until the health monitor says healthy (2 good probes).
    const cell = d.p.keys.cell("default");
    for (let i = 0; i < 100 && (await d.p.redis.hget(cell.health("fhir-gateway"), "state")) !== "healthy"; i++) await sleep(100);
  });
  after(async () => {
    await d.close();
    await ds.stop();
  });

  it("parks workflows during an outage with bounded calls to the failing dependency, then recovers them all in waves, oldest first", {
    timeout: 120_000,
  }, async () => {
    const cell = d.p.keys.cell("default");
    const batch = Array.from({ length: 24 }, () => ({
      type: "prior-auth",
      class: "C",
      payload: { steps: 3, fanout: 4, latencyMs: 150, submit: false },
    }));
    const ids = await d.admit("hospital", batch);
    const quiet = await d.admit(
      "quiet",
      Array.from({ length: 10 }, () => ({ type: "noop", payload: { durationMs: 50 } })),
    );
    await sleep(250);
    ds.setOutage(true);
    const outageAt = Date.now();

    // Within two health intervals (plus passive detection) the workflows are parked, not retried.
    let parked = 0;
    for (let i = 0; i < 100 && parked < ids.length / 2; i++) {
      await sleep(50);
      parked = await d.p.redis.zcard(cell.parked("fhir-gateway"));
    }
    const parkedAfterMs = Date.now() - outageAt;
    assert.ok(parked > 0, "workflows were parked");
    // The quiet tenant's work does not use the dependency and is not slowed down.
    const quietViews = await d.waitEnded(new Map(quiet.map((id) => [id, "quiet"])), 20_000);
    assert.deepEqual([...new Set(quietViews.map((v) => v.state))], ["completed"]);

    // Hold the outage a while: nothing may keep calling.
    await sleep(1_500);
    // Calls the failing dependency answered with an error (those in flight when it failed, and any sent
    // after), and calls that arrived after it failed: the downstream's own counts.
    const failed = ds.stats().failed;
    const after = ds.stats().deadlines.filter((x) => x.receivedAt >= outageAt && x.tenant === "hospital");
    // The downstream runs in this process, so a call sent just before the flip can be stamped
    // just after it on a busy CPU: up to one fan-out batch (4 distinct keys) per workflow may
    // have been in flight. New calls are the keys beyond that batch, and any key sent again.
    const keysOf = new Map<string, string[]>();
    for (const x of after) {
      const k = String(x.idempotencyKey);
      const wf = k.slice(0, k.lastIndexOf(":", k.lastIndexOf(":") - 1));
      keysOf.set(wf, [...(keysOf.get(wf) ?? []), k]);
    }
    let newCalls = 0;
    for (const keys of keysOf.values()) newCalls += Math.max(0, new Set(keys).size - 4) + (keys.length - new Set(keys).size);
    const perWorkflow = failed / ids.length;
    console.log(
      JSON.stringify({
        parkedAfterMs,
        parked,
        failedCalls: failed,
        arrivedDuringOutage: after.length,
        newCallsAfterFailure: newCalls,
        workflows: ids.length,
        failedPerWorkflow: perWorkflow,
      }),
    );
    assert.ok(failed > 0, "the outage was hit");
    assert.ok(perWorkflow <= 4, `at most the one fan-out batch (4) in flight per workflow failed: ${perWorkflow}`);
    assert.ok(newCalls <= ids.length, `at most one new call per workflow after the failure: ${newCalls}`);
    const stillCalling = ds.stats().deadlines.filter((x) => x.receivedAt >= Date.now() - 1_000 && x.tenant === "hospital").length;
    assert.equal(stillCalling, 0, "no retry storm: nothing reached the dependency in the last second of the outage");

    // Recovery: everything completes, in waves no larger than configured, oldest parked first.
    ds.setOutage(false);
    const views = await d.waitEnded(new Map(ids.map((id) => [id, "hospital"])), 90_000);
    assert.deepEqual(
      [...new Set(views.map((v) => v.state))],
      ["completed"],
      JSON.stringify(views.find((v) => v.state !== "completed")?.error),
    );
    const recs = await Promise.all(ids.map((id) => d.p.redis.hmget(cell.workflow(id), "recoveredAt", "parkedAt")));
    const recovered = recs.filter((r) => r[0]).map((r) => ({ at: Number(r[0]), parkedAt: Number(r[1]) }));
    const waves = new Map<number, number>();
    for (const r of recovered) waves.set(r.at, (waves.get(r.at) ?? 0) + 1);
    assert.ok(Math.max(...waves.values()) <= WAVE, `waves: ${[...waves.values()].join(",")}`);
    const byRecovery = [...recovered].sort((a, b) => a.at - b.at);
    for (let i = 1; i < byRecovery.length; i++)
      if (byRecovery[i]!.at > byRecovery[i - 1]!.at)
        assert.ok(byRecovery[i]!.parkedAt >= byRecovery[i - 1]!.parkedAt, "oldest parked first");
    assert.ok(
      views.every((v) => v.attempts === 1),
      "parking used no attempt",
    );
    await sleep(300);
    const c = await d.counters();
    assert.ok(allZero(c), JSON.stringify(c));
    assert.equal(await d.p.redis.zcard(cell.parked("fhir-gateway")), 0);
  });
});
