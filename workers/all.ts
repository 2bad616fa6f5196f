/**
 * `npm start`: every role in one process (api, dispatcher, exec, health, recovery), for a laptop,
 * plus the simulated downstream the example workflows call. With REDIS_URL unset it
 * runs a private redis-server (AOF on, appendfsync always) with its data under
 * FAIRLANE_DATA_DIR and stops it on exit; with REDIS_URL (or REDIS_CLUSTER_NODES) set it uses that.
 *
 * The data folder is this process's alone (instance.json, src/lib/instanceLock.ts): a second
 * start refuses before it touches anything. The embedded Redis has a generated password
 * (<data dir>/redis-password), a memory bound (FAIRLANE_REDIS_MAXMEMORY, noeviction), runs in
 * its own process group so Ctrl-C reaches only this process, which drains and stops Redis
 * last, and is restarted if it dies (this process exits when it keeps dying).
 */
import { join } from "node:path";
import { ensureDevKeys, resolveAdminToken, secretFile, seedTenants } from "../src/bootstrap.ts";
import { loadConfig } from "../src/lib/config.ts";
import { describeTarget, redisTargetFromEnv, type RedisTarget } from "../src/lib/redis.ts";
import { Downstream } from "../src/downstream/simulator.ts";
import { EmbeddedRedis } from "../src/lib/embeddedRedis.ts";
import { InstanceLock } from "../src/lib/instanceLock.ts";
import { openPlatform } from "../src/platform.ts";
import { startApiRole } from "./api.ts";
import { startDispatcherRole } from "./dispatcher.ts";
import { startExecRole } from "./exec.ts";
import { startHealthRole } from "./health.ts";
import { startRecoveryRole } from "./recovery.ts";
import { runRole } from "./role.ts";

runRole("all", async (log) => {
  const config = loadConfig();
  // Before anything is written or started: a second start on this folder changes nothing.
  const lock = InstanceLock.acquire(config.FAIRLANE_DATA_DIR);
  process.on("exit", () => lock.release());
  const redisDir = join(config.FAIRLANE_DATA_DIR, "redis");
  const passwordFile = join(config.FAIRLANE_DATA_DIR, "redis-password");
  let embedded: EmbeddedRedis | undefined;
  let target: RedisTarget | undefined = redisTargetFromEnv(config);
  if (!target) {
    embedded = new EmbeddedRedis({
      dir: redisDir,
      port: config.FAIRLANE_REDIS_PORT,
      appendfsync: config.FAIRLANE_REDIS_APPENDFSYNC,
      password: secretFile(passwordFile),
      maxmemory: config.FAIRLANE_REDIS_MAXMEMORY,
      supervise: {
        onDeath: ({ pid, exit }) => log.error({ redisPid: pid, exit }, "embedded redis died; restarting it"),
        onRestart: ({ pid, restarts }) => {
          log.warn({ redisPid: pid, restarts }, "embedded redis restarted");
          lock.update({ redisPid: pid });
        },
        // Never serve nothing silently: a Redis that will not stay up ends the whole process.
        onGiveUp: (err) => {
          log.fatal({ err: err.message }, "embedded redis keeps dying; exiting");
          process.stderr.write(`fairlane all: ${err.message}; exiting\n`);
          process.exit(1);
        },
      },
    });
    target = { kind: "single", url: await embedded.start() };
    lock.update({ redisPid: embedded.pid, redis: describeTarget(target) });
    log.info({ redis: describeTarget(target), dir: redisDir }, "embedded redis started");
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
    // Health first: its first probe is written before any work can be resumed (a restart on kept data).
    const health = await startHealthRole(p, log.child({ role: "health" }));
    const exec = await startExecRole(p, log.child({ role: "exec" }));
    const dispatcher = await startDispatcherRole(p, log.child({ role: "dispatcher" }));
    const recovery = await startRecoveryRole(p, log.child({ role: "recovery" }));
    const api = await startApiRole(p, admin.token, log.child({ role: "api" }));
    const base = `http://${config.HOST}:${api.port}`;
    lock.update({ apiUrl: base });
    process.stdout.write(
      [
        "",
        `Fairlane is running at ${base}`,
        // Never the URL itself: the embedded one carries its password.
        `  Redis:       ${describeTarget(target)}${embedded ? ` (embedded, data in ${redisDir}, password in ${passwordFile})` : ""}`,
        `  Admin token: ${admin.file ? `in ${admin.file}` : "FAIRLANE_ADMIN_TOKEN"}`,
        `  Bull Board:  ${base}/admin/queues (user: admin, password: the admin token)`,
        `  API docs:    ${base}/docs (OpenAPI: ${base}/openapi.json)`,
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
