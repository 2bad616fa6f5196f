import { timingSafeEqual, createHash } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { FairlaneError } from "./errors.ts";
import { OPERATOR_NAME_RULE, operatorName, type OperatorName } from "./operatorName.ts";

// The admin credential check, shared by the api (src/api/auth.ts) and every role's /metrics
// (src/observability/metricsEndpoint.ts), so it sits below both. It names who acts: req.operator.
declare module "express-serve-static-core" {
  interface Request {
    operator?: OperatorName;
  }
}

/** The token of `Authorization: Bearer <token>`, if that is what the request carries. */
export function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

const digest = (s: string) => createHash("sha256").update(s).digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));
const utf8 = new TextDecoder("utf-8", { fatal: true });
const BASIC_REALM = 'Basic realm="fairlane-admin", charset="UTF-8"';

/** UTF-8 bytes to text, or null when they are not UTF-8 (no silent U+FFFD in a name). */
function decodeUtf8(bytes: Buffer): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Admin auth: `Authorization: Bearer <admin token>`, or HTTP Basic with the
 * token as password (browsers: Bull Board and the dashboard). The Basic user
 * name, or the X-Fairlane-Operator header, names who acts in the audit log and
 * must follow OPERATOR_NAME_RULE (a bad Basic name answers 401 so the browser
 * asks again; a bad header 400). A tenant API key is never an admin credential.
 *
 * A browser re-sends Basic credentials on its own, to any page's request, so
 * with Basic a state-changing request (not GET/HEAD/OPTIONS: every write under
 * /v1/admin, Bull Board's API) must also show it comes from our own page:
 * see `withoutIntent`. A Bearer token is never sent by a browser on its own,
 * so it needs nothing more: the CLI and scripts use it.
 */
export function adminAuth(adminToken: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    const h = req.headers.authorization ?? "";
    let who: string | undefined;
    let scheme: "bearer" | "basic" | undefined;
    const token = bearer(req);
    if (token && sameSecret(token, adminToken)) {
      who = "admin";
      scheme = "bearer";
    }
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
    if (basic) {
      const decoded = decodeUtf8(Buffer.from(basic[1]!, "base64")) ?? "";
      const colon = decoded.indexOf(":");
      if (colon >= 0 && sameSecret(decoded.slice(colon + 1), adminToken)) {
        who = decoded.slice(0, colon) || "admin";
        scheme = "basic";
      }
    }
    if (!who || !scheme) {
      res.setHeader("WWW-Authenticate", BASIC_REALM);
      throw new FairlaneError("UNAUTHORIZED", "admin credentials required (Bearer admin token, or Basic with the token as password)", 401);
    }
    let operator = operatorName(who);
    if (!operator) {
      res.setHeader("WWW-Authenticate", BASIC_REALM);
      throw new FairlaneError("UNAUTHORIZED", `the Basic user name names who acts in the audit log and must be ${OPERATOR_NAME_RULE}`, 401);
    }
    const named = req.headers["x-fairlane-operator"];
    if (named !== undefined) {
      // Node reads header bytes as latin1; the CLI sends the name's UTF-8 bytes.
      const text = typeof named === "string" ? decodeUtf8(Buffer.from(named, "latin1")) : null;
      operator = text === null ? null : operatorName(text);
      if (!operator)
        throw new FairlaneError("INVALID_OPERATOR", `X-Fairlane-Operator must be ${OPERATOR_NAME_RULE}`, 400, [
          { field: "X-Fairlane-Operator", message: OPERATOR_NAME_RULE },
        ]);
    }
    if (scheme === "basic") {
      const why = withoutIntent(req);
      if (why)
        throw new FairlaneError(
          "CROSS_SITE_REQUEST",
          `refused ${why}: with Basic (browser) credentials a state-changing admin request must be same-origin JSON (Content-Type: application/json); scripts and the CLI use Authorization: Bearer <admin token>`,
          403,
        );
    }
    req.operator = operator;
    next();
  };
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Whether an Origin header names the very host the request was sent to (scheme's default port implied). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const o = new URL(origin);
    return o.origin === origin.replace(/\/$/, "") && new URL(`${o.protocol}//${host}`).host === o.host;
  } catch {
    return false; // "null" (sandboxed frames, some redirects) and anything unparsable
  }
}

/**
 * Why a state-changing request carrying Basic credentials may not be its
 * operator's intent, or null when it shows intent. Two independent guards:
 *  - it is not cross-site: `Sec-Fetch-Site` (set by every current browser, and
 *    no page can forge it) must be `same-origin` or `none`; a browser without
 *    it still sends `Origin` on every cross-origin POST, which must then be this
 *    host. With neither header it is no browser (curl -u): allowed.
 *  - its body is JSON: an HTML form can only send urlencoded, multipart or
 *    text/plain, and a page's fetch of application/json to another origin needs
 *    a CORS preflight this API never approves.
 * Behind a proxy that rewrites Host, browsers still pass on Sec-Fetch-Site.
 */
export function withoutIntent(req: Request): string | null {
  if (SAFE_METHODS.has(req.method)) return null;
  const site = one(req.headers["sec-fetch-site"]);
  const origin = one(req.headers.origin);
  if (site !== undefined) {
    if (site !== "same-origin" && site !== "none") return `a ${site.slice(0, 20)} request (Sec-Fetch-Site)`;
  } else if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
    return `a request from another origin (Origin: ${origin.slice(0, 100)})`;
  }
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") return type ? `a ${type.slice(0, 60)} body` : "a request without a JSON body";
  return null;
}
