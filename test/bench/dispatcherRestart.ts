/**
 * What a dispatcher's restart costs Redis, at many tenants (issue 20: Fairlane's own work must not be
 * the noisy neighbour, and a rolling deploy restarts every dispatcher). A cell whose tenants' caps a
 * dispatcher already synced (src/dispatch/tenantSync.ts), and whose readiness is up to date; then a
 * new dispatcher process's first sync, and its dispatch calls until none has a tenant left to
 * recompute. Reports the sync's commands and time, the tenants it marked dirty, and the dispatch calls
 * that recomputed them: how many, the longest (Redis runs nothing else meanwhile) and Redis's time in them.
 *   node --import tsx test/bench/dispatcherRestart.ts [tenants=10000] [rounds=3]
 */
import { createKeys } from "../../queues/keys.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { DEFAULT_DISPATCHER, dispatchOptions } from "../../src/dispatch/dispatcher.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { connect } from "../../src/lib/redis.ts";
import { resolvePolicy } from "../../src/tenancy/policy.ts";
import { benchRedis } from "./lib/infra.ts";
import { commandStats } from "./lib/redisCost.ts";

const tenants = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const server = await benchRedis();
const redis = connect(server.url);
const spec = resolvePolicy({ tier: "enterprise", mca: 100 });
if (!spec.ok) throw new Error("the benchmark's policy does not resolve");
const entries = Array.from({ length: tenants }, (_, i) => ({ tenant: `t${i}`, spec: spec.spec, policy: spec.policy }));
const cellName = spec.policy.cell;
const evalshaUs = async () => (await commandStats(redis)).usec.find((r) => r.cmd === "evalsha")?.usec ?? 0;

try {
  for (let round = 1; round <= rounds; round++) {
    const keys = createKeys(`restart-${round}-${Date.now()}`);
    const cell = keys.cell(cellName);
    await new TenantSync(redis, keys).sync(cellName, entries); // the dispatcher before the restart
    await redis.del(cell.dirty); // ... which had recomputed every tenant's readiness

    const c0 = (await commandStats(redis)).commands;
    const t0 = performance.now();
    const changed = await new TenantSync(redis, keys).sync(cellName, entries); // the restarted one
    const syncMs = performance.now() - t0;
    const syncCommands = (await commandStats(redis)).commands - c0; // commandStats leaves its own INFO out
    const dirty = await redis.scard(cell.dirty);

    const e0 = await evalshaUs();
    let calls = 0;
    let longestMs = 0;
    for (;;) {
      const t = performance.now();
      const r = await dispatch(redis, cell, "default", Date.now(), dispatchOptions(DEFAULT_DISPATCHER));
      longestMs = Math.max(longestMs, performance.now() - t);
      calls++;
      if (r.refreshed === 0) break;
    }
    const refreshMs = ((await evalshaUs()) - e0) / 1000;
    console.log(
      `round ${round}: ${tenants} tenants; restart sync wrote ${changed}, ${syncCommands} commands, ${syncMs.toFixed(0)} ms, ` +
        `${dirty} marked dirty; then ${calls} dispatch calls, longest ${longestMs.toFixed(1)} ms, Redis ${refreshMs.toFixed(0)} ms in them`,
    );
    const found = await redis.keys(`${keys.root}*`);
    for (let i = 0; i < found.length; i += 1000) await redis.unlink(...found.slice(i, i + 1000));
  }
} finally {
  await redis.quit();
  await server.stop();
}
