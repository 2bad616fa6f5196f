import type { Redis } from "ioredis";
import { CLASSES, type Keys, type WorkflowClass } from "../../queues/keys.ts";
import {
  explainClass,
  explainTenantState,
  explainWorkflow,
  parkedReason,
  parkedWorkflowReason,
  dependencyReason,
  type Reason,
  type TenantState,
} from "../dispatch/policy/explain.ts";
import { firstDown, readHealth, readParked, readSlots, readState, withHolders } from "./explainRead.ts";
import { dispatcherSettings, type ExplainSettings } from "./explainSettings.ts";

export { DEFAULT_EXPLAIN, dispatcherSettings, explainSettings, publishedSettings, type ExplainSettings } from "./explainSettings.ts";

/**
 * Why a tenant's work waits, read from the keys the dispatch script decides on
 * (dispatch-18.lua, read in explainRead.ts) and explained by the pure rule
 * (src/dispatch/policy/explain.ts). The share options and capacity cap are the
 * ones the cell's dispatcher published (`<cell>:dispatch`, what it passes the
 * script as ARGV); only while no dispatcher has written them does the caller's
 * configuration stand in (settings.source says which; explainSettings.ts).
 */

export interface ClassExplain {
  queued: number;
  running: number;
  held: Reason | null;
}

export interface TenantExplain {
  tenant: string;
  cell: string;
  at: string;
  classes: Record<WorkflowClass, ClassExplain>;
  reasons: Reason[];
  settings: ExplainSettings;
}

/** `GET /v1/admin/tenants/:t/explain`: every class's hold and the tenant's reasons, from its cell. */
export async function explainTenant(
  redis: Redis,
  keys: Keys,
  cellName: string,
  tenant: string,
  now: number,
  configured: ExplainSettings,
): Promise<TenantExplain> {
  const cell = keys.cell(cellName);
  const s = await dispatcherSettings(redis, cell, configured);
  const [parked, slots] = await Promise.all([readParked(redis, cell, tenant), readSlots(redis, cell, tenant)]);
  const read = await readState(redis, cell, tenant, now, s, [...parked.keys()]);
  const state = withHolders(read.state, slots);
  const extra: Reason[] = [];
  for (const c of CLASSES) {
    const h = read.heads[c];
    if (!h || state.caps?.paused) continue;
    const classReason = explainClass(state, c)!;
    if (h.down)
      extra.push({ ...dependencyReason(h.down, c), message: `next Class ${c} workflow ${h.id}: ${dependencyReason(h.down).message}` });
    const w = explainWorkflow(classReason, { deadlineAt: h.deadlineAt, down: null }, now, s.deadlineSoonMs);
    if (w.code === "deadline_soon") extra.push({ ...w, message: `next Class ${c} workflow ${h.id}: ${w.message}` });
  }
  for (const [dep, n] of parked) {
    const h = read.health.get(dep);
    extra.push(parkedReason(dep, n.parked, n.heldBack, h?.down ?? null, h?.state ?? "missing"));
  }
  const { held, reasons } = explainTenantState(state, extra);
  const classes = {} as Record<WorkflowClass, ClassExplain>;
  for (const c of CLASSES) classes[c] = { queued: state.queued[c], running: slots.running[c], held: held[c] };
  return { tenant, cell: cellName, at: new Date(now).toISOString(), classes, reasons, settings: s };
}

export interface WorkflowWaiting {
  waitingReason: string;
  waitingCode: Reason["code"];
  parkReason?: string;
  parkedSince?: string;
}

/** The codes whose reason names the tenants holding the slots, read from the slot leases for the admin. */
const HELD_BY_OTHERS = new Set<Reason["code"]>(["class_c_share", "org_mca", "org_urgent_cap"]);

/**
 * Why one workflow waits, for `GET /v1/workflows/:id`: a queued one gets its
 * class's hold (its own down dependency and a near deadline first); a parked
 * one its park reason and since when. Undefined for any other state.
 * `audience` "tenant" (the tenant's own key) names no other tenant and counts
 * none: no Class C holders, no tenants ahead, none of its org's tenants by name
 * or rank — those are the admin's to see. Its org's totals (slots held, caps)
 * are the tenant's to see: they bound it.
 */
export async function waitingReason(
  redis: Redis,
  keys: Keys,
  cellName: string,
  tenant: string,
  id: string,
  now: number,
  configured: ExplainSettings,
  audience: "tenant" | "admin" = "admin",
): Promise<WorkflowWaiting | undefined> {
  const cell = keys.cell(cellName);
  const [state, cls, type, deadlineAt, parkedDep, parkedAt, parkReason] = await redis.hmget(
    cell.workflow(id),
    "state",
    "class",
    "type",
    "deadlineAt",
    "parkedDep",
    "parkedAt",
    "parkReason",
  );
  if (state === "parked" && parkedDep) {
    const since = parkedAt ? Number(parkedAt) : null;
    const h = (await readHealth(redis, cell, [parkedDep])).get(parkedDep)!;
    const r = parkedWorkflowReason(parkedDep, parkReason ?? null, since, h.state);
    return {
      waitingReason: r.message,
      waitingCode: r.code,
      ...(parkReason ? { parkReason } : {}),
      ...(since !== null ? { parkedSince: new Date(since).toISOString() } : {}),
    };
  }
  if (state !== "queued" || (cls !== "A" && cls !== "B" && cls !== "C")) return undefined;
  const [wfdeps, s] = await Promise.all([redis.hget(cell.workflowDeps, type ?? ""), dispatcherSettings(redis, cell, configured)]);
  const read = await readState(redis, cell, tenant, now, s, (wfdeps ?? "").split(",").filter(Boolean));
  const seen = audience === "tenant" ? withoutOthers(read.state) : read.state;
  let classReason = explainClass(seen, cls) ?? explainClass({ ...seen, queued: { ...seen.queued, [cls]: 1 } }, cls)!;
  if (HELD_BY_OTHERS.has(classReason.code) && audience === "admin")
    classReason = explainClass(withHolders(seen, await readSlots(redis, cell, tenant)), cls)!;
  // The script takes a tenant's oldest first: a workflow behind its own tenant's earlier work says so.
  const head = read.heads[cls]?.id;
  if (classReason.code === "turn" && head && head !== id)
    classReason = {
      ...classReason,
      message: `behind its tenant's earlier Class ${cls} workflows (the oldest starts first); ${classReason.message}`,
    };
  const down = firstDown({ [type ?? ""]: wfdeps ?? "" }, type ?? "", read.health);
  const r = explainWorkflow(classReason, { deadlineAt: deadlineAt ? Number(deadlineAt) : null, down }, now, s.deadlineSoonMs);
  return { waitingReason: r.message, waitingCode: r.code };
}

/**
 * The state with nothing of other tenants in it: no ready-set ranks (how many wait ahead, in the pool
 * or in its org), no holders; its org's caps and slots held stay.
 */
const withoutOthers = (state: TenantState): TenantState => ({
  ...state,
  ...(state.org ? { org: { org: state.org.org, caps: state.org.caps, running: state.org.running } } : {}),
  pools: state.pools.map((p) => ({
    ...p,
    holdersC: [],
    ready: p.ready && Object.fromEntries(Object.entries(p.ready).map(([c, r]) => [c, { size: r!.size, ahead: null }])),
  })),
});
