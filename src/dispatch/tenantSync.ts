import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { retentionSec } from "../tenancy/policy.ts";
import type { TenantEntry } from "../tenancy/registry.ts";

/**
 * Copies each tenant's dispatch caps from the policy registry into its
 * cell (`tp:<t>`), where the dispatch script reads them, and marks the tenant
 * dirty so its readiness is recomputed with the new caps. Only tenants whose
 * caps changed are written. A tenant that left the registry or moved to
 * another cell is paused in the old cell: its queued work stays visible.
 * Fields the script owns (burstStart, m:<pool>) are never overwritten.
 * `retainSec` is not a dispatch cap: it is the tenant's retention, read where a workflow ends
 * (queues/lua/includes/endRecord.lua); "" = the deployment's record TTL.
 */
export function capsFields(e: TenantEntry): Record<string, string> {
  const p = e.policy;
  return {
    weight: String(p.weight),
    mca: String(p.mca),
    burstMca: String(p.burst.mca),
    burstMs: String(p.burst.seconds * 1000),
    cooldownMs: String(p.burst.cooldownSeconds * 1000),
    mcaUrgent: String(p.mcaUrgent),
    paused: p.paused ? "1" : "0",
    pools: p.pools.join(","),
    retainSec: String(retentionSec(p) ?? ""),
  };
}

export class TenantSync {
  private readonly written = new Map<string, string>(); // cell/tenant -> JSON of fields last written

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async sync(cellName: string, entries: TenantEntry[]): Promise<number> {
    const cell = this.keys.cell(cellName);
    const pipeline = this.redis.pipeline();
    const present = new Set<string>();
    const pending = new Map<string, string>(); // what `written` learns once the pipeline went through
    let changed = 0;
    for (const e of entries) {
      if (e.policy.cell !== cellName) continue;
      present.add(e.tenant);
      const fields = capsFields(e);
      const json = JSON.stringify(fields);
      const id = `${cellName}/${e.tenant}`;
      if (this.written.get(id) === json) continue;
      pending.set(id, json);
      pipeline.hset(cell.tenantCaps(e.tenant), fields).sadd(cell.tenants, e.tenant).sadd(cell.dirty, e.tenant);
      pipeline.sadd(cell.pools, ...e.policy.pools);
      changed++;
    }
    for (const t of await this.redis.smembers(cell.tenants)) {
      if (present.has(t)) continue;
      const id = `${cellName}/${t}`;
      if (this.written.get(id) === "gone") continue;
      pending.set(id, "gone");
      pipeline.hset(cell.tenantCaps(t), "paused", "1").sadd(cell.dirty, t);
      changed++;
    }
    if (changed) pipeline.zadd(cell.wake, 0, "w");
    // A pipeline reports refused commands (Redis full, read-only) in its results, it does not throw:
    // fail the sync then, and remember nothing, so that the next one writes it all again.
    const refused = ((await pipeline.exec()) ?? []).find(([err]) => err)?.[0];
    if (refused) throw refused;
    for (const [id, v] of pending) this.written.set(id, v);
    return changed;
  }
}
