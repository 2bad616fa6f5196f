/**
 * The api role: producer and admin HTTP, Bull Board. Run several behind a load
 * balancer; they share nothing but Redis.
 *   REDIS_URL=redis://... FAIRLANE_ADMIN_TOKEN=... tsx workers/api.ts
 */
import type { Server } from "node:http";
import type { Logger } from "pino";
import { BullBoard } from "../dashboard/bullBoard.ts";
import { HealthStore } from "../src/backpressure/healthStore.ts";
import { createApp } from "../src/api/app.ts";
import { resolveAdminToken, seedTenants } from "../src/bootstrap.ts";
import { loadConfig } from "../src/lib/config.ts";
import { redisTargetFromEnv } from "../src/lib/redis.ts";
import { openPlatform, type Platform } from "../src/platform.ts";
import { isMain, runRole } from "./role.ts";

export interface ApiRole {
  server: Server;
  bullBoard: BullBoard;
  port: number;
  stop(): Promise<void>;
}

export async function startApiRole(p: Platform, adminToken: string, log: Logger): Promise<ApiRole> {
  const bullBoard = new BullBoard(p.redis, p.keys, p.registry);
  await bullBoard.start();
  const app = createApp({
    cells: p.config.FAIRLANE_CELLS.split(","),
    redis: p.redis,
    keys: p.keys,
    clock: p.clock,
    log,
    registry: p.registry,
    apiKeys: p.apiKeys,
    audit: p.audit,
    admission: p.admission,
    bullBoard,
    adminToken,
    health: new HealthStore(p.redis, p.keys, p.config.FAIRLANE_CELLS.split(","), p.clock),
    recordTtlSec: p.config.FAIRLANE_RECORD_TTL_SEC,
    bodyLimit: p.config.FAIRLANE_BODY_LIMIT,
    bulkBodyLimit: p.config.FAIRLANE_BULK_BODY_LIMIT,
  });
  const server = app.listen(p.config.PORT, p.config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const port = (server.address() as { port: number }).port;
  log.info({ port, host: p.config.HOST }, "api listening");
  return {
    server,
    bullBoard,
    port,
    async stop() {
      // Stop taking requests, let in-flight ones finish (keep-alive sockets are closed when idle).
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await bullBoard.stop();
    },
  };
}

if (isMain(import.meta.url)) {
  runRole("api", async (log) => {
    const config = loadConfig();
    const target = redisTargetFromEnv(config);
    if (!target) throw new Error("REDIS_URL or REDIS_CLUSTER_NODES is required for the api role (npm start runs an embedded Redis)");
    const p = await openPlatform(config, target, log);
    await seedTenants(p, log);
    const role = await startApiRole(p, resolveAdminToken(config, false).token, log);
    return async () => {
      await role.stop();
      await p.close();
    };
  });
}
