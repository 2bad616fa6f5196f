import { Router } from "express";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { TENANT_ID } from "../../queues/names.ts";
import { WORKFLOW_ID } from "../admission/admit.ts";
import type { Clock } from "../lib/clock.ts";
import { invalidRequest, notFound } from "../lib/errors.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import { explainTenant, waitingReason, type ExplainSettings } from "../workflows/explain.ts";
import { toView } from "../workflows/record.ts";

/**
 * "Why is this tenant's work not running?", under /v1/admin (admin auth before it):
 *   GET /tenants/:tenant/explain   every class's queued and running counts and the constraint holding
 *                                  it, with the tenant's other reasons (next workflow's dependency down
 *                                  or deadline near, parked work): src/workflows/explain.ts
 *   GET /workflows/:id             any tenant's workflow by id, with its waitingReason and waitingCode
 *                                  (the list, GET /workflows?tenant=, is adminWorkflowsRouter's)
 */
export interface ExplainAdminDeps {
  redis: Redis;
  keys: Keys;
  clock: Clock;
  registry: PolicyRegistry;
  explain: ExplainSettings;
  /** Cells this api serves (FAIRLANE_CELLS): looked in for a workflow besides every tenant's current cell. */
  cells?: string[];
}

export function explainAdminRouter(d: ExplainAdminDeps): Router {
  const r = Router();

  r.get("/tenants/:tenant/explain", async (req, res) => {
    const t = req.params.tenant;
    if (!TENANT_ID.test(t)) throw invalidRequest(`tenant id must match ${TENANT_ID}`, [{ field: "tenant", message: "invalid tenant id" }]);
    const entry = d.registry.get(t);
    if (!entry) throw notFound("tenant");
    res.setHeader("Cache-Control", "no-store");
    res.json(await explainTenant(d.redis, d.keys, entry.policy.cell, entry.tenant, d.clock.now(), d.explain));
  });

  r.get("/workflows/:id", async (req, res) => {
    const id = req.params.id;
    if (!WORKFLOW_ID.test(id))
      throw invalidRequest("workflow id must be wf_ and 20 characters", [{ field: "id", message: "invalid workflow id" }]);
    const cells = new Set([...(d.cells ?? []), ...d.registry.list().map((e) => e.policy.cell), "default"]);
    for (const name of [...cells].sort()) {
      const cell = d.keys.cell(name);
      const h = await d.redis.hgetall(cell.workflow(id));
      if (!h.tenant) continue;
      const view = toView(id, h);
      const current = d.registry.get(h.tenant)?.policy.cell;
      if (view.state === "queued" && current !== name) {
        const where = current ? `the tenant moved from cell ${name} to ${current}` : `the tenant has no policy now`;
        res.json({
          ...view,
          cell: name,
          waitingReason: `${where}: work queued in ${name} waits there (it can still be read and cancelled)`,
          waitingCode: "cell_moved",
        });
        return;
      }
      const waiting = await waitingReason(d.redis, d.keys, name, h.tenant, id, d.clock.now(), d.explain);
      res.json({ ...view, cell: name, ...waiting });
      return;
    }
    throw notFound();
  });

  return r;
}
