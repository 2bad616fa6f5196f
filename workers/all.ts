/**
 * `npm start`: every role in one process (api, dispatcher, exec, health, recovery), for a laptop,
 * plus the simulated downstream the example workflows call. With REDIS_URL unset it
 * runs a private redis-server (AOF on, appendfsync always) with its data under
 * FAIRLANE_DATA_DIR and stops it on exit; with REDIS_URL (or REDIS_CLUSTER_NODES) set it uses that.
 */
import { join } from "node:path";
import { ensureDevKeys, resolveAdminToken, seedTenants } from "../src/bootstrap.ts";
import { loadConfig } from "../src/lib/config.ts";
import { describeTarget, redisTargetFromEnv, type RedisTarget } from "../src/lib/redis.ts";
import { Downstream } from "../src/downstream/simulator.ts";
import { EmbeddedRedis } from "../src/lib/embeddedRedis.ts";
import { openPlatform } from "../src/platform.ts";
import { startApiRole } from "./api.ts";
import { startDispatcherRole } from "./dispatcher.ts";
import { startExecRole } from "./exec.ts";
import { startHealthRole } from "./health.ts";
import { startRecoveryRole } from "./recovery.ts";
import { runRole } from "./role.ts";

runRole("all", async (log) => {
  const config = loadConfig();
  let embedded: EmbeddedRedis | undefined;
  let target: RedisTarget | undefined = redisTargetFromEnv(config);
  if (!target) {
    embedded = new EmbeddedRedis({
      dir: join(config.FAIRLANE_DATA_DIR, "redis"),
      port: config.FAIRLANE_REDIS_PORT,
      appendfsync: config.FAIRLANE_REDIS_APPENDFSYNC,
    });
    const redisUrl = await embedded.start();
    target = { kind: "single", url: redisUrl };
    log.info({ redisUrl, dir: join(config.FAIRLANE_DATA_DIR, "redis") }, "embedded redis started");
  }
  try {
    const p = await openPlatform(config, target, log);
    const tenants = await seedTenants(p, log);
    const admin = resolveAdminToken(config, true);
    const devKeys =
      config.FAIRLANE_DEV_KEYS === "on" || (config.FAIRLANE_DEV_KEYS === "auto" && embedded)
        ? await ensureDevKeys(p, tenants)
        : undefined;
    // The simulated FHIR gateway + model endpoint the example workflows call.
    const downstream = new Downstream({ port: config.FAIRLANE_DOWNSTREAM_PORT, capacity: config.FAIRLANE_DOWNSTREAM_CAPACITY, latencyMs: { min: 20, max: 80 } });
    const downstreamUrl = await downstream.start();
    process.env.FAIRLANE_DOWNSTREAM_URL = downstreamUrl;
    p.config.FAIRLANE_DOWNSTREAM_URL = downstreamUrl;
    const exec = await startExecRole(p, log.child({ role: "exec" }));
    const dispatcher = await startDispatcherRole(p, log.child({ role: "dispatcher" }));
    const health = await startHealthRole(p, log.child({ role: "health" }));
    const recovery = await startRecoveryRole(p, log.child({ role: "recovery" }));
    const api = await startApiRole(p, admin.token, log.child({ role: "api" }));
    const base = `http://${config.HOST}:${api.port}`;
    process.stdout.write(
      [
        "",
        `Fairlane is running at ${base}`,
        `  Redis:       ${embedded ? p.redisUrl : describeTarget(target)}${embedded ? " (embedded, data in " + join(config.FAIRLANE_DATA_DIR, "redis") + ")" : ""}`,
        `  Admin token: ${admin.file ? `in ${admin.file}` : "FAIRLANE_ADMIN_TOKEN"}`,
        `  Bull Board:  ${base}/admin/queues (user: admin, password: the admin token)`,
        `  Simulated downstream: ${downstreamUrl} (GET /admin/stats, POST /admin/outage {"on":true})`,
        devKeys ? `  Dev API keys (DEVELOPMENT ONLY): source ${devKeys}` : "",
        "",
      ]
        .filter((l, i, a) => l !== "" || i === 0 || i === a.length - 1)
        .join("\n") + "\n",
    );
    return async () => {
      await api.stop();
      await recovery.stop();
      await health.stop();
      await dispatcher.stop();
      await exec.stop();
      await downstream.stop();
      await p.close();
      await embedded?.stop();
    };
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
});
