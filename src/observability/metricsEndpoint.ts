import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "pino";
import { adminAuth } from "../lib/adminAuth.ts";
import type { Config } from "../lib/config.ts";
import { registry } from "./metrics.ts";
import { renderMetrics } from "./metricsRelay.ts";
import { tenantLabels } from "./tenantLabel.ts";

/**
 * Who may read /metrics, and how it is served.
 *
 *   FAIRLANE_METRICS_AUTH=admin (default)  the admin token (Bearer, or Basic
 *       with the token as password), or FAIRLANE_METRICS_TOKEN when set: a
 *       read-only credential for Prometheus that opens nothing but /metrics.
 *       A tenant API key is never either: 401.
 *   FAIRLANE_METRICS_AUTH=none  anyone who can reach the port (a private
 *       scrape network only).
 *
 * The api role serves /metrics on its own port (src/api/app.ts); the other
 * roles on FAIRLANE_METRICS_PORT (workers/role.ts, serveMetrics below), where
 * the admin token counts only if that process has FAIRLANE_ADMIN_TOKEN.
 */
export interface MetricsAccess {
  mode: "admin" | "none";
  /** The read-only scrape token (FAIRLANE_METRICS_TOKEN). */
  token?: string;
}

let access: MetricsAccess = { mode: "admin" };

/** Applies the observability part of the config: who may scrape, and the tenant-label cap. */
export function configureObservability(config: Config): void {
  access = { mode: config.FAIRLANE_METRICS_AUTH, token: config.FAIRLANE_METRICS_TOKEN };
  const pinned = config.FAIRLANE_METRICS_TENANTS.split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  tenantLabels.configure(config.FAIRLANE_METRICS_MAX_TENANTS, pinned);
}

export function setMetricsAccess(a: MetricsAccess): void {
  access = a;
}

const digest = (s: string) => createHash("sha256").update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** The secret a request presents: a Bearer token, or the password of HTTP Basic. */
function presented(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/** Whether a request with this Authorization header may read metrics, given the credentials this process knows. */
export function mayScrape(authorization: string | undefined, adminToken: string | undefined, a: MetricsAccess = access): boolean {
  if (a.mode === "none") return true;
  const secret = presented(authorization);
  if (!secret) return false;
  return (!!a.token && same(secret, a.token)) || (!!adminToken && same(secret, adminToken));
}

/** Express middleware for the api's /metrics: the scrape token, else the admin auth (its 401 and audit name). */
export function metricsAuth(adminToken: string) {
  const admin = adminAuth(adminToken);
  return (req: Request, res: Response, next: NextFunction) => {
    if (access.mode === "none" || (access.token && mayScrape(req.headers.authorization, undefined))) return next();
    return admin(req, res, next);
  };
}

export async function metricsHandler(_req: Request, res: Response): Promise<void> {
  res.setHeader("Content-Type", registry.contentType);
  res.send(await renderMetrics());
}

/**
 * Prometheus text on GET /metrics for roles without the api's HTTP server.
 * Refuses to start when metrics need a credential and this process has none.
 */
export async function serveMetrics(port: number, host: string, adminToken: string | undefined, log: Logger): Promise<Server> {
  if (access.mode === "admin" && !access.token && !adminToken)
    throw new Error(
      "FAIRLANE_METRICS_PORT is set but no credential can read it: set FAIRLANE_METRICS_TOKEN (or FAIRLANE_ADMIN_TOKEN), or FAIRLANE_METRICS_AUTH=none on a private scrape network",
    );
  const server = createServer((req, res) => {
    if ((req.url ?? "").split("?")[0] !== "/metrics" || req.method !== "GET") {
      res.writeHead(404).end();
      return;
    }
    if (!mayScrape(req.headers.authorization, adminToken)) {
      res.writeHead(401, { "WWW-Authenticate": 'Bearer realm="fairlane-metrics"', "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: { code: "UNAUTHORIZED", message: "metrics credentials required (Bearer metrics or admin token)" } }));
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "Content-Type": registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  log.info({ port: (server.address() as { port: number }).port }, "metrics listening");
  return server;
}
