import { Router, type Request } from "express";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { TENANT_ID } from "../../queues/names.ts";
import { FairlaneError, invalidRequest, notFound } from "../lib/errors.ts";
import { OrgPolicySchema, type OrgEntry, type OrgPolicy } from "../tenancy/orgs.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import type { AuditLog } from "./audit.ts";
import { body } from "./operatorAdmin.ts";

/**
 * Organisations, under /v1/admin (admin auth and the JSON body parser before it): an org is a parent
 * over several tenants whose caps bound them together (src/tenancy/orgs.ts). A tenant joins one with
 * `org` in its policy (PUT/PATCH /v1/admin/tenants/:tenant).
 *   GET    /orgs          every org: { orgs: [{ org, policy, tenants, live }] }
 *   GET    /orgs/:org     one: { org, policy, tenants, live }
 *   PUT    /orgs/:org     create (201) or replace (200) its policy: { org, policy, tenants }
 *   DELETE /orgs/:org     204; 409 ORG_HAS_TENANTS while a tenant belongs to it
 * `live` is what the dispatcher holds now, read in one pipeline: the org's slots (`run:@<org>` of its
 * tenants' cell) and each tenant's (`run:<tenant>`), next to the org's caps, so an operator sees
 * whether the org, not the tenant, is what holds a tenant's work. Every write is in the audit log.
 */
export interface OrgDeps {
  /** The fail-fast request connection: a read during a Redis outage answers 503. */
  redis: Redis;
  keys: Keys;
  registry: PolicyRegistry;
  audit: AuditLog;
}

/** Slots held: Class A, and Class B and C together (the two caps). */
export interface Slots {
  A: number;
  BC: number;
}

export interface OrgLive {
  /** The cell its tenants live in (they share one); null while it has no tenant. */
  cell: string | null;
  running: Slots;
  byTenant: Record<string, Slots>;
  /** null: the org does not bound it. */
  caps: { mca: number | null; mcaUrgent: number | null };
}

export interface OrgView {
  org: string;
  policy: OrgPolicy;
  tenants: string[];
  live: OrgLive;
}

function orgParam(req: Request): string {
  const o = req.params.org;
  if (typeof o !== "string" || !TENANT_ID.test(o))
    throw invalidRequest(`org name must match ${TENANT_ID} (lowercase letters, digits, - and _)`, [
      { field: "org", message: "invalid org name" },
    ]);
  return o;
}

/** A `run:` hash's counts as the dispatch scripts keep them (never clamped: a count below 0 is a bug to see). */
const slots = (h: Record<string, string> | undefined): Slots => ({ A: Number(h?.A ?? 0) || 0, BC: Number(h?.BC ?? 0) || 0 });

/** Every org's view, its live slots read in one pipeline (one HGETALL per org with tenants, one per tenant). */
export async function orgViews(d: OrgDeps, entries: OrgEntry[]): Promise<OrgView[]> {
  const plans = entries.map((e) => {
    const members = d.registry.tenantsOf(e.org);
    return { e, cell: members[0]?.policy.cell ?? null, tenants: members.map((m) => m.tenant) };
  });
  const pipeline = d.redis.pipeline();
  for (const p of plans) {
    if (p.cell === null) continue;
    const cell = d.keys.cell(p.cell);
    pipeline.hgetall(cell.running(`@${p.e.org}`));
    for (const t of p.tenants) pipeline.hgetall(cell.running(t));
  }
  const results = pipeline.length ? ((await pipeline.exec()) ?? []) : [];
  const failed = results.find(([err]) => err)?.[0];
  if (failed) throw failed;
  let i = 0;
  const next = () => results[i++]?.[1] as Record<string, string> | undefined;
  return plans.map(({ e, cell, tenants }) => {
    const running = cell === null ? slots(undefined) : slots(next());
    const byTenant: Record<string, Slots> = {};
    for (const t of tenants) byTenant[t] = cell === null ? slots(undefined) : slots(next());
    const live: OrgLive = { cell, running, byTenant, caps: { mca: e.policy.mca, mcaUrgent: e.policy.mcaUrgent } };
    return { org: e.org, policy: e.policy, tenants, live };
  });
}

export function orgsRouter(d: OrgDeps): Router {
  const r = Router();

  r.get("/orgs", async (_req, res) => {
    res.setHeader("Cache-Control", "no-store");
    res.json({ orgs: await orgViews(d, d.registry.orgs()) });
  });

  r.get("/orgs/:org", async (req, res) => {
    const entry = d.registry.org(orgParam(req));
    if (!entry) throw notFound("org");
    res.setHeader("Cache-Control", "no-store");
    res.json((await orgViews(d, [entry]))[0]);
  });

  r.put("/orgs/:org", async (req, res) => {
    const org = orgParam(req);
    if (req.body === undefined) throw invalidRequest("the body must be a JSON org policy (Content-Type: application/json)");
    body(OrgPolicySchema, req.body, `policy for org "${org}"`);
    const existed = d.registry.org(org) !== undefined;
    const entry = await d.registry.putOrg(org, req.body);
    await d.audit.record(req.operator!, "org.put", org, req.body);
    res.status(existed ? 200 : 201).json({ ...entry, tenants: d.registry.tenantsOf(org).map((t) => t.tenant) });
  });

  r.delete("/orgs/:org", async (req, res) => {
    const org = orgParam(req);
    if (!d.registry.org(org)) throw notFound("org");
    const tenants = d.registry.tenantsOf(org).map((t) => t.tenant);
    if (tenants.length)
      throw new FairlaneError(
        "ORG_HAS_TENANTS",
        `org "${org}" still has tenants (${tenants.join(", ")}): move them out first (their policy's org)`,
        409,
        { tenants },
      );
    if (!(await d.registry.deleteOrg(org))) throw notFound("org");
    await d.audit.record(req.operator!, "org.delete", org);
    res.status(204).end();
  });

  return r;
}
