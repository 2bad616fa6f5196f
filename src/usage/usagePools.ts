import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { replyCursor } from "../lib/replyCursor.ts";
import { SlotPipeline } from "../lib/slotPipeline.ts";
import { poolBatchCapacity, poolCapacity } from "../dispatch/policy/explain.ts";
import { poolShares, type ShareOptions } from "../dispatch/policy/shares.ts";
import { publishedSettings } from "../workflows/explain.ts";
import type { DependencyUsage, PoolUsage } from "./usageTypes.ts";

/** The share options and capacity cap a cell's dispatcher published (or this process's own until one has). */
export interface CellSettings {
  shares: ShareOptions;
  capacityCap: number;
}

export interface PoolReads {
  pools: PoolUsage[];
  dependencies: DependencyUsage[];
  /** Every parked workflow, by cell and the dependency it waits on. */
  parkedIds: { cell: string; id: string; dep: string }[];
  settings: Map<string, CellSettings>;
}

/**
 * Round trip 2 of the usage snapshot (usageSnapshot.ts): per cell, the dispatcher's published
 * settings; per pool (as round trip 1 found them), live workers, their concurrency and the slots
 * used; per dependency, the operator's mark, the measured health and the parked ids.
 */
export async function readPools(
  redis: Redis,
  keys: Keys,
  cells: string[],
  found: { poolsOf: Map<string, string[]>; depsOf: Map<string, string[]> },
  own: CellSettings,
  now: number,
): Promise<PoolReads> {
  const p2 = new SlotPipeline(redis);
  for (const c of cells) {
    const ck = keys.cell(c);
    p2.add(ck.dispatchSettings, (p) => p.hgetall(ck.dispatchSettings));
    for (const pool of found.poolsOf.get(c)!) {
      const [w, conc, batch, used] = [ck.poolWorkers(pool), ck.poolConcurrency(pool), ck.poolBatch(pool), ck.poolUsed(pool)];
      p2.add(w, (p) => p.zrangebyscore(w, `(${now}`, "+inf"))
        .add(conc, (p) => p.hgetall(conc))
        .add(batch, (p) => p.hgetall(batch))
        .add(used, (p) => p.hgetall(used));
    }
    for (const dep of found.depsOf.get(c)!) {
      const [o, h, parked] = [ck.healthOverride(dep), ck.health(dep), ck.parked(dep)];
      p2.add(o, (p) => p.hgetall(o))
        .add(h, (p) => p.hgetall(h))
        .add(parked, (p) => p.zrange(parked, 0, -1));
    }
  }
  const next = replyCursor(await p2.exec());
  const out: PoolReads = { pools: [], dependencies: [], parkedIds: [], settings: new Map() };
  for (const c of cells) {
    const published = publishedSettings(next() as Record<string, string>);
    const { shares, capacityCap } = published ?? own;
    out.settings.set(c, { shares, capacityCap });
    for (const pool of found.poolsOf.get(c)!) {
      const live = next() as string[];
      const conc = next() as Record<string, string>;
      const batch = next() as Record<string, string>;
      const used = next() as Record<string, string>;
      const capacity = poolCapacity(
        live.map((w) => Number(conc[w]) || 0),
        capacityCap,
      );
      out.pools.push({
        cell: c,
        pool,
        workers: live.length,
        capacity,
        used: Number(used.total ?? 0),
        usedA: Number(used.A ?? 0),
        usedC: Number(used.C ?? 0),
        reserveA: poolShares(capacity, shares).reserveA,
        batchCapacity: poolBatchCapacity(live, conc, batch),
      });
    }
    for (const dep of found.depsOf.get(c)!) {
      const override = next() as Record<string, string>;
      const measured = next() as Record<string, string>;
      const ids = next() as string[];
      const s = override.state ? override : measured.state ? measured : null;
      const state = s && ["healthy", "degraded", "down"].includes(s.state!) ? (s.state as DependencyUsage["state"]) : "missing";
      out.dependencies.push({
        cell: c,
        dependency: dep,
        state,
        source: s?.source ?? null,
        since: s?.since ? Number(s.since) : null,
        parked: ids.length,
      });
      for (const id of ids) out.parkedIds.push({ cell: c, id, dep });
    }
  }
  return out;
}
