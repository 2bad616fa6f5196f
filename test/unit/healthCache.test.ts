import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HealthCache } from "../../src/backpressure/healthCache.ts";

/** A reader whose answers the test releases by hand, to order a Redis read against a local downgrade. */
function pendingReader() {
  const waiting: ((healthy: boolean) => void)[] = [];
  return {
    reader: { isHealthy: (_cell: string, _dep: string) => new Promise<boolean>((r) => waiting.push(r)) },
    answer: (healthy: boolean) => waiting.shift()!(healthy),
  };
}

describe("HealthCache (the hot path's view of dependency health)", () => {
  it("keeps a downgrade seen while a read from Redis was under way: the older 'healthy' answer does not undo it", async () => {
    let now = 0;
    const { reader, answer } = pendingReader();
    const cache = new HealthCache(reader, () => now, 250);
    assert.equal(cache.peek("default", "fhir"), true, "no data yet is not evidence of an outage");
    now = 10;
    cache.set("default", "fhir", false); // this process's own call just failed
    answer(true); // the read that peek started, sent before the failure
    await new Promise((r) => setImmediate(r));
    assert.equal(cache.peek("default", "fhir"), false);
    const check = cache.check("default", "fhir");
    assert.equal(await check, false, "still fresh: no new read");
  });

  it("takes a read that started after the last downgrade, and refreshes a stale entry", async () => {
    let now = 0;
    const { reader, answer } = pendingReader();
    const cache = new HealthCache(reader, () => now, 250);
    cache.set("default", "fhir", false);
    now = 300; // stale
    const check = cache.check("default", "fhir");
    answer(true); // recovered since
    assert.equal(await check, true);
    assert.equal(cache.peek("default", "fhir"), true);
  });

  it("reads Redis once per stale key however many calls peek or check meanwhile, and all of them get that answer", async () => {
    let now = 0;
    let reads = 0;
    const { reader, answer } = pendingReader();
    const counting = { isHealthy: (cell: string, dep: string) => (reads++, reader.isHealthy(cell, dep)) };
    const cache = new HealthCache(counting, () => now, 250);
    for (let i = 0; i < 100; i++) cache.peek("default", "fhir");
    const checks = Array.from({ length: 10 }, () => cache.check("default", "fhir"));
    assert.equal(reads, 1);
    answer(false);
    assert.deepEqual(await Promise.all(checks), Array(10).fill(false));
    now = 300; // stale again: the next look starts one new read
    cache.peek("default", "fhir");
    cache.peek("default", "fhir");
    assert.equal(reads, 2);
    answer(true);
    assert.equal(await cache.check("default", "fhir"), true);
    assert.equal(reads, 2);
  });
});
