import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { loadConfig } from "../src/lib/config.ts";
import { redisTargetFromEnv } from "../src/lib/redis.ts";
import { createLogger } from "../src/observability/logger.ts";
import { configureObservability, serveMetrics } from "../src/observability/metricsEndpoint.ts";
import { openPlatform, type Platform } from "../src/platform.ts";

/** True when this module is the process's entrypoint (not imported by workers/all.ts). */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return !!entry && realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl));
}

/** How long a stop may take: the exec role's drain (FAIRLANE_SHUTDOWN_GRACE_MS) plus 5 s to close. */
export function stopDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  let grace = 10_000;
  try {
    grace = loadConfig(env).FAIRLANE_SHUTDOWN_GRACE_MS;
  } catch {
    /* an invalid environment failed the start already; keep the default */
  }
  return grace + 5_000;
}

/**
 * Runs one process role: starts it, and on SIGTERM/SIGINT runs its stop
 * function once and exits 0 (a second signal exits at once). A stop that
 * has not finished by its deadline (stopDeadlineMs: Redis gone, a hand-back
 * that cannot be written) is abandoned: logged, exit 1; what it left undone
 * is for the stall and reconcile paths of the processes that remain. A
 * failed start exits 1 with the reason on stderr and in the log.
 */
export function runRole(role: string, start: (log: Logger) => Promise<() => Promise<void>>): void {
  // The only argument: a smoke check that the entrypoint loads (e.g. in the image, `node dist/workers/api.js --help`).
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(
      `fairlane ${role}: ${role === "all" ? "every process role (npm start)" : `the ${role} role`}; takes no arguments.\n` +
        "Configured by environment variables (docs/configuration.md): REDIS_URL or REDIS_CLUSTER_NODES" +
        `${role === "all" ? " (unset: an embedded redis-server)" : ""}, FAIRLANE_*. SIGTERM drains and exits 0.\n`,
    );
    process.exit(0);
  }
  const log = createLogger(role);
  const started = (async () => {
    configureObservability(loadConfig()); // who may scrape /metrics, the tenant-label cap
    return start(log);
  })();
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    const deadlineMs = stopDeadlineMs();
    log.info({ signal, deadlineMs }, "stopping");
    setTimeout(() => {
      log.error({ deadlineMs }, "stop did not finish within its deadline; exiting without it");
      process.stderr.write(`fairlane ${role}: stop did not finish within ${deadlineMs} ms; exiting 1\n`);
      process.exit(1);
    }, deadlineMs); // kept referenced: a stop hung on a promise nothing will settle must not end as a quiet exit 0
    try {
      const stop = await started; // a signal during start stops what was started
      await stop();
      log.info("stopped");
      process.exit(0);
    } catch (err) {
      log.error({ err }, "stop failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  started.catch((err: Error) => {
    log.fatal({ err: err.message }, "failed to start");
    process.stderr.write(`fairlane ${role}: ${err.message}\n`);
    process.exit(1);
  });
}

/** A role that needs only REDIS_URL (or REDIS_CLUSTER_NODES) and the shared platform (dispatcher, exec, recovery, health). */
export function runPlatformRole(role: string, start: (p: Platform, log: Logger) => Promise<{ stop(): Promise<void> }>): void {
  runRole(role, async (log) => {
    const config = loadConfig();
    const target = redisTargetFromEnv(config);
    if (!target) throw new Error(`REDIS_URL or REDIS_CLUSTER_NODES is required for the ${role} role (npm start runs an embedded Redis)`);
    const p = await openPlatform(config, target, log);
    // Before the role starts, so a metrics port nobody could read refuses the start with nothing running.
    const metricsServer =
      config.FAIRLANE_METRICS_PORT === undefined
        ? undefined
        : await serveMetrics(config.FAIRLANE_METRICS_PORT, config.HOST, config.FAIRLANE_ADMIN_TOKEN, log);
    const r = await start(p, log);
    return async () => {
      metricsServer?.close();
      await r.stop();
      await p.close();
    };
  });
}
