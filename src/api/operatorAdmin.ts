import { Router, type Request } from "express";
import type { Redis } from "ioredis";
import { z } from "zod";
import type { Keys } from "../../queues/keys.ts";
import { resolveParked } from "../../queues/lua/parking.ts";
import { ingressQueue, TENANT_ID } from "../../queues/names.ts";
import { parkedIdsOfTenant } from "../backpressure/parkedByTenant.ts";
import { capacityReport, DEFAULT_REPORT, parseDuration, parseWindow } from "../usage/capacityReport.ts";
import type { Clock } from "../lib/clock.ts";
import { invalidRequest, notFound } from "../lib/errors.ts";
import type { UsageService } from "../usage/usageService.ts";
import type { TenantUsage } from "../usage/usageSnapshot.ts";
import { formatIssues } from "../tenancy/policy.ts";
import type { PolicyRegistry, TenantEntry } from "../tenancy/registry.ts";
import { applySpecPatch } from "../tenancy/specPatch.ts";
import { drainTenant } from "../workflows/drain.ts";
import { epochOrIso } from "../workflows/listIndex.ts";
import { eraseEnded, type ErasureCounts } from "../../queues/lua/erase.ts";
import { TenantCells } from "../admission/tenantCells.ts";
import { platformSummary, sortUsage, USAGE_SORTS, type UsageSort } from "./usageView.ts";
import type { AuditLog } from "./audit.ts";

/**
 * On-call operator controls, under /v1/admin (admin auth before it). The
 * Tenant Concurrency Dashboard and `fairlane` CLI are clients of these:
 *   GET   /usage?sort=&order=&q=&atCap=&limit=&offset=   every tenant's live usage + the platform header
 *   GET   /usage/:tenant                                  one tenant's usage and its 15-minute history
 *   PATCH /tenants/:tenant                                merge a partial policy spec (validated whole)
 *   POST  /tenants/:tenant/pause | /resume                set `paused`
 *   POST  /tenants/:tenant/drain      { classes } | { all: true }   cancel its queued ingress workflows (an empty body drains nothing: 400)
 *   POST  /tenants/:tenant/parked/requeue | /fail { reason? }  every parked workflow of the tenant
 *   DELETE /tenants/:tenant/data?before=<time>             erase its workflows that ended before then (never queued,
 *                                                         running or parked work), in every cell that held them
 *   GET   /capacity-report?window=24h                     raise/lower mca and mctc, with the evidence
 *                                                         (none below FAIRLANE_CAPACITY_MIN_EVIDENCE of data)
 * Every write is in the audit log (who, when, what). Bad input answers 400 naming the field.
 */
export interface OperatorAdminDeps {
  redis: Redis;
  keys: Keys;
  clock: Clock;
  registry: PolicyRegistry;
  audit: AuditLog;
  usage: UsageService;
  recordTtlSec: number;
  /** FAIRLANE_CAPACITY_MIN_EVIDENCE ("20h" when not given). */
  capacityMinEvidence?: string;
}

// Which classes to drain, said outright: a missing or empty body must never mean "every class".
const Drain = z
  .strictObject({
    classes: z
      .array(z.enum(["A", "B", "C"]))
      .min(1)
      .max(3)
      .optional(),
    all: z.literal(true).optional(),
  })
  .superRefine((b, ctx) => {
    if (b.classes === undefined && b.all === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["classes"],
        message: 'required: the classes to drain (e.g. ["C"]), or "all": true for every class',
      });
    if (b.classes !== undefined && b.all !== undefined)
      ctx.addIssue({ code: "custom", path: ["all"], message: 'give "classes" or "all": true, not both' });
  });
const Reason = z.strictObject({ reason: z.string().max(500).optional() });
const Erasure = z.strictObject({
  before: epochOrIso.meta({ description: "Erase workflows that ended before this time (ISO 8601 or epoch ms)." }),
});
const UsageQuery = z.object({
  sort: z.enum(USAGE_SORTS).default("running"),
  order: z.enum(["asc", "desc"]).optional(),
  q: z.string().max(100).optional(),
  atCap: z.enum(["0", "1", "true", "false"]).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  offset: z.coerce.number().int().min(0).default(0),
});

const issuesOf = (e: z.ZodError) => e.issues.map((i) => ({ field: i.path.join(".") || "(body)", message: i.message }));

function tenantOf(d: OperatorAdminDeps, req: Request): TenantEntry {
  const t = req.params.tenant;
  if (typeof t !== "string" || !TENANT_ID.test(t))
    throw invalidRequest(`tenant id must match ${TENANT_ID}`, [{ field: "tenant", message: "invalid tenant id" }]);
  const entry = d.registry.get(t);
  if (!entry) throw notFound("tenant");
  return entry;
}

export function body<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const r = schema.safeParse(raw ?? {});
  if (!r.success) {
    const issues = issuesOf(r.error);
    throw invalidRequest(`invalid ${what}: ${formatIssues(issues)}`, issues);
  }
  return r.data;
}

export function operatorAdminRouter(d: OperatorAdminDeps): Router {
  const r = Router();
  usageRoutes(r, d);
  tenantControlRoutes(r, d);
  parkedRoutes(r, d);
  capacityReportRoute(r, d);
  erasureRoute(r, d);
  return r;
}

/** GET /usage and GET /usage/:tenant: live usage from a fresh sample. */
function usageRoutes(r: Router, d: OperatorAdminDeps): void {
  const sampler = d.usage.sampler;

  r.get("/usage", async (req, res) => {
    const q = UsageQuery.safeParse(req.query);
    if (!q.success) throw invalidRequest(`invalid query: ${formatIssues(issuesOf(q.error))}`, issuesOf(q.error));
    const { snapshot, fairness, noisy } = await sampler.fresh(sampler.opts.tickMs / 2);
    let rows: TenantUsage[] = snapshot.tenants;
    if (q.data.q) rows = rows.filter((t) => t.tenant.includes(q.data.q!));
    if (q.data.atCap === "1" || q.data.atCap === "true") rows = rows.filter((t) => t.atCap.any);
    rows = sortUsage(rows, q.data.sort as UsageSort, q.data.order ?? (q.data.sort === "tenant" ? "asc" : "desc"));
    res.setHeader("Cache-Control", "no-store");
    res.json({
      at: new Date(snapshot.at).toISOString(),
      readMs: snapshot.readMs,
      windowMs: snapshot.windowMs,
      platform: platformSummary(snapshot, fairness, noisy),
      total: rows.length,
      tenants: rows.slice(q.data.offset, q.data.offset + q.data.limit),
    });
  });

  r.get("/usage/:tenant", async (req, res) => {
    const entry = tenantOf(d, req);
    const { snapshot } = await sampler.fresh(sampler.opts.tickMs / 2);
    const row = snapshot.tenants.find((t) => t.tenant === entry.tenant);
    // Only queues that ever held a job: Bull Board answers "Queue Not found" for the others.
    const names = (["A", "B", "C"] as const).map((c) => ingressQueue(entry.tenant, c));
    const held = await d.redis.smismember(d.keys.cell(entry.policy.cell).queues, ...names);
    res.setHeader("Cache-Control", "no-store");
    res.json({
      at: new Date(snapshot.at).toISOString(),
      tenant: row ?? null,
      policy: entry.policy,
      history: sampler.historyOf(entry.tenant),
      queues: names.filter((_, i) => held[i] === 1),
    });
  });
}

/** PATCH /tenants/:tenant, POST /tenants/:tenant/pause | /resume | /drain: audited policy and queue changes. */
function tenantControlRoutes(r: Router, d: OperatorAdminDeps): void {
  r.patch("/tenants/:tenant", async (req, res) => {
    const entry = tenantOf(d, req);
    const merged = applySpecPatch(entry.spec, req.body);
    if (!merged.ok) throw invalidRequest(`invalid change for tenant "${entry.tenant}": ${formatIssues(merged.issues)}`, merged.issues);
    const updated = await d.registry.put(entry.tenant, merged.spec);
    await d.audit.record(req.operator!, "tenant.patch", entry.tenant, { changes: req.body });
    res.json(updated);
  });

  for (const [action, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const) {
    r.post(`/tenants/:tenant/${action}`, async (req, res) => {
      const entry = tenantOf(d, req);
      const updated = await d.registry.put(entry.tenant, { ...entry.spec, paused });
      await d.audit.record(req.operator!, `tenant.${action}`, entry.tenant);
      res.json({ tenant: entry.tenant, paused: updated.policy.paused });
    });
  }

  r.post("/tenants/:tenant/drain", async (req, res) => {
    const entry = tenantOf(d, req);
    const { classes } = body(Drain, req.body, "drain request");
    const cls = classes ?? (["A", "B", "C"] as const); // { all: true }
    const out = await drainTenant(
      d.redis,
      d.keys.cell(entry.policy.cell),
      entry.tenant,
      cls,
      () => d.clock.now(),
      { note: `cancelled by operator ${req.operator} (tenant drained)`, by: `operator:${req.operator}` },
      d.recordTtlSec,
    );
    await d.audit.record(req.operator!, "tenant.drain", entry.tenant, { classes: cls, ...out });
    res.json({ tenant: entry.tenant, ...out });
  });
}

/** POST /tenants/:tenant/parked/requeue | /fail: every parked workflow of the tenant, audited. */
function parkedRoutes(r: Router, d: OperatorAdminDeps): void {
  for (const action of ["requeue", "fail"] as const) {
    r.post(`/tenants/:tenant/parked/${action}`, async (req, res) => {
      const entry = tenantOf(d, req);
      const { reason } = body(Reason, req.body, `parked ${action} request`);
      const cell = d.keys.cell(entry.policy.cell);
      const ids = await parkedIdsOfTenant(d.redis, cell, entry.tenant);
      const message = action === "fail" ? `failed by ${req.operator}${reason ? `: ${reason}` : ""}` : "";
      let done = 0;
      for (const id of ids) {
        const out = await resolveParked(d.redis, cell, id, {
          now: d.clock.now(),
          action,
          recordTtlSec: d.recordTtlSec,
          message,
          by: `operator:${req.operator}`,
        });
        if (out !== "skipped") done++;
      }
      await d.audit.record(req.operator!, `tenant.parked.${action}`, entry.tenant, { count: done });
      res.json({ tenant: entry.tenant, [action === "requeue" ? "requeued" : "failed"]: done, skipped: ids.length - done });
    });
  }
}

/** GET /capacity-report?window=24h */
function capacityReportRoute(r: Router, d: OperatorAdminDeps): void {
  r.get("/capacity-report", async (req, res) => {
    const window = typeof req.query.window === "string" ? req.query.window : "24h";
    const parsed = parseWindow(window);
    if ("error" in parsed) throw invalidRequest(parsed.error, [{ field: "window", message: parsed.error }]);
    const minEvidence = d.capacityMinEvidence ?? DEFAULT_REPORT.minEvidence;
    const minEvidenceMs = parseDuration(minEvidence) ?? DEFAULT_REPORT.minEvidenceMs;
    res.json(
      await capacityReport(d.usage.rollups, d.registry.list(), window, parsed.ms, d.clock.now(), {
        minEvidence,
        minEvidenceMs,
        sampleMs: d.usage.sampler.opts.tickMs,
      }),
    );
  });
}

/**
 * DELETE /tenants/:tenant/data?before=: the right to erasure, on demand. Every key of the tenant's
 * workflows that ended before `before` goes, in every cell that ever held its work; what has not
 * ended is counted in `kept`, never erased. Audited with the counts (no workflow ids, no data).
 */
function erasureRoute(r: Router, d: OperatorAdminDeps): void {
  const cellsOf = new TenantCells(d.redis, d.keys, d.registry);
  r.delete("/tenants/:tenant/data", async (req, res) => {
    const entry = tenantOf(d, req);
    const q = Erasure.safeParse(req.query);
    if (!q.success) throw invalidRequest(`invalid erasure request: ${formatIssues(issuesOf(q.error))}`, issuesOf(q.error));
    const { before } = q.data;
    if (before > d.clock.now())
      throw invalidRequest("invalid erasure request: before: is in the future", [{ field: "before", message: "is in the future" }]);
    const total: ErasureCounts = { erased: 0, alreadyGone: 0, kept: { queued: 0, running: 0, parked: 0, endedLater: 0 } };
    const cells = await cellsOf.of(entry.tenant, entry.policy.cell);
    for (const c of cells) {
      const n = await eraseEnded(d.redis, d.keys.cell(c), entry.tenant, before);
      total.erased += n.erased;
      total.alreadyGone += n.alreadyGone;
      for (const k of Object.keys(total.kept) as (keyof ErasureCounts["kept"])[]) total.kept[k] += n.kept[k];
    }
    const report = { tenant: entry.tenant, before: new Date(before).toISOString(), cells, ...total };
    await d.audit.record(req.operator!, "tenant.erase", entry.tenant, { before: report.before, erased: total.erased, kept: total.kept });
    res.json(report);
  });
}
