import express, { Router } from "express";
import { fileURLToPath } from "node:url";

export const DASHBOARD_PATH = "/dashboard";

/**
 * The Tenant Concurrency Dashboard at /dashboard (the caller puts admin auth in
 * front of it): static HTML, CSS and vanilla JS modules in dashboard/public/,
 * which poll GET /v1/admin/usage (and, for the Reviewer queues panel,
 * GET /v1/admin/reviewer-pools; for the Organisations panel, GET /v1/admin/orgs)
 * with the browser's Basic credentials and act
 * through the admin API. No framework, no build step, no third-party script:
 * the Content-Security-Policy (src/api/securityHeaders.ts, for the whole app)
 * allows only this origin.
 */
export function tenantDashboardRouter(): Router {
  const r = Router();
  r.use((_req, res, next) => {
    res.setHeader("Cache-Control", "no-cache");
    next();
  });
  r.use(express.static(fileURLToPath(new URL("./public/", import.meta.url)), { index: "index.html", redirect: true, fallthrough: true }));
  return r;
}
