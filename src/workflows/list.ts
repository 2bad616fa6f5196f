import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import {
  decodeCursor,
  encodeCursor,
  LIST_SCAN,
  type ListPosition,
  type ListQuery,
  matches,
  memberEntry,
  newestFirst,
  sourceBounds,
  sourceName,
  streamEntry,
} from "./listIndex.ts";
import { toView, type WorkflowView } from "./record.ts";

export interface WorkflowPage {
  workflows: WorkflowView[];
  /** Pass as `cursor` for the next page; null when there is none. A filtered page may hold fewer than `limit` and still have one. */
  nextCursor: string | null;
}

/** One cell's entries strictly after `after`, newest first, at most `scan` from each of its two sources. */
async function readCell(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
  after: ListPosition | undefined,
  since: number | undefined,
  scan: number,
) {
  const runs = sourceName("runs", cell.cell);
  const wfs = sourceName("wfs", cell.cell);
  const [rMax, rMin] = sourceBounds("runs", runs, after, since);
  const [zMax, zMin] = sourceBounds("wfs", wfs, after, since);
  const [rows, members] = await Promise.all([
    redis.xrevrange(cell.runList(tenant), rMax, rMin, "COUNT", scan),
    redis.call("ZRANGE", cell.workflowsByTenant(tenant), zMax, zMin, "BYLEX", "REV", "LIMIT", 0, scan) as Promise<string[]>,
  ]);
  const entries = rows.map(([entryId, fields]) => streamEntry(cell.cell, entryId, fields[1] ?? ""));
  for (const m of members) {
    const e = memberEntry(cell.cell, m);
    if (e) entries.push(e);
  }
  return { cell, entries, full: rows.length === scan || members.length === scan };
}

/**
 * A page of a tenant's workflows, newest first, from the run lists of every cell that holds its work
 * (its current cell and the ones it moved from; listIndex.ts has the order). Bounded cost: at most
 * `limit` entries per source (LIST_SCAN when filtering), one pipelined read of the fields the filter
 * needs, one of the records returned. An entry whose record expired (or whose record names another
 * tenant: never shown) is dropped from its list.
 */
export async function listWorkflows(redis: Redis, cells: CellKeys[], tenant: string, q: ListQuery): Promise<WorkflowPage> {
  const limit = q.limit ?? 50;
  const filtered = q.state !== undefined || q.class !== undefined || q.type !== undefined;
  const scan = filtered ? LIST_SCAN : limit;
  const after = q.cursor ? decodeCursor(q.cursor) : undefined;
  const perCell = await Promise.all(cells.map((cell) => readCell(redis, cell, tenant, after, q.since, scan)));
  const full = perCell.some((c) => c.full);
  // Newest first across sources; the first `scan` of them are examined, the rest are next page's.
  const entries = perCell
    .flatMap((c) => c.entries.map((e) => ({ ...e, cell: c.cell })))
    .sort(newestFirst)
    .slice(0, scan);

  const heads = redis.pipeline();
  for (const e of entries) heads.hmget(e.cell.workflow(e.id), "tenant", "state", "class", "type");
  const fields = ((await heads.exec()) ?? []).map(([, v]) => (v as (string | null)[] | null) ?? []);

  const picked: number[] = [];
  const gone = redis.pipeline();
  let examined = 0;
  for (; examined < entries.length && picked.length < limit; examined++) {
    const [owner, state, cls, type] = fields[examined]!;
    const e = entries[examined]!;
    if (owner !== tenant) {
      if (!owner) {
        if (e.kind === "runs") gone.xdel(e.cell.runList(tenant), e.pos);
        else gone.zrem(e.cell.workflowsByTenant(tenant), e.pos);
      }
      continue;
    }
    if (matches(q, state ?? null, cls ?? null, type ?? null)) picked.push(examined);
  }
  if (gone.length) await gone.exec();

  const reads = redis.pipeline();
  for (const i of picked) reads.hgetall(entries[i]!.cell.workflow(entries[i]!.id));
  const records = ((await reads.exec()) ?? []).map(([, v]) => v as Record<string, string>);
  const workflows = picked.flatMap((i, k) => (records[k]?.tenant === tenant ? [toView(entries[i]!.id, records[k]!)] : []));

  const more = examined < entries.length || full;
  return { workflows, nextCursor: more && examined > 0 ? encodeCursor(entries[examined - 1]!) : null };
}
