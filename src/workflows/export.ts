import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import { toView, type WorkflowView } from "./record.ts";
import { readTrail, TRAIL_MAX_LIMIT, TrailQuerySchema } from "./trail.ts";

/**
 * A tenant's ended workflows as an archive reads them (`GET /v1/workflows/export`): each once, in the
 * order they ended, with its record as `GET /v1/workflows/:id` shows it. Records are kept for the
 * tenant's erasureAfterDays and no longer (docs/concepts.md, retention); what must outlive that is
 * exported before it expires. The run list cannot serve: it is ordered by enqueue time, so an archiver
 * resuming from its last run would miss a workflow enqueued before it and ended after. The audit trail
 * can: every way a workflow ends writes its "ended" entry in the same atomic step (includes/trail.lua),
 * and the entry's id is a cursor an export resumes after, nothing twice and nothing missed. A workflow
 * whose record is gone when the export reads it (expired, or erased) is a line with `workflow: null`,
 * so the archive knows what it did not get. The trail reaches back auditRetentionDays: export more
 * often than the shorter of the two retentions.
 */
export interface ExportLine {
  /** The "ended" entry's id: pass the last one written as `cursor` to resume after it. */
  cursor: string;
  endedAt: string;
  id: string;
  /** The record when it was read; null when it had already expired or been erased. */
  workflow: WorkflowView | null;
}

/** `since` and `cursor` as the audit trail takes them; nothing else (a per-workflow filter has GET /v1/workflows/:id). */
export const ExportQuerySchema = TrailQuerySchema.pick({ since: true, cursor: true });

/**
 * The ended workflows after `cursor` (or from `since`) in one page of the trail (TRAIL_MAX_LIMIT entries
 * per cell examined); `nextCursor` null when the trail has no more yet. Records are read in the cells that
 * hold the tenant's work, one pipelined read; a record naming another tenant is never shown.
 */
export async function endedPage(
  redis: Redis,
  cells: CellKeys[],
  tenant: string,
  q: { since?: number; cursor?: string },
  retentionMs: number,
  now: number,
): Promise<{ lines: ExportLine[]; nextCursor: string | null }> {
  const page = await readTrail(redis, cells, tenant, { ...q, limit: TRAIL_MAX_LIMIT }, retentionMs, now);
  const ended = page.entries.filter((e) => e.event === "ended" && e.workflow !== null);
  const reads = redis.pipeline();
  for (const e of ended) for (const cell of cells) reads.hgetall(cell.workflow(e.workflow!));
  const records = ((await reads.exec()) ?? []).map(([, v]) => v as Record<string, string> | null);
  const lines = ended.map((e, i) => {
    const found = records.slice(i * cells.length, (i + 1) * cells.length).find((h) => h?.tenant === tenant);
    return { cursor: e.id, endedAt: e.at, id: e.workflow!, workflow: found ? toView(e.workflow!, found) : null };
  });
  return { lines, nextCursor: page.nextCursor };
}
