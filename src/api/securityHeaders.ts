import type { NextFunction, Request, Response } from "express";
import { BULL_BOARD_PATH } from "../../dashboard/bullBoard.ts";
import { DASHBOARD_PATH } from "../../dashboard/tenantDashboard.ts";
import { DOCS_PATH } from "./apiDocs.ts";

/**
 * Response headers for every answer of the api: no MIME sniffing, no framing
 * (clickjacking an on-call action), no Referer leaving with an admin URL, and a
 * Content-Security-Policy per surface:
 *   - JSON (everything but the two pages): loads nothing, is framed nowhere.
 *   - /dashboard: our own HTML, CSS and JS modules only; nothing inline; the
 *     confirmation <dialog> is the only form and never submits anywhere.
 *   - /admin/queues (Bull Board, served from @bull-board/ui's local build): its
 *     scripts, chunks, highlight worker and CSS from this origin; inline styles
 *     (its loading screen and its components' style attributes: without
 *     'unsafe-inline' Chromium logs a violation for each); data: images. Its
 *     page links Google Fonts, which dashboard/bullBoard.ts strips, so nothing
 *     loads from a third party. No inline script runs (its config block is JSON).
 *   - /docs (Swagger UI from swagger-ui-dist, served here): the same, and it fetches /openapi.json.
 */
const common = "frame-ancestors 'none'; object-src 'none'";
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";
export const DASHBOARD_CSP = `default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; ${common}`;
export const BULL_BOARD_CSP = `default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'self'; ${common}`;

export const DOCS_CSP = `default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; ${common}`;

const under = (path: string, root: string) => path === root || path.startsWith(`${root}/`);

export function cspFor(path: string): string {
  if (under(path, DASHBOARD_PATH)) return DASHBOARD_CSP;
  if (under(path, BULL_BOARD_PATH)) return BULL_BOARD_CSP;
  if (under(path, DOCS_PATH)) return DOCS_CSP;
  return API_CSP;
}

export function securityHeaders() {
  return (req: Request, res: Response, next: NextFunction) => {
    res.setHeader("Content-Security-Policy", cspFor(req.path));
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    next();
  };
}
