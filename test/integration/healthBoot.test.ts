import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createKeys, type Keys } from "../../queues/keys.ts";
import { HealthMonitor, type ProbeSpec } from "../../src/backpressure/healthMonitor.ts";
import type { ProbeOutcome } from "../../src/backpressure/healthRule.ts";
import { HealthStore } from "../../src/backpressure/healthStore.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * Dependency health at boot, on a real Redis: a starting monitor marks what it
 * has not probed yet "unknown" (workflows call it, /readyz waits), takes its
 * first answer as it is, and never overwrites a verdict already there. Probes
 * are functions the test answers by hand, so nothing sleeps; a FakeClock
 * stamps `since`.
 */

const log = createLogger("health-boot-test", "silent");
const ok: ProbeOutcome = { ok: true, latencyMs: 3, detail: "status 200" };
const fail: ProbeOutcome = { ok: false, latencyMs: 2_000, detail: "timeout after 2000 ms" };
/** An interval far beyond any test: the first round is the only one, and a held probe never times out. */
const INTERVAL = 60_000;

/** A probe that answers when the test says so; `asked` settles when the monitor has called it. */
function heldProbe(dep: string): { spec: ProbeSpec; asked: Promise<void>; answer(o: ProbeOutcome): void } {
  let asked!: () => void;
  let answer!: (o: ProbeOutcome) => void;
  const askedP = new Promise<void>((r) => (asked = r));
  const answered = new Promise<ProbeOutcome>((r) => (answer = r));
  return {
    spec: { dep, kind: "fn", fn: () => (asked(), answered) },
    asked: askedP,
    answer,
  };
}

const answers = (o: ProbeOutcome) => async () => o;

describe("health at boot", () => {
  const cells = ["east", "west"];
  let redis: Redis;
  let keys: Keys;
  before(async () => {
    redis = connect(await testRedisUrl());
    keys = createKeys(freshPrefix());
  });
  after(() => redis.quit());

  it("marks a dependency unknown in every cell while its first probe is under way; workflows may call it; the first answer is taken as it is", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new HealthStore(redis, keys, cells, clock);
    const probe = heldProbe("gateway");
    const monitor = new HealthMonitor(store, [probe.spec], clock, log, { intervalMs: INTERVAL });
    monitor.start();
    try {
      await probe.asked;
      for (const cell of cells) {
        assert.deepEqual(
          await store.read(cell, "gateway"),
          { state: "unknown", since: clock.now(), detail: "first probe under way", source: "probe" },
          cell,
        );
        assert.equal(await store.isHealthy(cell, "gateway"), true, `${cell}: called, not parked, before the first verdict`);
        const ttl = await redis.pttl(keys.cell(cell).health("gateway"));
        assert.ok(ttl > 0 && ttl <= 3 * INTERVAL, `expires like a probe signal if the monitor dies: ${ttl}`);
      }
      assert.equal(await store.firstProbesPending(), 2, "one per cell");

      clock.advance(250);
      probe.answer(ok);
      await monitor.firstRound;
      for (const cell of cells)
        assert.deepEqual(
          await store.read(cell, "gateway"),
          { state: "healthy", since: clock.now(), detail: "status 200", source: "probe" },
          "one good probe at boot is healthy",
        );
      assert.equal(await store.firstProbesPending(), 0);
    } finally {
      await monitor.stop();
    }
  });

  it("writes a first answer that fails as degraded at once, and workflows park", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new HealthStore(redis, keys, cells, clock);
    const probe = heldProbe("ledger");
    const monitor = new HealthMonitor(store, [probe.spec], clock, log, { intervalMs: INTERVAL });
    monitor.start();
    try {
      await probe.asked;
      assert.equal(await store.isHealthy("east", "ledger"), true);
      probe.answer(fail);
      await monitor.firstRound;
      assert.equal((await store.read("east", "ledger"))?.state, "degraded");
      assert.equal(await store.isHealthy("east", "ledger"), false);
      assert.equal(await store.firstProbesPending(), 0, "a failed probe is a verdict too");
    } finally {
      await monitor.stop();
    }
  });

  it("leaves a signal it finds alone: another monitor's verdict (and its TTL), a passive downgrade, an operator's mark", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new HealthStore(redis, keys, cells, clock);
    await store.write("payer", { state: "down", since: clock.now(), detail: "status 503", source: "probe" }, 20_000);
    await store.markDegraded("bureau", "passive: 3 of 5 calls failed", 15_000);
    await store.override("archive", "down", "alice");
    const monitor = new HealthMonitor(
      store,
      ["payer", "bureau", "archive", "fresh"].map((dep): ProbeSpec => ({ dep, kind: "fn", fn: answers(ok) })),
      clock,
      log,
      { intervalMs: INTERVAL },
    );
    await monitor.announce();
    for (const cell of cells) {
      assert.equal((await store.read(cell, "payer"))?.state, "down");
      assert.ok((await redis.pttl(keys.cell(cell).health("payer"))) <= 20_000, "its TTL is not extended");
      assert.deepEqual([(await store.read(cell, "bureau"))?.state, (await store.read(cell, "bureau"))?.source], ["degraded", "passive"]);
      assert.equal((await store.read(cell, "archive"))?.state, "down", "the operator's mark still wins");
      assert.equal((await store.read(cell, "fresh"))?.state, "unknown");
    }
    assert.equal(await store.firstProbesPending(), 2, "only the dependency with no signal, once per cell");

    clock.advance(1_000);
    const first = await monitor.probeOnce();
    assert.equal(first["fresh"]!.state, "healthy");
    assert.equal(first["bureau"]!.state, "degraded", "evidence of failure keeps its hysteresis: one good probe is not enough");
    assert.equal(first["payer"]!.state, "down", "resumed from the stored verdict, not from unknown");
    assert.equal((await store.read("west", "archive"))?.state, "down");
  });
});

describe("/readyz and the first health probe", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({});
  });
  after(() => api.stop());

  it("is not ready while a watched dependency awaits its first probe, and ready once every first verdict is written, good or bad", async () => {
    assert.equal((await http(api.base, "GET", "/readyz")).status, 200, "no health role: nothing to wait for");
    const p = api.platform;
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new HealthStore(p.redis, p.keys, p.config.FAIRLANE_CELLS.split(","), clock);
    const gw = heldProbe("fhir-gateway");
    const db = heldProbe("ledger-db");
    const monitor = new HealthMonitor(store, [gw.spec, db.spec], clock, log, { intervalMs: INTERVAL });
    monitor.start();
    try {
      await Promise.all([gw.asked, db.asked]);
      const pending = await http(api.base, "GET", "/readyz");
      assert.equal(pending.status, 503);
      assert.deepEqual(pending.body, { ok: false, redis: "up", firstProbesPending: 2 });

      gw.answer(ok);
      // Its verdict is written while ledger-db's probe is still held (each read is one round trip; nothing sleeps).
      for (let i = 0; i < 1_000 && (await store.read("default", "fhir-gateway"))?.state !== "healthy"; i++);
      const half = await http(api.base, "GET", "/readyz");
      assert.deepEqual([half.status, half.body.firstProbesPending], [503, 1], "ledger-db still awaits its first probe");

      db.answer(fail);
      await monitor.firstRound;
      const ready = await http(api.base, "GET", "/readyz");
      assert.equal(ready.status, 200, "a failed first probe is a verdict: ready, and its workflows park");
      assert.deepEqual(ready.body, { ok: true, redis: "up" });
    } finally {
      await monitor.stop();
    }
  });
});
