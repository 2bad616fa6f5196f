import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ingressQueue } from "../../queues/names.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * One tenant's big bulk does not hold up another tenant's admission in the same process (an api serves
 * every tenant): the bulk is prepared and sent in chunks (BULK_CHUNK), so a Class A admission that
 * arrives meanwhile is in Redis before the bulk is. Observed in Redis: how much of the bulk was queued
 * when the Class A admission had been answered.
 */
describe("bulk admission shares the process", () => {
  let p: Platform;
  const BULK = 1_200;

  before(async () => {
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix(), FAIRLANE_MAX_QUEUED_TOTAL: "100000" });
    p = await openPlatform(config, await testRedisUrl(), createLogger("test", "silent"));
    await p.registry.seed(
      new Map([
        ["batchy", { tier: "enterprise" as const, maxQueueDepth: 100_000 }],
        ["urgent", { tier: "enterprise" as const }],
      ]),
      true,
    );
    const cell = p.keys.cell("default");
    await p.redis.zadd(cell.types, Date.now() + 600_000, "prior-auth");
  });
  after(() => p.close());

  it("answers a Class A admission sent during a 1,200-item bulk before the bulk is queued", async () => {
    const payload = { steps: 3, fanout: 6, note: "x".repeat(200) };
    const bulk = p.admission.admitBulk(
      "batchy",
      Array.from({ length: BULK }, () => ({ type: "prior-auth", class: "C", payload })),
    );
    // Sent from a later turn of the event loop, as a request arriving on another connection would be.
    const urgent = new Promise((resolve) => setTimeout(resolve, 0)).then(() =>
      p.admission.admitOne("urgent", { type: "prior-auth", class: "A", payload }),
    );
    const answered = await urgent;
    const queuedThen = await p.redis.llen(p.keys.cell("default").queueKey(ingressQueue("batchy", "C"), "wait"));
    const done = await bulk;
    assert.equal(answered.body.state, "queued");
    assert.equal(done.accepted.length, BULK);
    assert.ok(queuedThen < BULK, `the Class A admission waited for the whole bulk (${queuedThen} of ${BULK} queued when it was answered)`);
  });
});
