import type { Redis } from "ioredis";
import { listMember } from "../listMember.ts";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("eraseEnded-1.lua");

/** What erasure found in one cell; `kept` are never touched (not ended, or ended at or after `before`). */
export interface ErasureCounts {
  /** Ended workflows whose every key was deleted now. */
  erased: number;
  /** Run-list entries whose workflow's data had already expired (the tenant's retention). */
  alreadyGone: number;
  kept: { queued: number; running: number; parked: number; endedLater: number };
}

/**
 * Erases the tenant's workflows in one cell that ended before `before` (eraseEnded-1.lua), a page
 * of its run list per script call so no call blocks Redis for long: its run list's entries, then its
 * index's as written before 2026-12-05.
 */
export async function eraseEnded(redis: Redis, cell: CellKeys, tenant: string, before: number, page = 200): Promise<ErasureCounts> {
  const out: ErasureCounts = { erased: 0, alreadyGone: 0, kept: { queued: 0, running: 0, parked: 0, endedLater: 0 } };
  const sources = [
    // Entry IDs are Redis's time, the record's enqueuedAt the api's: a minute past `before` covers clocks that differ.
    { kind: "runs", key: cell.runList(tenant), end: `(${before + 60_000}-0` },
    { kind: "wfs", key: cell.workflowsByTenant(tenant), end: `(${listMember(before, "")}` },
  ];
  for (const { kind, key, end } of sources) {
    for (let start = "-"; ; ) {
      const [examined, erased, gone, queued, running, parked, later, last] = await script.run<[...number[], string]>(
        redis,
        [key],
        [cell.own, cell.bullPrefix, tenant, before, start, end, page, kind],
      );
      out.erased += Number(erased);
      out.alreadyGone += Number(gone);
      out.kept.queued += Number(queued);
      out.kept.running += Number(running);
      out.kept.parked += Number(parked);
      out.kept.endedLater += Number(later);
      if (Number(examined) < page) break;
      start = `(${last}`;
    }
  }
  return out;
}
