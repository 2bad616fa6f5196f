import { join } from "node:path";
import type { Logger } from "pino";
import { resolveAdminToken, seedTenants } from "../../bootstrap.ts";
import { Downstream } from "../downstream/simulator.ts";
import type { Config } from "../../lib/config.ts";
import { EmbeddedRedis } from "../embeddedRedis.ts";
import { openPlatform, type Platform } from "../../platform.ts";
import { productionLayout, type LayoutOptions } from "./layout.ts";
import { Supervisor } from "./supervisor.ts";

/**
 * The production layout on one machine: a redis-server with AOF
 * (`appendfsync always`), the simulated downstream, and every role as its own
 * supervised OS process (src/dev/topology/layout.ts). `npm run topology` runs it
 * for a person; the fault drill (test/drill/) runs it to break it.
 */
export interface Topology {
  redis: EmbeddedRedis;
  redisUrl: string;
  downstream: Downstream;
  supervisor: Supervisor;
  platform: Platform;
  adminToken: string;
  apiUrls: string[];
  /** Restarts Redis on the same port and data (after a SIGTERM or a kill -9). */
  restartRedis(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTopology(
  config: Config,
  log: Logger,
  o: { dataDir: string; layout: LayoutOptions; env?: Record<string, string>; downstreamCapacity?: number },
): Promise<Topology> {
  const redis = new EmbeddedRedis({ dir: join(o.dataDir, "redis"), port: config.FAIRLANE_REDIS_PORT, appendfsync: "always" });
  const redisUrl = await redis.start();
  const port = Number(new URL(redisUrl).port);
  const downstream = new Downstream({
    port: 0,
    capacity: o.downstreamCapacity ?? config.FAIRLANE_DOWNSTREAM_CAPACITY,
    latencyMs: { min: 20, max: 80 },
  });
  const downstreamUrl = await downstream.start();
  const platform = await openPlatform(config, redisUrl, log);
  await seedTenants(platform, log);
  const admin = resolveAdminToken(config, true);
  const supervisor = new Supervisor({
    logDir: join(o.dataDir, "logs"),
    baseEnv: {
      REDIS_URL: redisUrl,
      FAIRLANE_ADMIN_TOKEN: admin.token,
      FAIRLANE_DOWNSTREAM_URL: downstreamUrl,
      FAIRLANE_PREFIX: config.FAIRLANE_PREFIX,
      ...o.env,
    },
  });
  const specs = productionLayout(o.layout);
  supervisor.start(specs);
  const apiUrls = specs.filter((s) => s.role === "api").map((s) => `http://${config.HOST}:${s.env.PORT}`);
  let current = redis;
  return {
    get redis() {
      return current;
    },
    redisUrl,
    downstream,
    supervisor,
    platform,
    adminToken: admin.token,
    apiUrls,
    async restartRedis() {
      current = new EmbeddedRedis({ dir: join(o.dataDir, "redis"), port, appendfsync: "always" });
      await current.start();
    },
    async stop() {
      await supervisor.stop();
      await platform.close();
      await downstream.stop();
      await current.stop();
    },
  };
}
