import type { Redis } from "ioredis";
import type { CellKeys, Keys } from "../../queues/keys.ts";
import { retentionSec } from "../tenancy/policy.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { UNBOUNDED, type OrgEntry } from "../tenancy/orgs.ts";

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
    org: p.org ?? "",
  };
}

/**
 * An org's caps as the dispatch script reads them (`tp:@<org>`, includes/flows.lua): read as a
 * tenant's with no burst (burstMca = mca); a cap the org does not set is UNBOUNDED. `pools`: its
 * tenants' pools in this cell; `tenants`: their names.
 */
export function orgCapsFields(o: OrgEntry, tenants: TenantEntry[]): Record<string, string> {
  const mca = String(o.policy.mca ?? UNBOUNDED);
  return {
    weight: String(o.policy.weight),
    mca,
    burstMca: mca,
    burstMs: "0",
    cooldownMs: "0",
    mcaUrgent: String(o.policy.mcaUrgent ?? UNBOUNDED),
    paused: "0",
    pools: [...new Set(tenants.flatMap((t) => t.policy.pools))].sort().join(","),
    tenants: tenants.map((t) => t.tenant).join(","),
  };
}

export class TenantSync {
  private readonly written = new Map<string, string>(); // cell/tenant -> JSON of fields last written
  // cell/tenant -> the registry entry those fields came from, and whether its org was known then. The
  // registry keeps an unchanged tenant's entry (the same object) across reloads, so a sync after one
  // change computes one tenant's fields, not every tenant's (~4 µs each: 30-60 ms at 10,000).
  private readonly source = new Map<string, { entry: TenantEntry; orgKnown: boolean }>();
  private readonly present = new Map<string, Set<string>>(); // cell -> its tenants at the last sync

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /**
   * `orgs`: the registry's; a tenant whose org is not among them runs as a lone tenant.
   * A process's first sync of a cell writes only what the cell does not already hold (another
   * dispatcher's sync, or this one's before a restart): a restart at 10,000 tenants otherwise
   * rewrote every tenant and marked every one dirty, ~40,000 writes and 10,000 readiness recomputes
   * in the dispatch calls that followed, for every tenant's Class A to wait behind.
   */
  async sync(cellName: string, entries: TenantEntry[], orgs: OrgEntry[] = []): Promise<number> {
    const cell = this.keys.cell(cellName);
    const writes: CapsWrite[] = [];
    const present = new Set<string>();
    const here = entries.filter((e) => e.policy.cell === cellName);
    // Orgs first: a tenant names its org only once the org's caps are in the cell.
    for (const o of orgs) {
      const members = here.filter((e) => e.policy.org === o.org);
      if (!members.length) continue;
      const fields = orgCapsFields(o, members);
      const id = `${cellName}/@${o.org}`;
      const json = JSON.stringify(fields);
      if (this.written.get(id) !== json) writes.push({ id, name: `@${o.org}`, fields, mark: json });
    }
    const known = new Set(orgs.map((o) => o.org));
    const sources = new Map<string, { entry: TenantEntry; orgKnown: boolean }>();
    for (const e of here) {
      present.add(e.tenant);
      const id = `${cellName}/${e.tenant}`;
      const orgKnown = e.policy.org !== null && known.has(e.policy.org);
      const was = this.source.get(id);
      const last = this.written.get(id);
      if (was?.entry === e && was.orgKnown === orgKnown && last !== undefined && last !== "gone") continue;
      const fields = capsFields(e);
      if (!orgKnown) fields.org = "";
      const json = JSON.stringify(fields);
      sources.set(id, { entry: e, orgKnown });
      if (last !== json) writes.push({ id, name: e.tenant, fields, mark: json, pools: e.policy.pools });
    }
    // Tenants that left: against the cell's set on the first sync, then against the last sync's tenants
    // (it grows only through syncs of the same registry; reading it all is 8-17 ms at 10,000 tenants).
    const first = !this.present.has(cellName);
    const listed = first ? new Set(await this.redis.smembers(cell.tenants)) : this.present.get(cellName)!;
    for (const t of listed) {
      const id = `${cellName}/${t}`;
      if (!present.has(t) && this.written.get(id) !== "gone") writes.push({ id, name: t, fields: { paused: "1" }, mark: "gone" });
    }
    const held = first ? await this.heldInCell(cell, writes, listed) : new Set<CapsWrite>();
    const pipeline = this.redis.pipeline();
    for (const w of writes) {
      if (held.has(w)) continue;
      pipeline.hset(cell.tenantCaps(w.name), w.fields).sadd(cell.dirty, w.name);
      if (w.pools) pipeline.sadd(cell.tenants, w.name).sadd(cell.pools, ...w.pools);
    }
    const changed = writes.length - held.size;
    if (changed) pipeline.zadd(cell.wake, 0, "w");
    // A pipeline reports refused commands (Redis full, read-only) in its results, it does not throw:
    // fail the sync then, and remember nothing, so that the next one writes it all again.
    const refused = ((await pipeline.exec()) ?? []).find(([err]) => err)?.[0];
    if (refused) throw refused;
    for (const w of writes) this.written.set(w.id, w.mark);
    for (const [id, v] of sources) this.source.set(id, v);
    this.present.set(cellName, present);
    return changed;
  }

  /**
   * The writes the cell already holds: every field as it would be written and, for a tenant, its name
   * in the cell's tenants (`listed`) and its pools in the cell's pools. One pipelined read of each that
   * may be held: a tenant the cell does not list is written (a new cell reads nothing).
   */
  private async heldInCell(cell: CellKeys, writes: CapsWrite[], listed: Set<string>): Promise<Set<CapsWrite>> {
    const candidates = writes.filter((w) => !w.pools || listed.has(w.name));
    if (!candidates.length) return new Set();
    const read = this.redis.pipeline().smembers(cell.pools);
    for (const w of candidates) read.hmget(cell.tenantCaps(w.name), ...Object.keys(w.fields));
    const [pools, ...caps] = (await read.exec()) ?? [];
    const poolSet = new Set(pools?.[0] ? [] : (pools?.[1] as string[]));
    return new Set(
      candidates.filter((w, i) => {
        const [err, got] = caps[i] ?? [new Error("no reply")];
        if (err) return false;
        const same = Object.values(w.fields).every((v, j) => (got as (string | null)[])[j] === v);
        return same && (!w.pools || w.pools.every((p) => poolSet.has(p)));
      }),
    );
  }
}

/** One tenant's, org's or departed tenant's caps to write (`mark`: what `written` then says), and a tenant's pools. */
interface CapsWrite {
  id: string;
  name: string;
  fields: Record<string, string>;
  mark: string;
  pools?: string[];
}
