import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { SlotPipeline } from "../lib/slotPipeline.ts";
import { capsFromHash, countByReason, explainTenantState, headlineReason, type Holder, type PoolView } from "../dispatch/policy/explain.ts";
import type { ShareOptions } from "../dispatch/policy/shares.ts";
import type { PoolUsage, TenantUsage } from "./usageTypes.ts";

/**
 * Round trip 4 of the usage snapshot (usageSnapshot.ts): what holds each tenant's queued work (`held`,
 * `waitingBy`), from its caps as the dispatcher reads them (tp:<t>) and the slots it holds (run:<t>),
 * with src/dispatch/policy/explain.ts (the dispatch rule's own functions) over the pools of round
 * trip 2 and the Class C holders of round trip 1. Two reads per tenant with queued work, none for the others.
 */
export async function explainHeld(
  redis: Redis,
  keys: Keys,
  rows: TenantUsage[],
  pools: PoolUsage[],
  holdersC: Map<string, Map<string, number>>,
  settings: Map<string, { shares: ShareOptions }>,
  ownShares: ShareOptions,
  now: number,
): Promise<void> {
  const queuedRows = rows.filter((r) => r.queued.total > 0);
  if (!queuedRows.length) return;
  const p4 = new SlotPipeline(redis);
  for (const r of queuedRows) {
    const ck = keys.cell(r.cell);
    const [caps, run] = [ck.tenantCaps(r.tenant), ck.running(r.tenant)];
    p4.add(caps, (p) => p.hgetall(caps)).add(run, (p) => p.hmget(run, "A", "BC"));
  }
  const r4 = await p4.exec();
  const poolOf = new Map(pools.map((p) => [`${p.cell}|${p.pool}`, p]));
  queuedRows.forEach((row, k) => {
    const [e1, h] = r4[2 * k] ?? [new Error("missing reply"), null];
    const [e2, run] = r4[2 * k + 1] ?? [new Error("missing reply"), null];
    if (e1 || e2) return; // left unexplained this tick rather than explained wrong
    const caps = capsFromHash(h as Record<string, string>);
    const views: PoolView[] = (caps?.pools ?? []).map((pool) => {
      const p = poolOf.get(`${row.cell}|${pool}`);
      const state = p
        ? { capacity: p.capacity, used: p.used, usedA: p.usedA, usedC: p.usedC, batchCapacity: p.batchCapacity }
        : { capacity: 0, used: 0, usedA: 0, usedC: 0 };
      return { pool, ...state, holdersC: topHolders(holdersC.get(`${row.cell}|${pool}`)) };
    });
    const [a, bc] = run as (string | null)[];
    const queued = { A: row.queued.A, B: row.queued.B, C: row.queued.C };
    const shares = settings.get(row.cell)?.shares ?? ownShares;
    const { held } = explainTenantState({ now, caps, running: { A: Number(a ?? 0), BC: Number(bc ?? 0) }, queued, pools: views, shares });
    const top = headlineReason(held);
    row.held = top ? { code: top.code, message: top.message } : null;
    row.waitingBy = countByReason(queued, held);
  });
}

/** Top 3 holders of a pool's Class C slots, most first. */
function topHolders(m: Map<string, number> | undefined): Holder[] {
  return [...(m ?? [])]
    .map(([tenant, slots]) => ({ tenant, slots }))
    .sort((a, b) => b.slots - a.slots || (a.tenant < b.tenant ? -1 : 1))
    .slice(0, 3);
}
