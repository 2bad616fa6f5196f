import { Router } from "express";
import type { Redis } from "ioredis";
import { z } from "zod";
import type { CellKeys, Keys } from "../../queues/keys.ts";
import { resolveParked } from "../../queues/lua/parking.ts";
import type { HealthStore } from "../backpressure/healthStore.ts";
import type { Clock } from "../lib/clock.ts";
import { invalidRequest, notFound } from "../lib/errors.ts";
import type { AuditLog } from "./audit.ts";
import { WORKFLOW_ID } from "../admission/admit.ts";

/**
 * Operator controls for backpressure, under /v1/admin (admin auth before it):
 *   GET  /dependencies                 every dependency's health and parked count
 *   PUT  /dependencies/:dep            { state: "down" | "healthy" | null } mark it by hand (planned maintenance)
 *   GET  /parked?dependency=&tenant=   parked workflows, oldest first
 *   POST /parked/:id/requeue           put one back at the head of its queue now
 *   POST /parked/:id/fail              { reason? } end it failed
 * Every write is in the audit log.
 */
export interface BackpressureAdminDeps {
  redis: Redis;
  keys: Keys;
  health: HealthStore;
  audit: AuditLog;
  clock: Clock;
  /** Every cell this api serves (FAIRLANE_CELLS): lists span them all. */
  cells: string[];
  recordTtlSec: number;
}

const DEP = /^[a-zA-Z0-9_.-]{1,64}$/;
const Mark = z.strictObject({ state: z.enum(["down", "healthy"]).nullable() });
const Fail = z.strictObject({ reason: z.string().max(500).optional() });

/** Up to `limit` parked workflows of one cell, oldest first per dependency, optionally of one dependency or tenant. */
async function parkedRows(
  redis: Redis,
  cell: CellKeys,
  dep: string | undefined,
  tenant: string | undefined,
  limit: number,
): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const x of dep ? [dep] : await redis.smembers(cell.deps)) {
    for (const id of await redis.zrange(cell.parked(x), 0, -1)) {
      if (rows.length >= limit) return rows;
      const [t, cls, type, parkedAt, reason, deadlineAt] = await redis.hmget(
        cell.workflow(id),
        "tenant",
        "class",
        "type",
        "parkedAt",
        "parkReason",
        "deadlineAt",
      );
      if (tenant && t !== tenant) continue;
      rows.push({
        id,
        tenant: t,
        class: cls,
        type,
        dependency: x,
        parkedAt: parkedAt ? new Date(Number(parkedAt)).toISOString() : null,
        reason,
        deadlineAt: deadlineAt ? new Date(Number(deadlineAt)).toISOString() : null,
      });
    }
  }
  return rows;
}

export function backpressureAdminRouter(d: BackpressureAdminDeps): Router {
  const r = Router();

  r.get("/dependencies", async (_req, res) => {
    const rows: Record<string, unknown>[] = [];
    for (const c of d.cells) {
      const health = await d.health.list(c);
      const deps = Object.keys(health).sort();
      const parked = await Promise.all(deps.map((dep) => d.redis.zcard(d.keys.cell(c).parked(dep))));
      rows.push(
        ...deps.map((dep, i) => ({
          dependency: dep,
          ...(d.cells.length > 1 ? { cell: c } : {}),
          health: health[dep] ?? null,
          healthy: health[dep]?.state === "healthy",
          parked: parked[i],
        })),
      );
    }
    res.json({ dependencies: rows });
  });

  r.put("/dependencies/:dep", async (req, res) => {
    const dep = String(req.params.dep);
    if (!DEP.test(dep)) throw invalidRequest("dependency names are 1-64 of [a-zA-Z0-9_.-]");
    const body = Mark.safeParse(req.body);
    if (!body.success) throw invalidRequest('body must be { "state": "down" | "healthy" | null }');
    await d.health.override(dep, body.data.state, req.operator!);
    await d.audit.record(req.operator!, "dependency.mark", dep, { state: body.data.state });
    res.json({ dependency: dep, health: await d.health.read(d.cells[0]!, dep) });
  });

  r.get("/parked", async (req, res) => {
    const dep = typeof req.query.dependency === "string" ? req.query.dependency : undefined;
    const tenant = typeof req.query.tenant === "string" ? req.query.tenant : undefined;
    const limit = z.coerce.number().int().min(1).max(1000).catch(100).parse(req.query.limit);
    if (dep !== undefined && !DEP.test(dep)) throw invalidRequest("invalid dependency");
    const rows: Record<string, unknown>[] = [];
    for (const c of d.cells) rows.push(...(await parkedRows(d.redis, d.keys.cell(c), dep, tenant, limit - rows.length)));
    res.json({ parked: rows.slice(0, limit) });
  });

  const act = (action: "requeue" | "fail") =>
    r.post(`/parked/:id/${action}`, async (req, res) => {
      const id = String(req.params.id);
      if (!WORKFLOW_ID.test(id)) throw notFound("parked workflow");
      const body = Fail.safeParse(req.body ?? {});
      if (!body.success) throw invalidRequest("body must be { reason?: string }");
      const message = action === "fail" ? `failed by ${req.operator}${body.data.reason ? `: ${body.data.reason}` : ""}` : "";
      // The id says nothing of its cell: ask each (a workflow is parked in at most one).
      let out = "skipped";
      for (const c of d.cells) {
        out = await resolveParked(d.redis, d.keys.cell(c), id, {
          now: d.clock.now(),
          action,
          recordTtlSec: d.recordTtlSec,
          message,
          by: `operator:${req.operator}`,
        });
        if (out !== "skipped") break;
      }
      if (out === "skipped") throw notFound("parked workflow");
      await d.audit.record(req.operator!, `parked.${action}`, id);
      res.json({ id, outcome: out });
    });
  act("requeue");
  act("fail");
  return r;
}
