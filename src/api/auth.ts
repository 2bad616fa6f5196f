import type { NextFunction, Request, Response } from "express";
import type { ApiKeys } from "../tenancy/apiKeys.ts";
import { bearer } from "../lib/adminAuth.ts";
import { unauthorized } from "../lib/errors.ts";

/** Admin auth lives in src/lib/adminAuth.ts: the roles' /metrics (src/observability/metricsEndpoint.ts) use it too. */
export { adminAuth, withoutIntent } from "../lib/adminAuth.ts";

declare module "express-serve-static-core" {
  interface Request {
    tenant?: string;
    /** The API key's id (never the key): who did it, in the tenant's audit trail. */
    keyId?: string;
  }
}

/** Producer auth: the tenant comes from the API key, never from the request. */
export function tenantAuth(apiKeys: ApiKeys) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const key = bearer(req);
    const record = key ? await apiKeys.lookup(key) : null;
    if (!record) throw unauthorized();
    req.tenant = record.tenant;
    req.keyId = record.keyId;
    next();
  };
}
