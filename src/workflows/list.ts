import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import { LIST_SCAN, encodeCursor, listMember, matches, parseMember, type ListQuery } from "./listIndex.ts";
import { toView, type WorkflowView } from "./record.ts";

export interface WorkflowPage {
  workflows: WorkflowView[];
  /** Pass as `cursor` for the next page; null when there is none. A filtered page may hold fewer than `limit` and still have one. */
  nextCursor: string | null;
}

/**
 * A page of a tenant's workflows, newest first, from the run-list index of every cell that holds its work
 * (its current cell and the ones it moved from). Bounded cost: at most `limit` entries per cell (LIST_SCAN
 * when filtering), one pipelined read of the fields the filter needs, one of the records returned.
 * An entry whose record expired (or whose record names another tenant: never shown) is dropped from the index.
 */
export async function listWorkflows(redis: Redis, cells: CellKeys[], tenant: string, q: ListQuery): Promise<WorkflowPage> {
  const limit = q.limit ?? 50;
  const filtered = q.state !== undefined || q.class !== undefined || q.type !== undefined;
  const scan = filtered ? LIST_SCAN : limit;
  const max = q.cursor ? `(${Buffer.from(q.cursor, "base64url").toString()}` : "+";
  const min = q.since !== undefined ? `[${listMember(q.since, "")}` : "-";
  const perCell = await Promise.all(
    cells.map(async (cell) => {
      const members = (await redis.call("ZRANGE", cell.workflowsByTenant(tenant), max, min, "BYLEX", "REV", "LIMIT", 0, scan)) as string[];
      return members.map((member) => ({ cell, member }));
    }),
  );
  const full = perCell.some((m) => m.length === scan);
  // Newest first across cells; the first `scan` of them are examined, the rest are next page's.
  const entries = perCell
    .flat()
    .sort((a, b) => (a.member < b.member ? 1 : a.member > b.member ? -1 : 0))
    .slice(0, scan);
  const ids = entries.map((e) => parseMember(e.member)?.id ?? "");

  const heads = redis.pipeline();
  entries.forEach((e, i) => heads.hmget(e.cell.workflow(ids[i]!), "tenant", "state", "class", "type"));
  const fields = ((await heads.exec()) ?? []).map(([, v]) => (v as (string | null)[] | null) ?? []);

  const picked: number[] = [];
  const gone = redis.pipeline();
  let examined = 0;
  for (; examined < entries.length && picked.length < limit; examined++) {
    const [owner, state, cls, type] = fields[examined]!;
    if (owner !== tenant) {
      if (!owner) gone.zrem(entries[examined]!.cell.workflowsByTenant(tenant), entries[examined]!.member);
      continue;
    }
    if (matches(q, state ?? null, cls ?? null, type ?? null)) picked.push(examined);
  }
  if (gone.length) await gone.exec();

  const reads = redis.pipeline();
  for (const i of picked) reads.hgetall(entries[i]!.cell.workflow(ids[i]!));
  const records = ((await reads.exec()) ?? []).map(([, v]) => v as Record<string, string>);
  const workflows = picked.flatMap((i, k) => (records[k]?.tenant === tenant ? [toView(ids[i]!, records[k]!)] : []));

  const more = examined < entries.length || full;
  return { workflows, nextCursor: more && examined > 0 ? encodeCursor(entries[examined - 1]!.member) : null };
}
