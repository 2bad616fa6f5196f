import assert from "node:assert/strict";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Downstream } from "../../src/dev/downstream/simulator.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";

/**
 * Boot on real processes (exec, dispatcher, health) against the simulated
 * downstream: the health role's first probe of fhir-gateway goes to a /health
 * endpoint that holds its answer until the test releases it, so the signal
 * stays "unknown" (first probe under way) while workflows run. The Redis
 * already knows the dependency, as after a restart on a kept Redis, where its
 * signal has expired: a missing signal there parks, an unknown one does not.
 */
describe("boot: a dependency whose first probe is under way", () => {
  let ds: Downstream;
  let d: Deployment;
  const held: ServerResponse[] = [];
  const health = createServer((_req, res) => held.push(res));
  before(async () => {
    ds = new Downstream({ capacity: 200, latencyMs: { min: 5, max: 15 }, seed: 7 });
    const url = await ds.start();
    await new Promise<void>((r) => health.listen(0, "127.0.0.1", r));
    const probeUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}/health`;
    d = await deployment(
      { clinic: { tier: "professional", mca: 10 } },
      {
        FAIRLANE_DOWNSTREAM_URL: url,
        // One probe in the test's time (the next would come 10 s later); the unknown mark lives 3 intervals.
        FAIRLANE_HEALTH_INTERVAL_MS: "10000",
        FAIRLANE_HEALTH_PROBES: JSON.stringify([
          { dep: "fhir-gateway", kind: "http", url: probeUrl, timeoutMs: 60_000, latencyThresholdMs: 60_000 },
        ]),
      },
    );
    await d.p.redis.sadd(d.p.keys.cell("default").deps, "fhir-gateway");
  });
  after(async () => {
    for (const res of held) res.destroy();
    await d.close();
    health.closeAllConnections();
    await new Promise<void>((r) => health.close(() => r()));
    await ds.stop();
  });

  it("calls it rather than parking, and takes the first probe's answer as soon as it comes", { timeout: 120_000 }, async () => {
    const cell = d.p.keys.cell("default");
    const state = () => d.p.redis.hget(cell.health("fhir-gateway"), "state");
    d.start("exec", { FAIRLANE_CONCURRENCY: "4" });
    d.start("dispatcher");
    d.start("health");
    await d.waitCapacity(4);
    for (let i = 0; i < 600 && held.length === 0; i++) await sleep(50);
    assert.equal(held.length, 1, "the health role probed at start");
    assert.equal(await state(), "unknown", "announced before probing");

    const ids = await d.admit(
      "clinic",
      Array.from({ length: 6 }, () => ({ type: "prior-auth", class: "B", payload: { steps: 2, fanout: 4, submit: false } })),
    );
    const views = await d.waitEnded(new Map(ids.map((id) => [id, "clinic"])), 25_000);
    assert.deepEqual([...new Set(views.map((v) => v.state))], ["completed"]);
    const parkedAt = await Promise.all(ids.map((id) => d.p.redis.hget(cell.workflow(id), "parkedAt")));
    assert.deepEqual(
      parkedAt,
      ids.map(() => null),
      "none was parked",
    );
    assert.ok(ds.stats().deadlines.filter((x) => x.tenant === "clinic").length >= ids.length * 8, "their calls reached the dependency");
    assert.equal(await state(), "unknown", "all of that while the first probe was still under way");

    const releasedAt = Date.now();
    held[0]!.writeHead(200).end("{}");
    while ((await state()) === "unknown" && Date.now() - releasedAt < 5_000) await sleep(20);
    assert.equal(await state(), "healthy", "one good probe at boot is enough: no second probe (10 s later) needed");
  });
});
