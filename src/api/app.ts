import { randomUUID } from "node:crypto";
import express, { type Express } from "express";
import { pinoHttp } from "pino-http";
import type { Logger } from "pino";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import type { Admission } from "../admission/admit.ts";
import type { Clock } from "../lib/clock.ts";
import type { ApiKeys } from "../tenancy/apiKeys.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import { BULL_BOARD_PATH, type BullBoard } from "../../dashboard/bullBoard.ts";
import { adminRouter } from "./admin.ts";
import { backpressureAdminRouter } from "./backpressureAdmin.ts";
import type { HealthStore } from "../backpressure/healthStore.ts";
import type { AuditLog } from "./audit.ts";
import { adminAuth, tenantAuth } from "./auth.ts";
import { errorHandler, notFoundHandler } from "./errors.ts";
import { serializeErr } from "../observability/logger.ts";
import { metricsAuth, metricsHandler } from "../observability/metricsEndpoint.ts";
import { apiDocsRouter } from "./apiDocs.ts";
import { adminWorkflowsRouter, producerRouter } from "./producer.ts";
import { operatorAdminRouter } from "./operatorAdmin.ts";
import { orgsRouter } from "./orgs.ts";
import { startUsageService } from "../usage/usageService.ts";
import { setUsageSource } from "../usage/usageMetrics.ts";
import { DASHBOARD_PATH, tenantDashboardRouter } from "../../dashboard/tenantDashboard.ts";
import { securityHeaders } from "./securityHeaders.ts";
import { explainAdminRouter } from "./explainAdmin.ts";
import { DEFAULT_EXPLAIN, type ExplainSettings } from "../workflows/explain.ts";
import { setWaitingSource } from "../usage/waitingMetrics.ts";
import { setReviewDepthSource } from "../observability/metrics.ts";
import { ReviewerKeys } from "../tenancy/apiKeys.ts";
import { ReviewQueues } from "../workflows/reviewQueues.ts";
import { reviewerPoolsAdminRouter, reviewerRouter } from "./reviews.ts";

export interface AppDeps {
  /** A fail-fast connection (connectForRequests): a request answers 503 within 2 s while Redis is away. */
  redis: Redis;
  keys: Keys;
  clock: Clock;
  log: Logger;
  registry: PolicyRegistry;
  apiKeys: ApiKeys;
  audit: AuditLog;
  admission: Admission;
  bullBoard: BullBoard;
  adminToken: string;
  health: HealthStore;
  recordTtlSec: number;
  /** Cells this api serves (FAIRLANE_CELLS). */
  cells: string[];
  bodyLimit: string;
  bulkBodyLimit: string;
  /** The share options and capacity cap the dispatcher runs with (waitingReason, tenant explain); defaults otherwise. */
  explain?: ExplainSettings;
  /** FAIRLANE_CAPACITY_MIN_EVIDENCE, for the capacity report. */
  capacityMinEvidence?: string;
}

/**
 * The HTTP surface of the api role:
 *   /healthz, /readyz             open (liveness; readiness = Redis answers and no dependency
 *                                 awaits its first health probe)
 *   /v1/workflows...              producers, tenant API key
 *   /v1/reviews...                reviewers, reviewer key (one pool)
 *   /v1/admin/...                 admin token
 *   /admin/queues                 Bull Board, admin token or Basic auth
 *   /dashboard                    Tenant Concurrency Dashboard, admin token or Basic auth
 *   /metrics                      Prometheus text format, admin token
 */
export function createApp(d: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(securityHeaders());
  app.set("trust proxy", false);
  app.use(requestLogging(d.log));
  app.use(apiDocsRouter());
  probeRoutes(app, d);
  apiRoutes(app, d);
  app.use(notFoundHandler);
  app.use(errorHandler(d.log, { retryAfterSec: d.admission.retryAfterSec }));
  return app;
}

/** One log line per request, with an X-Request-Id (the caller's, when well-formed) on every answer. */
function requestLogging(log: Logger) {
  return pinoHttp({
    logger: log,
    genReqId: (req, res) => {
      const given = req.headers["x-request-id"];
      const id = typeof given === "string" && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
      res.setHeader("X-Request-Id", id);
      return id;
    },
    // Only method, path and status: never bodies (PHI), query strings or auth headers.
    serializers: {
      req: (req) => ({ id: req.id, method: req.method, path: String(req.url).split("?")[0] }),
      res: (res) => ({ statusCode: res.statusCode }),
      err: serializeErr, // no Redis command args (src/observability/logger.ts)
    },
    // A 5xx was logged by the error handler; pino-http's stand-in error for it adds only a stack trace.
    customErrorObject: (_req, _res, err, val) => (err.message.startsWith("failed with status code") ? { ...val, err: undefined } : val),
    autoLogging: { ignore: (req) => req.url === "/healthz" || req.url === "/readyz" },
  });
}

/** GET /healthz and GET /readyz, open. */
function probeRoutes(app: Express, d: AppDeps): void {
  app.get("/healthz", (_req, res) => {
    res.json({ ok: true });
  });
  // Ready = within 1 s, Redis answers a PING (a full or read-only Redis still does: those answer 503 per
  // request) and no watched dependency is still "unknown" (a health monitor started and its first probe
  // has not been written; without a health role nothing is unknown). Work sent before that first verdict
  // would meet a dependency nobody has looked at yet.
  app.get("/readyz", async (_req, res) => {
    const down = { redis: false, pending: 0 };
    const r = await Promise.race([
      readiness(d).catch(() => down),
      new Promise<typeof down>((done) => setTimeout(() => done(down), 1000).unref()),
    ]);
    const ok = r.redis && r.pending === 0;
    res.status(ok ? 200 : 503).json({ ok, redis: r.redis ? "up" : "down", ...(r.pending ? { firstProbesPending: r.pending } : {}) });
  });
}

/** /metrics, the admin API, the producer API, Bull Board and the dashboard, each behind its auth. */
function apiRoutes(app: Express, d: AppDeps): void {
  const admin = adminAuth(d.adminToken);
  const producerDeps = {
    redis: d.redis,
    keys: d.keys,
    admission: d.admission,
    clock: d.clock,
    bodyLimit: d.bodyLimit,
    bulkBodyLimit: d.bulkBodyLimit,
    recordTtlSec: d.recordTtlSec,
    explain: d.explain ?? DEFAULT_EXPLAIN,
  };
  const usage = startUsageService({ redis: d.redis, keys: d.keys, clock: d.clock, registry: d.registry });
  setUsageSource((maxAgeMs) => usage.sampler.fresh(maxAgeMs));
  setWaitingSource((maxAgeMs) => usage.sampler.fresh(maxAgeMs));
  // Prometheus scrapes with the admin token or FAIRLANE_METRICS_TOKEN (FAIRLANE_METRICS_AUTH=none: open).
  app.get("/metrics", metricsAuth(d.adminToken), metricsHandler);
  const reviewQueues = new ReviewQueues(d.redis, d.keys, d.cells);
  setReviewDepthSource(async () => (await reviewQueues.depth()).waiting);
  const reviews = {
    reviewerKeys: new ReviewerKeys(d.redis, d.keys),
    queues: reviewQueues,
    clock: d.clock,
    audit: d.audit,
    bodyLimit: d.bodyLimit,
  };
  app.use(
    "/v1/admin",
    admin,
    adminRouter({ registry: d.registry, apiKeys: d.apiKeys, audit: d.audit, bodyLimit: d.bodyLimit }),
    backpressureAdminRouter({
      redis: d.redis,
      keys: d.keys,
      health: d.health,
      audit: d.audit,
      clock: d.clock,
      cells: d.cells,
      recordTtlSec: d.recordTtlSec,
    }),
    operatorAdminRouter({
      redis: d.redis,
      keys: d.keys,
      clock: d.clock,
      registry: d.registry,
      audit: d.audit,
      usage,
      recordTtlSec: d.recordTtlSec,
      capacityMinEvidence: d.capacityMinEvidence,
    }),
    orgsRouter({ redis: d.redis, keys: d.keys, registry: d.registry, audit: d.audit }),
    explainAdminRouter({ ...producerDeps, registry: d.registry, cells: d.cells }),
    adminWorkflowsRouter(producerDeps),
    reviewerPoolsAdminRouter(reviews),
    notFoundHandler,
  );
  app.use("/v1/reviews", reviewerRouter(reviews), notFoundHandler);
  app.use("/v1", tenantAuth(d.apiKeys), producerRouter(producerDeps));
  app.use(BULL_BOARD_PATH, admin, d.bullBoard.router);
  app.use(DASHBOARD_PATH, admin, tenantDashboardRouter());
}

/** Redis answers a PING; then how many watched dependencies still await their first probe (HealthStore.firstProbesPending). */
async function readiness(d: AppDeps): Promise<{ redis: boolean; pending: number }> {
  if (
    !(await d.redis.ping().then(
      () => true,
      () => false,
    ))
  )
    return { redis: false, pending: 0 };
  return { redis: true, pending: await d.health.firstProbesPending() };
}
