import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";

/** The ids of a tenant's parked workflows in a cell, oldest first per dependency (ids and tenants only). */
export async function parkedIdsOfTenant(redis: Redis, cell: CellKeys, tenant: string): Promise<string[]> {
  const deps = await redis.smembers(cell.deps);
  const p = redis.pipeline();
  for (const dep of deps) p.zrange(cell.parked(dep), 0, -1);
  const ids = ((await p.exec()) ?? []).flatMap(([, v]) => (Array.isArray(v) ? (v as string[]) : []));
  if (!ids.length) return [];
  const q = redis.pipeline();
  for (const id of ids) q.hget(cell.workflow(id), "tenant");
  const tenants = (await q.exec()) ?? [];
  return [...new Set(ids.filter((_, i) => tenants[i]?.[1] === tenant))];
}
