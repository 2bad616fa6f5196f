/**
 * `npm start`: every role (src/lib/roles.ts), for a laptop, plus the simulated downstream the example
 * workflows call. The exec role runs in FAIRLANE_START_EXEC_PROCESSES processes of its own
 * (src/dev/execChildren.ts says why; 0 = in this process), the other roles in this one. With REDIS_URL unset it
 * runs a private redis-server (AOF on, appendfsync always) with its data under
 * FAIRLANE_DATA_DIR and stops it on exit; with REDIS_URL (or REDIS_CLUSTER_NODES) set it uses that.
 *
 * The data folder is this process's alone (instance.json, src/lib/instanceLock.ts): a second
 * start refuses before it touches anything. The embedded Redis has a generated password
 * (<data dir>/redis-password), a memory bound (FAIRLANE_REDIS_MAXMEMORY, noeviction), runs in
 * its own process group so Ctrl-C reaches only this process, which drains and stops Redis
 * last, and is restarted if it dies (this process exits when it keeps dying).
 */
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDevKeys, resolveAdminToken, secretFile, seedTenants } from "../src/bootstrap.ts";
import type { Logger } from "pino";
import { loadConfig, type Config } from "../src/lib/config.ts";
import { ROLES, type Role } from "../src/lib/roles.ts";
import { describeTarget, redisTargetFromEnv, type RedisTarget } from "../src/lib/redis.ts";
import { Downstream } from "../src/dev/downstream/simulator.ts";
import { EmbeddedRedis } from "../src/dev/embeddedRedis.ts";
import { ExecChildren } from "../src/dev/execChildren.ts";
import { setChildMetrics } from "../src/observability/metricsRelay.ts";
import { InstanceLock } from "../src/lib/instanceLock.ts";
import { openPlatform } from "../src/platform.ts";
import { startApiRole } from "./api.ts";
import { startDispatcherRole } from "./dispatcher.ts";
import { startExecRole } from "./exec.ts";
import { startHealthRole } from "./health.ts";
import { startRecoveryRole } from "./recovery.ts";
import { runRole, stopDeadlineMs } from "./role.ts";

runRole("all", async (log) => {
  const config = loadConfig();
  // Before anything is written or started: a second start on this folder changes nothing.
  const lock = InstanceLock.acquire(config.FAIRLANE_DATA_DIR);
  process.on("exit", () => lock.release());
  const fromEnv = redisTargetFromEnv(config);
  const embedded = fromEnv ? undefined : embeddedRedis(config, lock, log);
  const target: RedisTarget = fromEnv ?? { kind: "single", url: await embedded!.start() };
  if (embedded) {
    lock.update({ redisPid: embedded.pid, redis: describeTarget(target) });
    log.info({ redis: describeTarget(target), dir: join(config.FAIRLANE_DATA_DIR, "redis") }, "embedded redis started");
  }
  try {
    const p = await openPlatform(config, target, log);
    const tenants = await seedTenants(p, log);
    const admin = resolveAdminToken(config, true);
    const devKeys =
      config.FAIRLANE_DEV_KEYS === "on" || (config.FAIRLANE_DEV_KEYS === "auto" && embedded) ? await ensureDevKeys(p, tenants) : undefined;
    // The simulated FHIR gateway + model endpoint the example workflows call.
    const downstream = new Downstream({
      port: config.FAIRLANE_DOWNSTREAM_PORT,
      capacity: config.FAIRLANE_DOWNSTREAM_CAPACITY,
      latencyMs: { min: 20, max: 80 },
    });
    const downstreamUrl = await downstream.start();
    process.env.FAIRLANE_DOWNSTREAM_URL = downstreamUrl;
    p.config.FAIRLANE_DOWNSTREAM_URL = downstreamUrl;
    let apiPort = 0;
    const starters: Record<Role, () => Promise<{ stop(): Promise<void> }>> = {
      health: () => startHealthRole(p, log.child({ role: "health" })),
      exec: () =>
        config.FAIRLANE_START_EXEC_PROCESSES
          ? startExecProcesses(config, target, embedded, log)
          : startExecRole(p, log.child({ role: "exec" })),
      dispatcher: () => startDispatcherRole(p, log.child({ role: "dispatcher" })),
      recovery: () => startRecoveryRole(p, log.child({ role: "recovery" })),
      api: async () => {
        const api = await startApiRole(p, admin.token, log.child({ role: "api" }));
        apiPort = api.port;
        return api;
      },
    };
    const started: { stop(): Promise<void> }[] = [];
    for (const role of ROLES) started.push(await starters[role]());
    const base = `http://${config.HOST}:${apiPort}`;
    lock.update({ apiUrl: base });
    const redisLine = `${describeTarget(target)}${embedded ? ` (embedded, data in ${join(config.FAIRLANE_DATA_DIR, "redis")}, password in ${join(config.FAIRLANE_DATA_DIR, "redis-password")})` : ""}`;
    process.stdout.write(banner(base, redisLine, admin.file, downstreamUrl, devKeys));
    return async () => {
      for (const r of started.reverse()) await r.stop();
      await downstream.stop();
      await p.close();
      await embedded?.stop();
    };
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
});

/**
 * The exec role in processes of its own (src/dev/execChildren.ts says why), on the same Redis: the
 * embedded one's URL (with its password) goes to them in their environment only. Their metrics are
 * added to this process's /metrics.
 */
async function startExecProcesses(config: Config, target: RedisTarget, embedded: EmbeddedRedis | undefined, log: Logger) {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(embedded && target.kind === "single" ? { REDIS_URL: target.url } : {}) };
  delete env.FAIRLANE_METRICS_PORT; // this process serves theirs
  const children = new ExecChildren({
    processes: config.FAIRLANE_START_EXEC_PROCESSES,
    entry: fileURLToPath(new URL(`./exec${extname(fileURLToPath(import.meta.url))}`, import.meta.url)),
    env,
    log,
    stopTimeoutMs: stopDeadlineMs(),
    onGiveUp: (err) => {
      log.fatal({ err: err.message }, "exec process keeps dying; exiting");
      process.stderr.write(`fairlane all: ${err.message}; exiting\n`);
      process.exit(1);
    },
  });
  await children.start();
  setChildMetrics(() => children.metrics());
  return {
    stop: async () => {
      setChildMetrics(undefined);
      await children.stop();
    },
  };
}

/** The private redis-server of `npm start` (AOF, a generated password, a memory bound), restarted if it dies. */
function embeddedRedis(config: Config, lock: InstanceLock, log: Logger): EmbeddedRedis {
  return new EmbeddedRedis({
    dir: join(config.FAIRLANE_DATA_DIR, "redis"),
    port: config.FAIRLANE_REDIS_PORT,
    appendfsync: config.FAIRLANE_REDIS_APPENDFSYNC,
    password: secretFile(join(config.FAIRLANE_DATA_DIR, "redis-password")),
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
}

/** What `npm start` prints once everything runs: where to go, and where the secrets are (never the secrets). */
function banner(base: string, redis: string, adminFile: string | undefined, downstreamUrl: string, devKeys: string | undefined): string {
  return `${[
    "",
    `Fairlane is running at ${base}`,
    // Never the URL itself: the embedded one carries its password.
    `  Redis:       ${redis}`,
    `  Admin token: ${adminFile ? `in ${adminFile}` : "FAIRLANE_ADMIN_TOKEN"}`,
    `  Bull Board:  ${base}/admin/queues (user: admin, password: the admin token)`,
    `  API docs:    ${base}/docs (OpenAPI: ${base}/openapi.json)`,
    `  Simulated downstream: ${downstreamUrl} (GET /admin/stats, POST /admin/outage {"on":true})`,
    devKeys ? `  Dev API keys (DEVELOPMENT ONLY): source ${devKeys}` : "",
    "",
  ]
    .filter((l, i, a) => l !== "" || i === 0 || i === a.length - 1)
    .join("\n")}\n`;
}
