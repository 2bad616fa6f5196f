import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { createKeys, type Keys } from "../../queues/keys.ts";
import { HealthMonitor, runProbe, type ProbeSpec } from "../../src/backpressure/healthMonitor.ts";
import { HealthStore } from "../../src/backpressure/healthStore.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { connect } from "../../src/lib/redis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform } from "../../src/platform.ts";
import { parseHealthProbes, startHealthRole } from "../../workers/health.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The health monitor against a real Redis and a tiny local HTTP server whose
 * /health answers `status` after `delayMs`. Rounds are driven by hand with
 * probeOnce(); the FakeClock only stamps `since`. The only waits are the
 * server's short delays and one 50 ms-interval start/stop case.
 */

const log = createLogger("health-test", "silent");

/** A local /health endpoint to switch between answers. */
class FakeDependency {
  status = 200;
  delayMs = 0;
  hits = 0;
  private readonly server: Server = createServer((req, res) => {
    this.hits++;
    const answer = () => res.writeHead(req.url === "/health" ? this.status : 404).end("{}");
    if (this.delayMs > 0) setTimeout(answer, this.delayMs);
    else answer();
  });
  url = "";
  port = 0;
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}/health`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A loopback port nothing listens on: bind it, then free it. */
async function unusedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe("HealthMonitor", () => {
  const cells = ["east", "west"];
  let redis: Redis;
  let keys: Keys;
  let dep: FakeDependency;
  before(async () => {
    redis = connect(await testRedisUrl());
    keys = createKeys(freshPrefix());
    dep = new FakeDependency();
    await dep.start();
  });
  after(async () => {
    await dep.stop();
    await redis.quit();
  });

  const newStore = (clock: FakeClock) => new HealthStore(redis, keys, cells, clock);
  const states = async (store: HealthStore, name: string) =>
    Promise.all(cells.map(async (c) => (await store.read(c, name))?.state ?? "missing"));

  it("drives a dependency from degraded to down after 3 failing rounds and back to healthy after 2 good ones", async () => {
    const clock = new FakeClock();
    const store = newStore(clock);
    const monitor = new HealthMonitor(store, [{ dep: "gateway", kind: "http", url: dep.url }], clock, log, { intervalMs: 5_000 });
    dep.status = 503;
    const seen: string[] = [];
    for (let round = 0; round < 3; round++) {
      clock.advance(5_000);
      const r = await monitor.probeOnce();
      seen.push(r["gateway"]!.state);
      assert.equal(r["gateway"]!.detail, "status 503");
    }
    assert.deepEqual(seen, ["degraded", "degraded", "down"]);
    const downAt = clock.now();
    assert.deepEqual(await states(store, "gateway"), ["down", "down"], "written to every cell");
    assert.equal(await store.isHealthy("east", "gateway"), false);
    const ttl = await redis.pttl(keys.cell("west").health("gateway"));
    assert.ok(ttl > 14_000 && ttl <= 15_000, `TTL is 3 intervals: ${ttl}`);

    dep.status = 200;
    clock.advance(5_000);
    const first = (await monitor.probeOnce())["gateway"]!;
    assert.deepEqual(first, { state: "down", since: downAt, detail: "status 200", source: "probe" }, "one good round is not enough");
    clock.advance(5_000);
    const second = (await monitor.probeOnce())["gateway"]!;
    assert.deepEqual(second, { state: "healthy", since: clock.now(), detail: "status 200", source: "probe" });
    assert.deepEqual(await states(store, "gateway"), ["healthy", "healthy"]);

    dep.status = 500;
    assert.equal((await monitor.probeOnce())["gateway"]!.state, "degraded", "healthy degrades on the first failure");
  });

  it("never writes a probe's 'healthy' over a passive downgrade made while that probe was under way", async () => {
    const clock = new FakeClock();
    const store = newStore(clock);
    let markDuringProbe = false;
    const probe: ProbeSpec = {
      dep: "claims",
      kind: "fn",
      fn: async () => {
        // The outage begins after the probe was sent: a tool call fails and marks the dependency meanwhile.
        if (markDuringProbe) {
          await redis.ping(); // after the round has read the stored signal, if it reads it beside the probe
          await store.markDegraded("claims", "passive: 1 of 1 calls failed", 15_000);
        }
        return { ok: true, latencyMs: 1, detail: "ok" };
      },
    };
    const monitor = new HealthMonitor(store, [probe], clock, log, { intervalMs: 5_000 });
    for (let round = 0; round < 2; round++) clock.advance(5_000), await monitor.probeOnce();
    assert.deepEqual(await states(store, "claims"), ["healthy", "healthy"]);
    markDuringProbe = true;
    clock.advance(5_000);
    assert.equal((await monitor.probeOnce())["claims"]!.state, "degraded", "the passive mark demotes this round");
    assert.deepEqual(await states(store, "claims"), ["degraded", "degraded"]);
  });

  it("probes an unreachable TCP port as failed and a listening one as passed", async () => {
    const port = await unusedPort();
    const refused = await runProbe({ dep: "db", kind: "tcp", host: "127.0.0.1", port, timeoutMs: 1_000 });
    assert.equal(refused.ok, false);
    assert.equal(refused.detail, "ECONNREFUSED");
    const listening = await runProbe({ dep: "db", kind: "tcp", host: "127.0.0.1", port: dep.port, timeoutMs: 1_000 });
    assert.equal(listening.ok, true, listening.detail);

    const clock = new FakeClock();
    const store = newStore(clock);
    const monitor = new HealthMonitor(store, [{ dep: "ledger-db", kind: "tcp", host: "127.0.0.1", port }], clock, log);
    for (let i = 0; i < 3; i++) await monitor.probeOnce();
    assert.deepEqual(await states(store, "ledger-db"), ["down", "down"]);
  });

  it("counts an answer slower than latencyThresholdMs as failed", async () => {
    dep.status = 200;
    dep.delayMs = 120;
    try {
      const slow = await runProbe({ dep: "gateway", kind: "http", url: dep.url, latencyThresholdMs: 40, timeoutMs: 2_000 });
      assert.equal(slow.ok, false);
      assert.equal(slow.detail, "slow");
      assert.ok(slow.latencyMs >= 100, `latency ${slow.latencyMs}`);
      const fine = await runProbe({ dep: "gateway", kind: "http", url: dep.url, latencyThresholdMs: 1_000 });
      assert.equal(fine.ok, true, fine.detail);
    } finally {
      dep.delayMs = 0;
    }
  });

  it("fails an HTTP probe that takes longer than timeoutMs, and a probe function that throws", async () => {
    dep.status = 200;
    dep.delayMs = 300;
    try {
      const timedOut = await runProbe({ dep: "gateway", kind: "http", url: dep.url, timeoutMs: 60 });
      assert.deepEqual([timedOut.ok, timedOut.detail], [false, "timeout after 60 ms"]);
    } finally {
      dep.delayMs = 0;
    }
    const thrown = await runProbe({ dep: "model", kind: "fn", fn: async () => Promise.reject(new Error("no route to model")) });
    assert.deepEqual([thrown.ok, thrown.detail], [false, "no route to model"]);
    const hung = await runProbe({ dep: "model", kind: "fn", fn: () => new Promise(() => undefined) }, 50);
    assert.deepEqual([hung.ok, hung.detail], [false, "timeout after 50 ms"]);
  });

  it("resumes from the stored signal, so a restarted monitor agrees with the running ones", async () => {
    const clock = new FakeClock();
    const store = newStore(clock);
    const healthySince = clock.now();
    await store.write("payer", { state: "healthy", since: healthySince, detail: "status 200", source: "probe" }, 60_000);
    clock.advance(5_000);
    const fresh = new HealthMonitor(
      store,
      [{ dep: "payer", kind: "fn", fn: async () => ({ ok: true, latencyMs: 1, detail: "ok" }) }],
      clock,
      log,
    );
    const r = await fresh.probeOnce();
    assert.deepEqual(r["payer"], { state: "healthy", since: healthySince, detail: "ok", source: "probe" }, "healthy at once, since kept");
  });

  it("keeps a passive downgrade until the dependency passes two probes in a row", async () => {
    const clock = new FakeClock();
    const store = newStore(clock);
    let ok = true;
    const monitor = new HealthMonitor(
      store,
      [{ dep: "bureau", kind: "fn", fn: async () => ({ ok, latencyMs: 1, detail: ok ? "ok" : "boom" }) }],
      clock,
      log,
    );
    await monitor.probeOnce();
    await monitor.probeOnce();
    assert.equal(await store.isHealthy("east", "bureau"), true);

    clock.advance(1_000);
    await store.markDegraded("bureau", "pool exhausted", 15_000);
    const markedAt = clock.now();
    clock.advance(1_000);
    assert.deepEqual((await monitor.probeOnce())["bureau"], { state: "degraded", since: markedAt, detail: "ok", source: "probe" });
    clock.advance(1_000);
    assert.equal((await monitor.probeOnce())["bureau"]!.state, "healthy");
    ok = false;
    assert.equal((await monitor.probeOnce())["bureau"]!.state, "degraded");
  });

  it("probes every interval once started and not after stop", async () => {
    const clock = new FakeClock();
    const store = newStore(clock);
    let calls = 0;
    const monitor = new HealthMonitor(
      store,
      [{ dep: "ticker", kind: "fn", fn: async () => ({ ok: true, latencyMs: 0, detail: `call ${++calls}` }) }],
      clock,
      log,
      { intervalMs: 30, ttlMultiplier: 100 },
    );
    monitor.start();
    try {
      for (let i = 0; i < 40 && calls < 3; i++) await sleep(20);
      assert.ok(calls >= 3, `${calls} rounds`);
      assert.equal(await store.isHealthy("west", "ticker"), true);
      const ttl = await redis.pttl(keys.cell("west").health("ticker"));
      assert.ok(ttl > 0 && ttl <= 3_000, `TTL is 100 × 30 ms: ${ttl}`);
    } finally {
      await monitor.stop();
    }
    const after = calls;
    await sleep(100);
    assert.equal(calls, after, "no round after stop");
  });
});

describe("the health role", () => {
  it("probes the downstream's /health when FAIRLANE_HEALTH_PROBES is unset", () => {
    assert.deepEqual(parseHealthProbes(undefined, "http://127.0.0.1:4100"), [
      { dep: "fhir-gateway", kind: "http", url: "http://127.0.0.1:4100/health" },
    ]);
    assert.deepEqual(parseHealthProbes("  ", "http://gw:8080/"), [{ dep: "fhir-gateway", kind: "http", url: "http://gw:8080/health" }]);
  });

  it("reads http and tcp probes from FAIRLANE_HEALTH_PROBES", () => {
    const probes: ProbeSpec[] = [
      { dep: "fhir-gateway", kind: "http", url: "http://gw/health", expectStatus: 204, latencyThresholdMs: 500, timeoutMs: 1_000 },
      { dep: "ledger-db", kind: "tcp", host: "db", port: 5432 },
    ];
    assert.deepEqual(parseHealthProbes(JSON.stringify(probes), "http://unused"), probes);
  });

  it("refuses a malformed FAIRLANE_HEALTH_PROBES naming the bad field", () => {
    assert.throws(() => parseHealthProbes("not json", "http://x"), /FAIRLANE_HEALTH_PROBES is not valid JSON/);
    assert.throws(
      () => parseHealthProbes('[{"dep":"db","kind":"tcp","host":"db","port":70000}]', "http://x"),
      /FAIRLANE_HEALTH_PROBES\[0\]\.port/,
    );
    assert.throws(
      () => parseHealthProbes('[{"dep":"gw","kind":"http","url":"ftp://gw"}]', "http://x"),
      /FAIRLANE_HEALTH_PROBES\[0\]\.url: must be an http\(s\) URL/,
    );
    assert.throws(() => parseHealthProbes('[{"dep":"gw","kind":"smtp"}]', "http://x"), /FAIRLANE_HEALTH_PROBES\[0\]\.kind/);
    assert.throws(
      () => parseHealthProbes('[{"dep":"a b","kind":"tcp","host":"h","port":1}]', "http://x"),
      /FAIRLANE_HEALTH_PROBES\[0\]\.dep/,
    );
    assert.throws(
      () => parseHealthProbes('[{"dep":"a","kind":"tcp","host":"h","port":1},{"dep":"a","kind":"tcp","host":"h","port":2}]', "http://x"),
      /FAIRLANE_HEALTH_PROBES\[1\]\.dep: "a" is probed twice/,
    );
    assert.throws(() => parseHealthProbes("[]", "http://x"), /at least one probe/);
  });

  it("starts a monitor that writes to every configured cell, and fails to start on bad probes", async () => {
    const url = await testRedisUrl();
    const dep = new FakeDependency();
    await dep.start();
    const config = loadConfig({ FAIRLANE_PREFIX: freshPrefix(), FAIRLANE_CELLS: "east,west", REDIS_URL: url });
    const p = await openPlatform(config, url, log);
    try {
      const withProbes = (probes: string) => ({ ...p, config: { ...p.config, FAIRLANE_HEALTH_PROBES: probes } });
      await assert.rejects(startHealthRole(withProbes('[{"dep":"gw","kind":"http"}]'), log), /FAIRLANE_HEALTH_PROBES\[0\]\.url/);
      const role = await startHealthRole(withProbes(JSON.stringify([{ dep: "gw", kind: "http", url: dep.url }])), log);
      try {
        // Started = its first round is written: no polling needed.
        const store = new HealthStore(p.redis, p.keys, ["east"], p.clock);
        const signal = await store.read("west", "gw");
        assert.equal(signal?.source, "probe");
        assert.equal(signal?.state, "healthy", "the first round: one success at boot is taken as it is");
        assert.equal((await store.list("east"))["gw"]?.state, "healthy", "written to the other cell too");
      } finally {
        await role.stop();
      }
    } finally {
      await p.close();
      await dep.stop();
    }
  });
});
