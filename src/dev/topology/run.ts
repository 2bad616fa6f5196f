/**
 * `npm run topology`: the docker-compose layout as local processes — Redis
 * with AOF (appendfsync always), api ×2, dispatcher ×2, exec ×3 (pool
 * default) and ×2 (pool eu-west-1), health ×2, recovery ×2 — each supervised
 * and restarted if it dies. Data and logs in FAIRLANE_DATA_DIR/topology.
 * PORT (default 3001) is the first api's port; FAIRLANE_REDIS_PORT (0 = free).
 * Ctrl-C stops everything (roles drain on SIGTERM).
 */
import { join } from "node:path";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../observability/logger.ts";
import { startTopology } from "./topology.ts";

const config = loadConfig({ PORT: "3001", FAIRLANE_REDIS_PORT: "0", ...process.env });
const log = createLogger("topology", process.env.LOG_LEVEL ?? "info");
const dataDir = join(config.FAIRLANE_DATA_DIR, "topology");
const t = await startTopology({ ...config, FAIRLANE_DATA_DIR: dataDir }, log, {
  dataDir,
  layout: { apiPort: config.PORT, execConcurrency: config.FAIRLANE_CONCURRENCY },
});
await t.supervisor.settled();
process.stdout.write(
  `${[
    "",
    `Fairlane topology: ${t.supervisor.list().length} processes on ${t.redisUrl} (AOF, appendfsync always)`,
    ...t.apiUrls.map((u, i) => `  api-${i + 1}: ${u}`),
    `  admin token: FAIRLANE_ADMIN_TOKEN or ${join(dataDir, "admin-token")}`,
    `  logs: ${join(dataDir, "logs")}/<process>.log`,
    ...t.supervisor.list().map((s) => `  ${s.spec.name.padEnd(18)} pid ${s.pid}`),
    "",
  ].join("\n")}\n`,
);
let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => {
    if (stopping) process.exit(1);
    stopping = true;
    void t.stop().then(() => process.exit(0));
  });
