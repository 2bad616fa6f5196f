import type { Redis } from "ioredis";
import { z } from "zod";
import type { CellKeys } from "../../queues/keys.ts";
import { WORKFLOW_ID } from "../../queues/names.ts";
import { epochOrIso } from "./listIndex.ts";

/**
 * A tenant's audit trail (queues/keys.ts `trail:<t>`, written by the scripts that make each transition:
 * queues/lua/includes/trail.lua). Read oldest first, across every cell that held the tenant's work, never
 * further back than its auditRetentionDays; the entry id (Redis's stream id, "<ms>-<seq>") is the cursor,
 * so a read or an export resumed after an id sees every later entry exactly once.
 */
export interface TrailEntry {
  /** "<ms>-<seq>": the order, and where to resume. */
  id: string;
  at: string;
  /** The workflow, or null for an action on the tenant itself. */
  workflow: string | null;
  event: string;
  by: string;
  why: string;
}

const STREAM_ID = /^\d{1,15}-\d{1,19}$/;
export const TRAIL_MAX_LIMIT = 1000;
/** Entries one filtered page examines at most (per cell): bounded cost per page. */
export const TRAIL_SCAN = 2000;

export const TrailQuerySchema = z.strictObject({
  workflow: z.string().regex(WORKFLOW_ID, "a workflow id").optional().meta({ description: "Only this workflow's entries." }),
  since: epochOrIso.optional().meta({ description: "Only entries at or after this time (ISO 8601 or epoch ms)." }),
  cursor: z
    .string()
    .regex(STREAM_ID, "the id of an entry (nextCursor, or the last id read)")
    .optional()
    .meta({ description: "Only entries after this one: `nextCursor` of the previous page, or the last `id` an export wrote." }),
  limit: z
    .string()
    .regex(/^\d+$/, "an integer")
    .transform(Number)
    .pipe(z.number().int().min(1).max(TRAIL_MAX_LIMIT))
    .optional()
    .meta({ description: `Entries per page, 1-${TRAIL_MAX_LIMIT} (default 100).` }),
});
export type TrailQuery = z.output<typeof TrailQuerySchema>;

export interface TrailPage {
  entries: TrailEntry[];
  /** Pass as `cursor` for the next page; null when there is none yet (new entries may still come). */
  nextCursor: string | null;
}

const idParts = (id: string) => id.split("-").map(BigInt) as [bigint, bigint];
const compareIds = (a: string, b: string) => {
  const [am, as] = idParts(a);
  const [bm, bs] = idParts(b);
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
};

function toEntry(id: string, flat: string[]): TrailEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return {
    id,
    at: new Date(Number(id.split("-")[0])).toISOString(),
    workflow: f.wf || null,
    event: f.ev ?? "",
    by: f.by ?? "",
    why: f.why ?? "",
  };
}

/**
 * One page of the tenant's trail, oldest first: entries after `cursor` (or from `since`), never older than
 * `now - retentionMs`. Bounded cost: `limit` entries per cell (TRAIL_SCAN when filtering by workflow).
 */
export async function readTrail(
  redis: Redis,
  cells: CellKeys[],
  tenant: string,
  q: TrailQuery,
  retentionMs: number,
  now: number,
): Promise<TrailPage> {
  const limit = q.limit ?? 100;
  const scan = q.workflow ? TRAIL_SCAN : limit;
  const floor = Math.max(0, now - retentionMs, q.since ?? 0);
  let start = `${floor}-0`;
  if (q.cursor && compareIds(q.cursor, start) >= 0) start = `(${q.cursor}`;
  const perCell = await Promise.all(
    cells.map(async (cell) => (await redis.xrange(cell.trail(tenant), start, "+", "COUNT", scan)) as [string, string[]][]),
  );
  const full = perCell.some((e) => e.length === scan);
  const examined = perCell
    .flat()
    .sort((a, b) => compareIds(a[0], b[0]))
    .slice(0, scan);
  const entries: TrailEntry[] = [];
  let last: string | null = null;
  for (const [id, flat] of examined) {
    if (entries.length === limit) break;
    last = id;
    const e = toEntry(id, flat);
    if (!q.workflow || e.workflow === q.workflow) entries.push(e);
  }
  const more = full || (last !== null && last !== examined[examined.length - 1]?.[0]);
  return { entries, nextCursor: more ? last : null };
}
