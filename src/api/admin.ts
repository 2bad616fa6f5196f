import express, { Router, type Request } from "express";
import { z } from "zod";
import { TENANT_ID } from "../../queues/names.ts";
import { invalidRequest, notFound } from "../lib/errors.ts";
import type { ApiKeys } from "../tenancy/apiKeys.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import type { AuditLog } from "./audit.ts";

export interface AdminDeps {
  registry: PolicyRegistry;
  apiKeys: ApiKeys;
  audit: AuditLog;
  bodyLimit: string;
}

const KeyRequest = z.strictObject({ label: z.string().max(100).optional() });

function tenantParam(req: Request): string {
  const t = req.params.tenant;
  if (typeof t !== "string" || !TENANT_ID.test(t))
    throw invalidRequest(`tenant id must match ${TENANT_ID} (lowercase letters, digits, - and _)`, [
      { field: "tenant", message: "invalid tenant id" },
    ]);
  return t;
}

/** The admin API under /v1/admin. Every route runs after adminAuth. */
export function adminRouter(d: AdminDeps): Router {
  const r = Router();
  r.use(express.json({ limit: d.bodyLimit, strict: true }));

  r.get("/tenants", (_req, res) => {
    res.json({ tenants: d.registry.list() });
  });

  r.get("/tenants/:tenant", (req, res) => {
    const entry = d.registry.get(tenantParam(req));
    if (!entry) throw notFound("tenant");
    res.json(entry);
  });

  r.put("/tenants/:tenant", async (req, res) => {
    const tenant = tenantParam(req);
    if (req.body === undefined) throw invalidRequest("the body must be a JSON policy (Content-Type: application/json)");
    const existed = d.registry.get(tenant) !== undefined;
    const entry = await d.registry.put(tenant, req.body);
    await d.audit.record(req.operator!, existed ? "tenant.replace" : "tenant.create", tenant, entry.spec);
    res.status(existed ? 200 : 201).json(entry);
  });

  r.get("/tenants/:tenant/keys", async (req, res) => {
    const tenant = tenantParam(req);
    if (!d.registry.get(tenant)) throw notFound("tenant");
    res.json({ keys: await d.apiKeys.list(tenant) });
  });

  r.post("/tenants/:tenant/keys", async (req, res) => {
    const tenant = tenantParam(req);
    if (!d.registry.get(tenant)) throw notFound("tenant");
    const body = KeyRequest.safeParse(req.body ?? {});
    if (!body.success) throw invalidRequest("invalid key request: label must be a string of at most 100 characters");
    const created = await d.apiKeys.create(tenant, body.data.label);
    await d.audit.record(req.operator!, "key.create", tenant, { keyId: created.keyId });
    res.status(201).json(created);
  });

  r.delete("/tenants/:tenant/keys/:keyId", async (req, res) => {
    const tenant = tenantParam(req);
    const keyId = String(req.params.keyId);
    if (!/^[0-9a-f]{12}$/.test(keyId) || !(await d.apiKeys.revoke(tenant, keyId))) throw notFound("key");
    await d.audit.record(req.operator!, "key.revoke", tenant, { keyId });
    res.status(204).end();
  });

  r.get("/audit", async (req, res) => {
    const limit = z.coerce.number().int().min(1).max(1000).catch(100).parse(req.query.limit);
    res.json({ entries: await d.audit.list(limit) });
  });

  return r;
}
