/**
 * What the deadline index costs Redis around a drain (issue 20): `jobs` workflows of 10 tenants with a
 * deadline, admitted, then dispatched 500 a call with no exec worker to take them (the dispatch's own
 * work: queued workflows leave the deadline index's zset here when it held a member each, and leave
 * their ids in place since it is a list per second, queues/lua/includes/deadlineIndex.lua), then the
 * sweep past their deadline, which drops what is no longer queued (expireQueued-2.lua). Reports Redis's
 * CPU and commands per workflow for each, from INFO; run it on two versions to compare.
 *   node --import tsx test/bench/deadlineSweep.ts [jobs=20000]
 */
import { dispatch } from "../../queues/lua/dispatch.ts";
import { expireQueued } from "../../queues/lua/expireQueued.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { DEFAULT_DISPATCHER, dispatchOptions } from "../../src/dispatch/dispatcher.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { connect } from "../../src/lib/redis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform } from "../../src/platform.ts";
import { benchRedis } from "./lib/infra.ts";
import { Meter } from "./lib/meter.ts";

const jobs = Number(process.argv[2] ?? 20_000);
const server = await benchRedis();
const admin = connect(server.url);
const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: "sweep", FAIRLANE_MAX_QUEUED_TOTAL: String(jobs * 2) });
const p = await openPlatform(config, server.url, createLogger("bench", "silent"));
const names = Array.from({ length: 10 }, (_, i) => `t${i}`);
const spec = { tier: "enterprise" as const, mca: 1_000_000, maxQueueDepth: 1_000_000 };
/** Runs `phase`, then prints Redis's CPU and commands in it per workflow (lib/meter.ts). */
const measure = async (name: string, phase: () => Promise<string>) => {
  const meter = new Meter(admin, server.pid);
  await meter.begin([]);
  const t0 = performance.now();
  const said = await phase();
  const cost = await meter.end(jobs, (performance.now() - t0) / 1000);
  console.log(`${name}: ${said}, Redis ${cost.redisCpuUs.toFixed(2)} µs and ${cost.commands.toFixed(2)} commands per workflow`);
};

try {
  await p.registry.seed(new Map(names.map((n) => [n, spec])), true);
  const cell = p.keys.cell("default");
  await new TenantSync(p.redis, p.keys).sync("default", p.registry.list());
  const now = Date.now();
  await heartbeat(p.redis, cell, "default", "bench", jobs * 2, now, now + 3_600_000);
  // Far enough that none expires while it is dispatched, however busy the machine.
  const deadlineAt = new Date(now + 60_000).toISOString();
  for (let i = 0; i < jobs; i += 100) {
    const items = Array.from({ length: Math.min(100, jobs - i) }, () => ({ type: "noop", class: "B", deadlineAt }));
    const r = await p.admission.admitBulk(names[(i / 100) % names.length]!, items);
    if (r.rejected.length) throw new Error(`admission refused: ${JSON.stringify(r.rejected[0])}`);
  }
  const opts = { ...dispatchOptions(DEFAULT_DISPATCHER), maxMoves: 500 };
  await measure("dispatch", async () => {
    let moved = 0;
    for (
      let r = await dispatch(p.redis, cell, "default", Date.now(), opts);
      r.moved > 0;
      r = await dispatch(p.redis, cell, "default", Date.now(), opts)
    )
      moved += r.moved;
    return `moved ${moved}`;
  });
  await measure("sweep past the deadline", async () => {
    const t0 = performance.now();
    const expired = await expireQueued(p.redis, cell, now + 61_000, 60);
    return `failed ${expired} (none was queued), ${(performance.now() - t0).toFixed(0)} ms`;
  });
} finally {
  await p.close();
  admin.disconnect();
  await server.stop();
}
