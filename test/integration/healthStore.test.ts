import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { createKeys, type Keys } from "../../queues/keys.ts";
import { HealthStore, type HealthSignal } from "../../src/backpressure/healthStore.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * Dependency health in a real Redis, written to two cells. Time is a
 * FakeClock except for expiry, which is Redis's own: one case writes a
 * 300 ms TTL and waits 450 ms.
 */

describe("HealthStore", () => {
  const cells = ["east", "west"];
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  let redis: Redis;
  let keys: Keys;
  let store: HealthStore;
  before(async () => {
    redis = connect(await testRedisUrl());
    keys = createKeys(freshPrefix());
    store = new HealthStore(redis, keys, cells, clock);
  });
  after(() => redis.quit());

  const probe = (state: HealthSignal["state"], detail = "status 200"): HealthSignal => ({
    state,
    since: clock.now(),
    detail,
    source: "probe",
  });

  it("treats a dependency nobody has written as missing and not healthy", async () => {
    assert.equal(await store.read("east", "never-probed"), null);
    assert.equal(await store.isHealthy("east", "never-probed"), false);
  });

  it("reads a written signal back in every cell and lists the dependency there", async () => {
    const s = probe("healthy");
    await store.write("fhir-gateway", s, 60_000);
    for (const cell of cells) {
      assert.deepEqual(await store.read(cell, "fhir-gateway"), s, cell);
      assert.equal(await store.isHealthy(cell, "fhir-gateway"), true, cell);
      assert.deepEqual((await store.list(cell))["fhir-gateway"], s, cell);
      const ttl = await redis.pttl(keys.cell(cell).health("fhir-gateway"));
      assert.ok(ttl > 55_000 && ttl <= 60_000, `${cell} ttl ${ttl}`);
    }
  });

  it("lets the last writer win", async () => {
    await store.write("bureau", probe("healthy"), 60_000);
    clock.advance(1_000);
    const later = probe("down", "timeout after 2000 ms");
    await store.write("bureau", later, 60_000);
    assert.deepEqual(await store.read("west", "bureau"), later);
  });

  it("downgrades a healthy signal passively, keeping a longer TTL", async () => {
    await store.write("ocr", probe("healthy"), 60_000);
    clock.advance(500);
    await store.markDegraded("ocr", "3 of 5 calls failed", 5_000);
    for (const cell of cells) {
      assert.deepEqual(await store.read(cell, "ocr"), {
        state: "degraded",
        since: clock.now(),
        detail: "3 of 5 calls failed",
        source: "passive",
      });
      const ttl = await redis.pttl(keys.cell(cell).health("ocr"));
      assert.ok(ttl > 55_000, `the probe's longer TTL stays: ${ttl}`);
    }
  });

  it("announces every verdict workflows may not call on each cell's signals channel, so exec processes stop at once", async () => {
    const sub = connect(await testRedisUrl());
    const heard: string[] = [];
    sub.on("message", (channel: string, message: string) =>
      heard.push(`${cells.find((c) => keys.cell(c).signals === channel)} ${message}`),
    );
    await sub.subscribe(...cells.map((c) => keys.cell(c).signals));
    const expect = async (what: string[], why: string) => {
      await sub.ping(); // its reply comes after every message published before it
      assert.deepEqual(heard.splice(0).sort(), what.sort(), why);
    };
    const each = (dep: string) => cells.map((c) => `${c} degraded ${dep}`);
    try {
      await store.write("eligibility", probe("healthy"), 60_000);
      await expect([], "a callable verdict is not announced");
      await store.markDegraded("eligibility", "pool exhausted", 5_000);
      await expect(each("eligibility"), "a passive downgrade");
      await store.markDegraded("eligibility", "pool exhausted", 5_000);
      await expect(each("eligibility"), "again when already degraded: a process may not have read it yet");
      await store.write("claims", probe("degraded", "status 503"), 60_000);
      await expect(each("claims"), "a probe's degraded verdict");
      await store.write("claims", probe("down", "timeout"), 60_000);
      await expect(each("claims"), "a probe's down verdict");
    } finally {
      sub.disconnect();
    }
  });

  it("marks a missing signal degraded passively with the given TTL", async () => {
    await store.markDegraded("model", "pool exhausted", 5_000);
    const s = await store.read("east", "model");
    assert.equal(s?.state, "degraded");
    assert.equal(s?.source, "passive");
    const ttl = await redis.pttl(keys.cell("east").health("model"));
    assert.ok(ttl > 0 && ttl <= 5_000, `ttl ${ttl}`);
    assert.ok((await redis.sismember(keys.cell("west").deps, "model")) === 1);
  });

  it("never upgrades a down or degraded signal with a passive downgrade", async () => {
    const down = probe("down", "timeout after 2000 ms");
    await store.write("ledger", down, 60_000);
    clock.advance(1_000);
    await store.markDegraded("ledger", "errors", 5_000);
    assert.deepEqual(await store.read("east", "ledger"), down, "still down, since unchanged");

    const degraded = probe("degraded", "status 503");
    await store.write("ledger", degraded, 60_000);
    clock.advance(1_000);
    await store.markDegraded("ledger", "errors", 5_000);
    assert.deepEqual(await store.read("west", "ledger"), degraded, "an existing degraded keeps its since and detail");
  });

  it("lets an operator override win over probes until it is cleared", async () => {
    await store.write("payer-api", probe("healthy"), 60_000);
    clock.advance(1_000);
    await store.override("payer-api", "down", "alice");
    for (const cell of cells) {
      const s = await store.read(cell, "payer-api");
      assert.deepEqual(s, { state: "down", since: clock.now(), detail: "marked down by alice", source: "operator" }, cell);
      assert.equal(await store.isHealthy(cell, "payer-api"), false);
      assert.equal(await redis.pttl(keys.cell(cell).healthOverride("payer-api")), -1, "an override has no TTL");
    }
    const later = probe("healthy", "status 200 again");
    await store.write("payer-api", later, 60_000);
    assert.equal((await store.read("east", "payer-api"))?.source, "operator", "a later probe does not clear it");
    assert.equal((await store.readMeasured("east", "payer-api"))?.source, "probe", "the measured signal is still kept");

    await store.override("payer-api", null, "alice");
    assert.deepEqual(await store.read("east", "payer-api"), later, "back to the latest probe signal");
    assert.equal(await store.isHealthy("west", "payer-api"), true);
  });

  it("lets an operator mark a dependency healthy whose probe is broken", async () => {
    await store.write("legacy", probe("down", "status 404"), 60_000);
    await store.override("legacy", "healthy", "bob");
    assert.equal(await store.isHealthy("east", "legacy"), true);
    await store.override("legacy", null, "bob");
    assert.equal(await store.isHealthy("east", "legacy"), false);
  });

  it("lists every dependency seen in a cell, with null for one whose signal is gone", async () => {
    await store.write("gone", probe("healthy"), 60_000);
    await redis.del(keys.cell("east").health("gone"));
    const listed = await store.list("east");
    assert.equal(listed["gone"], null);
    assert.equal(listed["fhir-gateway"]?.state, "healthy");
    assert.ok(Object.keys(listed).includes("never-probed") === false, "reading does not add a dependency");
    assert.deepEqual(await store.list("nowhere"), {});
  });

  it("refuses dependency names that could alias another key", async () => {
    await assert.rejects(store.write("x:override", probe("healthy"), 1_000), /invalid dependency name/);
    await assert.rejects(store.read("east", "{x}"), /invalid dependency name/);
    await store.write("payer:claims", probe("healthy"), 60_000);
    assert.equal(await store.isHealthy("east", "payer:claims"), true, "a colon inside a name is fine");
  });

  it("makes a signal missing, and so not healthy, once its TTL passes (Redis expiry)", async () => {
    await store.write("short-lived", probe("healthy"), 300);
    assert.equal(await store.isHealthy("east", "short-lived"), true);
    await sleep(450);
    assert.equal(await store.read("east", "short-lived"), null);
    assert.equal(await store.isHealthy("west", "short-lived"), false);
    assert.equal((await store.list("west"))["short-lived"], null, "still listed, as missing");
  });
});
