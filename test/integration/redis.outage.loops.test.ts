import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { capturedLogger } from "../helpers/api.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { freePort } from "../../src/dev/embeddedRedis.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { DEFAULT_DISPATCHER, Dispatcher } from "../../src/dispatch/dispatcher.ts";
import { privateRedis, type PrivateRedis } from "../helpers/privateRedis.ts";
import { freshPrefix } from "../helpers/redis.ts";

/**
 * The dispatcher loop while its Redis refuses writes or is gone: it neither
 * spins nor dies nor floods the log, and it dispatches again by itself once
 * Redis is back.
 */

interface Setup {
  r: PrivateRedis;
  p: Platform;
  d: Dispatcher;
  lines: string[];
  stop(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const r = await privateRedis();
  const { log, lines } = capturedLogger("dispatcher");
  const p = await openPlatform(loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() }), r.url, log);
  await p.registry.seed(new Map([["clinic", { tier: "professional" as const }]]), true);
  await heartbeat(p.redis, p.keys.cell("default"), "default", "fake", 5, Date.now(), Date.now() + 3_600_000);
  const blocking = () => {
    const c = p.connect();
    c.on("error", () => undefined);
    return c;
  };
  const d = new Dispatcher(p.redis, blocking, p.keys, p.registry, p.clock, log, { ...DEFAULT_DISPATCHER, cells: ["default"] });
  return {
    r,
    p,
    d,
    lines,
    async stop() {
      await d.stop();
      await p.close();
      await r.stop();
    },
  };
}

/** Share of one core this process used while `f` ran. */
async function cpuShare(f: () => Promise<void>): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const { user, system } = process.cpuUsage(cpu0);
  return (user + system) / 1000 / (performance.now() - t0);
}

async function eventually(what: string, ms: number, f: () => boolean | Promise<boolean>): Promise<void> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) if (await f()) return;
  assert.fail(`${what}: not within ${ms} ms`);
}

const count = (lines: string[], msg: string) => lines.filter((l) => l.includes(`"msg":"${msg}"`)).length;

describe("the dispatcher loop when Redis refuses or is gone", () => {
  it("backs off on a read-only Redis, logs the failure once, and dispatches once it takes writes again", async () => {
    const s = await setup();
    try {
      await s.p.admission.admitOne("clinic", { type: "noop" }, "0".repeat(32));
      await s.r.admin.call("REPLICAOF", "127.0.0.1", String(await freePort()));
      s.d.start();
      const share = await cpuShare(() => sleep(3_000));
      assert.equal(s.d.stats.moved, 0);
      assert.ok(share < 0.5, `used ${Math.round(share * 100)}% of a core while every pass failed`);
      assert.equal(count(s.lines, "dispatch pass failed; retrying"), 1, "one line, not one per pass");
      assert.match(s.lines.join(""), /READONLY/);

      await s.r.admin.call("REPLICAOF", "NO", "ONE");
      await eventually("the queued workflow to be dispatched", 5_000, () => s.d.stats.moved === 1);
      // The line follows the pass's idle wait (idleWakeMs), so it may come a moment after the move.
      await eventually("the recovery to be logged", 5_000, () => count(s.lines, "dispatch passes succeed again") > 0);
      await sleep(1_000);
      assert.equal(count(s.lines, "dispatch passes succeed again"), 1, "once, not once per pass");
    } finally {
      await s.stop();
    }
  });

  it("waits without spinning while Redis is killed, and dispatches new work once it is back", async () => {
    const s = await setup();
    try {
      s.d.start();
      await eventually("a first pass", 5_000, () => s.d.stats.passes > 0);
      await s.r.kill();
      const share = await cpuShare(() => sleep(3_000));
      assert.ok(share < 0.5, `used ${Math.round(share * 100)}% of a core while Redis was gone`);
      assert.ok(count(s.lines, "redis connection error") <= 1, "the platform connection's errors: the first only");

      await s.r.restart();
      await s.p.admission.admitOne("clinic", { type: "noop" }, "0".repeat(32));
      await eventually("the new workflow to be dispatched", 10_000, () => s.d.stats.moved === 1);
    } finally {
      await s.stop();
    }
  });
});
