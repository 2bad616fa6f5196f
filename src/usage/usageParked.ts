import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { SlotPipeline } from "../lib/slotPipeline.ts";
import { parkedReason } from "../dispatch/policy/explain.ts";
import type { DependencyUsage, TenantUsage } from "./usageTypes.ts";

/** row -> dependency -> parked workflows of that tenant waiting on it */
export type ParkedByTenant = Map<TenantUsage, Map<string, number>>;

/**
 * Round trip 3 of the usage snapshot (usageSnapshot.ts): the tenant of each parked workflow not
 * seen before (`cache`: an id's tenant never changes); then counts every tenant's parked work into
 * its row (`parked`) and returns it by dependency.
 */
export async function countParked(
  redis: Redis,
  keys: Keys,
  cache: Map<string, string>,
  rows: TenantUsage[],
  parkedIds: { cell: string; id: string; dep: string }[],
): Promise<ParkedByTenant> {
  const unknown = parkedIds.filter((p) => !cache.has(p.id));
  if (unknown.length) {
    const p3 = new SlotPipeline(redis);
    for (const u of unknown) {
      const wf = keys.cell(u.cell).workflow(u.id);
      p3.add(wf, (p) => p.hget(wf, "tenant"));
    }
    const r3 = await p3.exec();
    unknown.forEach((u, k) => {
      const t = r3[k]?.[1];
      if (typeof t === "string") cache.set(u.id, t);
    });
    if (cache.size > 200_000) cache.clear();
  }
  const byTenant = new Map(rows.map((r) => [`${r.cell}|${r.tenant}`, r]));
  const parkedBy: ParkedByTenant = new Map();
  for (const p of parkedIds) {
    const t = cache.get(p.id);
    const row = t ? byTenant.get(`${p.cell}|${t}`) : undefined;
    if (!row) continue;
    row.parked++;
    const m = parkedBy.get(row) ?? new Map<string, number>();
    parkedBy.set(row, m.set(p.dep, (m.get(p.dep) ?? 0) + 1));
  }
  return parkedBy;
}

/** A tenant whose work is parked and nothing queued held: its parked work is what waits, and why. */
export function explainParked(parkedBy: ParkedByTenant, dependencies: DependencyUsage[]): void {
  const depOf = new Map(dependencies.map((d) => [`${d.cell}|${d.dependency}`, d]));
  for (const [row, byDep] of parkedBy) {
    if (row.held) continue;
    const [dep, n] = [...byDep].sort((a, b) => b[1] - a[1])[0]!;
    const d = depOf.get(`${row.cell}|${dep}`);
    const r = parkedReason(
      dep,
      n,
      undefined,
      d?.since != null ? { dependency: dep, since: d.since, source: d.source } : null,
      d?.state ?? "missing",
    );
    row.held = { code: r.code, message: r.message };
  }
}
