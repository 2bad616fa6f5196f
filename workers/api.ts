/**
 * The api role: producer and admin HTTP, Bull Board. Run several behind a load
 * balancer; they share nothing but Redis.
 *   REDIS_URL=redis://... FAIRLANE_ADMIN_TOKEN=... tsx workers/api.ts
 */
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import { BullBoard } from "../dashboard/bullBoard.ts";
import { HealthStore } from "../src/backpressure/healthStore.ts";
import { createApp } from "../src/api/app.ts";
import { resolveAdminToken, seedTenants } from "../src/bootstrap.ts";
import { loadConfig } from "../src/lib/config.ts";
import { redisTargetFromEnv } from "../src/lib/redis.ts";
import { openPlatform, type Platform } from "../src/platform.ts";
import { explainSettings } from "../src/workflows/explain.ts";
import { isMain, runRole } from "./role.ts";

export interface ApiRole {
  server: Server;
  bullBoard: BullBoard;
  port: number;
  stop(): Promise<void>;
}

export async function startApiRole(p: Platform, adminToken: string, log: Logger): Promise<ApiRole> {
  // Requests get a connection of their own that fails fast: while Redis is away they answer 503
  // REDIS_UNAVAILABLE within 2 s instead of waiting on the platform's (reconnect-and-wait) connection.
  const rq = await p.forRequests();
  p.registry.setWriter(rq.redis); // an admin's policy write answers 503 too, not a hang
  const bullBoard = new BullBoard(rq.redis, p.keys, p.registry);
  await bullBoard.start();
  const app = createApp({
    cells: p.config.FAIRLANE_CELLS.split(","),
    redis: rq.redis,
    keys: p.keys,
    clock: p.clock,
    log,
    registry: p.registry,
    apiKeys: rq.apiKeys,
    audit: rq.audit,
    admission: rq.admission,
    bullBoard,
    adminToken,
    health: new HealthStore(rq.redis, p.keys, p.config.FAIRLANE_CELLS.split(","), p.clock),
    recordTtlSec: p.config.FAIRLANE_RECORD_TTL_SEC,
    bodyLimit: p.config.FAIRLANE_BODY_LIMIT,
    bulkBodyLimit: p.config.FAIRLANE_BULK_BODY_LIMIT,
    explain: explainSettings(p.config),
    capacityMinEvidence: p.config.FAIRLANE_CAPACITY_MIN_EVIDENCE,
  });
  // A client dribbling its headers or body must not hold a socket for Node's default 300 s: 408 after
  // these. Node looks for late requests every connectionsCheckingInterval (default 30 s).
  const requestTimeout = p.config.FAIRLANE_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(p.config.FAIRLANE_HEADERS_TIMEOUT_MS, requestTimeout);
  const server = createServer(
    { requestTimeout, headersTimeout, connectionsCheckingInterval: Math.min(1_000, Math.ceil(headersTimeout / 4)) },
    app,
  );
  server.listen(p.config.PORT, p.config.HOST);
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
      p.registry.setWriter(undefined);
      await rq.close();
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
