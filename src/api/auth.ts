import { timingSafeEqual, createHash } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { ApiKeys } from "../tenancy/apiKeys.ts";
import { FairlaneError, unauthorized } from "../lib/errors.ts";

declare module "express-serve-static-core" {
  interface Request {
    tenant?: string;
    operator?: string;
  }
}

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** Producer auth: the tenant comes from the API key, never from the request. */
export function tenantAuth(apiKeys: ApiKeys) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const key = bearer(req);
    const record = key ? await apiKeys.lookup(key) : null;
    if (!record) throw unauthorized();
    req.tenant = record.tenant;
    next();
  };
}

const digest = (s: string) => createHash("sha256").update(s).digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/**
 * Admin auth: `Authorization: Bearer <admin token>`, or HTTP Basic with the
 * token as password (browsers: Bull Board and the dashboard). The Basic user
 * name, or the X-Fairlane-Operator header, names who acts in the audit log.
 * A tenant API key is never an admin credential.
 */
export function adminAuth(adminToken: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    const h = req.headers.authorization ?? "";
    let operator: string | undefined;
    const token = bearer(req);
    if (token && sameSecret(token, adminToken)) operator = "admin";
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
    if (basic) {
      const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon >= 0 && sameSecret(decoded.slice(colon + 1), adminToken)) operator = decoded.slice(0, colon) || "admin";
    }
    if (!operator) {
      res.setHeader("WWW-Authenticate", 'Basic realm="fairlane-admin", charset="UTF-8"');
      throw new FairlaneError("UNAUTHORIZED", "admin credentials required (Bearer admin token, or Basic with the token as password)", 401);
    }
    const named = req.headers["x-fairlane-operator"];
    req.operator = typeof named === "string" && /^[\w.@-]{1,64}$/.test(named) ? named : operator;
    next();
  };
}
