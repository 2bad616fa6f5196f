import express, { Router, type Request } from "express";
import type { Redis } from "ioredis";
import { z } from "zod";
import type { CellKeys, Keys } from "../../queues/keys.ts";
import { TENANT_ID } from "../../queues/names.ts";
import { cancelWorkflow, type CancelOutcome } from "../../queues/lua/cancelWorkflow.ts";
import { type Admission, WORKFLOW_ID } from "../admission/admit.ts";
import { BulkRequestSchema, describeIssues, fieldIssues } from "../admission/schema.ts";
import type { Clock } from "../lib/clock.ts";
import { FairlaneError, invalidRequest, notFound } from "../lib/errors.ts";
import { listWorkflows } from "../workflows/list.ts";
import { ListQuerySchema } from "../workflows/listIndex.ts";
import { readWorkflow, type WorkflowView } from "../workflows/record.ts";
import { DEFAULT_EXPLAIN, waitingReason, type ExplainSettings } from "../workflows/explain.ts";
import { producerContext } from "./trace.ts";
import { endedExportRoute, trailRoutes, type TrailOwner } from "./trail.ts";

export interface ProducerDeps {
  redis: Redis;
  keys: Keys;
  admission: Admission;
  clock: Clock;
  bodyLimit: string;
  bulkBodyLimit: string;
  /** How long an ended workflow's record is kept (FAIRLANE_RECORD_TTL_SEC). */
  recordTtlSec: number;
  /** The share options and capacity cap the dispatcher runs with (for waitingReason). */
  explain?: ExplainSettings;
}

const json = (limit: string) => express.json({ limit, strict: true, type: ["application/json", "application/*+json"] });

function requireBody(req: Request): unknown {
  if (req.body === undefined) throw invalidRequest("the body must be JSON, sent with Content-Type: application/json");
  return req.body;
}

/** Who did it, in the tenant's audit trail: the API key's id (never the key). */
const byKey = (req: Request) => `key:${req.keyId}`;

/**
 * The producer API under /v1: workflows, and the tenant's own audit trail (GET /v1/audit, /v1/audit/export:
 * src/api/trail.ts). Every route runs after tenantAuth has set req.tenant.
 */
export function producerRouter(d: ProducerDeps): Router {
  const r = Router();

  r.post("/workflows/bulk", json(d.bulkBodyLimit), async (req, res) => {
    const parsed = BulkRequestSchema.safeParse(requireBody(req));
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw invalidRequest(`invalid bulk request: ${describeIssues(issues)}`, issues);
    }
    const result = await d.admission.admitBulk(req.tenant!, parsed.data.workflows, producerContext(req), byKey(req));
    const allBackpressure = result.accepted.length === 0 && result.rejected.every((x) => x.error.code === "BACKPRESSURE");
    if (allBackpressure) {
      const retryAfter = d.admission.retryAfterSec;
      res.setHeader("Retry-After", String(retryAfter));
      res.status(429).json({
        error: { code: "BACKPRESSURE", message: result.rejected[0]!.error.message, details: { retryAfterSec: retryAfter } },
        ...result,
      });
      return;
    }
    res.status(202).json(result);
  });

  r.post("/workflows", json(d.bodyLimit), async (req, res) => {
    const { status, body } = await d.admission.admitOne(req.tenant!, requireBody(req), producerContext(req), byKey(req));
    if (body.duplicate) res.setHeader("Idempotent-Replayed", "true");
    res.status(status).json(body);
  });

  listRoutes(r, d); // before /workflows/:id, which would take "export" for an id

  r.get("/workflows/:id", async (req, res) => {
    const found = WORKFLOW_ID.test(req.params.id) ? await findWorkflow(d, req.tenant!, req.params.id) : null;
    if (!found) throw notFound();
    const { cell, view } = found;
    const { policy } = d.admission.tenantEntry(req.tenant!);
    if (view.state === "queued" && cell.cell !== policy.cell) {
      view.waitingReason = `the tenant moved from cell ${cell.cell} to ${policy.cell}: work queued in ${cell.cell} waits there until the tenant moves back (it can still be read and cancelled)`;
      res.json({ ...view, waitingCode: "cell_moved" });
      return;
    }
    const waiting = await waitingReason(
      d.redis,
      d.keys,
      cell.cell,
      req.tenant!,
      view.id,
      d.clock.now(),
      d.explain ?? DEFAULT_EXPLAIN,
      "tenant",
    );
    res.json({ ...view, ...waiting });
  });

  r.delete("/workflows/:id", async (req, res) => {
    if (!WORKFLOW_ID.test(req.params.id)) throw notFound();
    let found: { cell: CellKeys; outcome: CancelOutcome } | undefined;
    for await (const cell of tenantCells(d, req.tenant!)) {
      const outcome = await cancelWorkflow(d.redis, cell, req.params.id, req.tenant!, d.clock.now(), {
        recordTtlSec: d.recordTtlSec,
        by: byKey(req),
      });
      if (outcome.kind !== "missing") {
        found = { cell, outcome };
        break;
      }
    }
    if (!found) throw notFound();
    const { cell, outcome } = found;
    if (outcome.kind === "final")
      throw new FairlaneError("ALREADY_FINISHED", `workflow is already ${outcome.state}`, 409, { state: outcome.state });
    const view = await readWorkflow(d.redis, cell, req.params.id, req.tenant!);
    res.status(outcome.kind === "cancelled" ? 200 : 202).json(view);
  });

  trailRoutes(r, "/audit", { redis: d.redis, clock: d.clock, ownerOf: (req) => trailOwner(d, req.tenant!) });
  return r;
}

/**
 * GET /workflows (a page of the run list, newest first) and GET /workflows/export (the tenant's ended
 * workflows, each once, in the order they ended, as NDJSON: src/workflows/export.ts).
 */
function listRoutes(r: Router, d: ProducerDeps): void {
  r.get("/workflows", async (req, res) => {
    res.json(await listFor(d, req.tenant!, req.query));
  });
  endedExportRoute(r, "/workflows/export", { redis: d.redis, clock: d.clock, ownerOf: (req) => trailOwner(d, req.tenant!) });
}

/** The tenant a path names (`:tenant`), for the admin's reads of it. */
function pathTenant(d: ProducerDeps, req: Request): Promise<TrailOwner> {
  const t = String(req.params.tenant);
  if (!TENANT_ID.test(t)) throw invalidRequest(`tenant id must match ${TENANT_ID}`, [{ field: "tenant", message: "invalid tenant id" }]);
  if (!d.admission.hasTenant(t)) throw notFound("tenant");
  return trailOwner(d, t);
}

async function trailOwner(d: ProducerDeps, tenant: string): Promise<TrailOwner> {
  const cells: CellKeys[] = [];
  for await (const cell of tenantCells(d, tenant)) cells.push(cell);
  return { tenant, policy: d.admission.tenantEntry(tenant).policy, cells };
}

const AdminListQuery = ListQuerySchema.extend({ tenant: z.string().regex(TENANT_ID, "a tenant id") });

/** The admin's run list, `GET /v1/admin/workflows?tenant=...`: the same page a tenant's own key gets. */
export function adminWorkflowsRouter(d: ProducerDeps): Router {
  const r = Router();
  r.get("/workflows", async (req, res) => {
    const tenant = AdminListQuery.shape.tenant.safeParse(req.query.tenant);
    if (!tenant.success)
      throw invalidRequest("query parameter tenant is required: the tenant whose workflows to list", [
        { field: "tenant", message: "a tenant id" },
      ]);
    d.admission.tenantEntry(tenant.data);
    const { tenant: _t, ...query } = req.query;
    res.json(await listFor(d, tenant.data, query));
  });
  // Any tenant's audit trail (GET /v1/admin/tenants/:tenant/audit and .../audit/export) and its ended workflows.
  const owner = { redis: d.redis, clock: d.clock, ownerOf: (req: Request) => pathTenant(d, req) };
  trailRoutes(r, "/tenants/:tenant/audit", owner);
  endedExportRoute(r, "/tenants/:tenant/workflows/export", owner);
  return r;
}

async function listFor(d: ProducerDeps, tenant: string, query: unknown) {
  const parsed = ListQuerySchema.safeParse(query);
  if (!parsed.success) {
    const issues = fieldIssues(parsed.error);
    throw invalidRequest(`invalid list query: ${describeIssues(issues)}`, issues);
  }
  const cells: CellKeys[] = [];
  for await (const cell of tenantCells(d, tenant)) cells.push(cell);
  return listWorkflows(d.redis, cells, tenant, parsed.data);
}

/**
 * The cells to look in for a tenant's workflow: its current cell first, then (looked up only when
 * the workflow is not there) the cells it was in before (docs/cluster.md, moving a tenant), so work
 * left behind by a move stays readable and cancellable.
 */
async function* tenantCells(d: ProducerDeps, tenant: string): AsyncGenerator<CellKeys> {
  const current = d.admission.tenantEntry(tenant).policy.cell;
  yield d.keys.cell(current);
  for (const name of await d.admission.workflowCells(tenant)) if (name !== current) yield d.keys.cell(name);
}

/** A tenant's workflow and the cell holding it; another tenant's workflow is missing in every cell. */
async function findWorkflow(d: ProducerDeps, tenant: string, id: string): Promise<{ cell: CellKeys; view: WorkflowView } | null> {
  for await (const cell of tenantCells(d, tenant)) {
    const view = await readWorkflow(d.redis, cell, id, tenant);
    if (view) return { cell, view };
  }
  return null;
}
