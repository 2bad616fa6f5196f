import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { type Admission, BULK_SMALL } from "../../src/admission/admit.ts";
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

  // Redis answers one connection's commands in the order sent: a single admission sent on the connection
  // that carries a bulk chunk's 100 scripts waits for all of them, whatever Redis does for anyone else.
  // Seen from Redis (MONITOR names each command's connection): the bulk's scripts and the single
  // admissions' come from different connections, in the platform's admission and in the api's; a small
  // bulk (BULK_SMALL) goes with the single admissions, so it does not wait behind the big one's chunks.
  async function connectionsOf(admission: Admission): Promise<{ bulk: Set<string>; single: Set<string> }> {
    const client = new Redis(await testRedisUrl());
    const monitor = await client.monitor();
    const seen = { bulk: new Set<string>(), single: new Set<string>() };
    // Redis feeds MONITOR in the order it runs commands: once this ECHO's line has arrived, so has every script's.
    const marker = `end-${freshPrefix()}`;
    let sawMarker: () => void = () => undefined;
    const markerSeen = new Promise<void>((resolve) => {
      sawMarker = resolve;
    });
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (args[0]?.toLowerCase() === "echo" && args[1] === marker) sawMarker();
      if (args[0]?.toLowerCase() !== "evalsha") return;
      // An admission script names each workflow's tenant among its arguments (admitWorkflows-4.lua).
      if (args.includes("batchy")) seen.bulk.add(source);
      if (args.includes("urgent")) seen.single.add(source);
    });
    const payload = { steps: 1, fanout: 1 };
    const bulk = admission.admitBulk(
      "batchy",
      Array.from({ length: 300 }, () => ({ type: "prior-auth", class: "C", payload })),
    );
    const singles = Array.from({ length: 5 }, () => admission.admitOne("urgent", { type: "prior-auth", class: "A", payload }));
    const small = admission.admitBulk(
      "urgent",
      Array.from({ length: BULK_SMALL }, () => ({ type: "prior-auth", class: "A", payload })),
    );
    await Promise.all([bulk, ...singles, small]);
    await p.redis.echo(marker);
    await markerSeen;
    monitor.disconnect(); // a connection in monitoring mode takes no QUIT
    client.disconnect();
    return seen;
  }

  for (const where of ["platform", "api"] as const)
    it(`sends a bulk's scripts on a connection of their own (${where})`, async () => {
      const rq = where === "api" ? await p.forRequests() : undefined;
      try {
        const { bulk, single } = await connectionsOf(rq ? rq.admission : p.admission);
        assert.equal(bulk.size, 1, `the bulk's scripts came from ${[...bulk].join(", ")}`);
        assert.equal(single.size, 1, `the single admissions and the small bulk came from ${[...single].join(", ")}`);
        assert.notDeepEqual([...bulk], [...single]);
      } finally {
        await rq?.close();
      }
    });
});
