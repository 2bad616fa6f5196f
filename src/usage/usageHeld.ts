import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { SlotPipeline } from "../lib/slotPipeline.ts";
import {
  capsFromHash,
  countByReason,
  explainTenantState,
  headlineReason,
  orgCapsFromHash,
  type Holder,
  type OrgState,
  type PoolView,
} from "../dispatch/policy/explain.ts";
import type { ShareOptions } from "../dispatch/policy/shares.ts";
import type { PoolUsage, TenantUsage } from "./usageTypes.ts";

/**
 * Round trip 4 of the usage snapshot (usageSnapshot.ts): what holds each tenant's queued work (`held`,
 * `waitingBy`), from its caps as the dispatcher reads them (tp:<t>) and the slots it holds (run:<t>),
 * with src/dispatch/policy/explain.ts (the dispatch rule's own functions) over the pools of round
 * trip 2 and the Class C holders of round trip 1. Two reads per tenant with queued work, none for the others;
 * then, for the orgs of those tenants, two reads per org (tp:@<org>, run:@<org>), so a tenant held by its
 * org's cap says so.
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
  const orgs = await readOrgs(redis, keys, queuedRows, r4);
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
    const org = caps?.org ? orgs.get(`${row.cell}|${caps.org}`) : undefined;
    const running = { A: Number(a ?? 0), BC: Number(bc ?? 0) };
    const { held } = explainTenantState({ now, caps, running, queued, pools: views, shares, ...(org ? { org } : {}) });
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

/** The orgs of the tenants read in `r4` (tp:<t>, run:<t> pairs), by "<cell>|<org>": their caps and slots held. */
async function readOrgs(redis: Redis, keys: Keys, rows: TenantUsage[], r4: [Error | null, unknown][]): Promise<Map<string, OrgState>> {
  const wanted = new Map<string, { cell: string; org: string }>();
  rows.forEach((row, k) => {
    const org = (r4[2 * k]?.[1] as Record<string, string> | null)?.org;
    if (org) wanted.set(`${row.cell}|${org}`, { cell: row.cell, org });
  });
  const out = new Map<string, OrgState>();
  if (!wanted.size) return out;
  const p = new SlotPipeline(redis);
  for (const { cell, org } of wanted.values()) {
    const [caps, run] = [keys.cell(cell).tenantCaps(`@${org}`), keys.cell(cell).running(`@${org}`)];
    p.add(caps, (q) => q.hgetall(caps)).add(run, (q) => q.hmget(run, "A", "BC"));
  }
  const r = await p.exec();
  [...wanted].forEach(([id, { org }], k) => {
    const [e1, h] = r[2 * k] ?? [new Error("missing reply"), null];
    const [e2, run] = r[2 * k + 1] ?? [new Error("missing reply"), null];
    if (e1 || e2) return;
    const [a, bc] = run as (string | null)[];
    out.set(id, { org, caps: orgCapsFromHash(h as Record<string, string>), running: { A: Number(a ?? 0), BC: Number(bc ?? 0) } });
  });
  return out;
}
