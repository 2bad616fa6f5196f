import { z } from "zod";
import { listMember, parseMember } from "../../queues/listMember.ts";

/**
 * The run list's order, sources and cursors (queues/keys.ts `runs:<t>`, and `wfs:<t>` as written before
 * 2026-12-05). A tenant's workflows are listed from every cell that holds its work, and in each cell
 * from two sources: its run list, a stream whose entry IDs are Redis's time of each admission ("<ms>-<n>",
 * as the trail's: within a clock's skew of the record's enqueuedAt, and never out of order), and the zset
 * the run list replaced (members "<13-digit enqueuedAt>|<id>", score 0), until that one is trimmed empty.
 * One order spans them all, newest first: by enqueue time, then by source ("runs:<cell>" or
 * "wfs:<cell>"), then by place in the source (a stream entry's sequence number, a member's id). A
 * cursor is the last position a page examined, so each source resumes strictly after it (sourceBounds).
 * Pure: src/workflows/list.ts reads Redis.
 */
export { listMember, parseMember } from "../../queues/listMember.ts";

export type SourceKind = "runs" | "wfs";

/** A place in the order. `legacy`: a cursor of a list before 2026-12-05 (a zset member's place only). */
export interface ListPosition {
  ms: number;
  source: string;
  tie: string;
  legacy?: true;
}

/** One entry of one source: where it is in the order, the workflow it lists, and what removes it (`pos`). */
export interface ListEntry extends ListPosition {
  kind: SourceKind;
  id: string;
  pos: string;
}

export const sourceName = (kind: SourceKind, cell: string): string => `${kind}:${cell}`;

/** A stream entry "<ms>-<seq>" listing `id`, as an entry of the run list of `cell`. */
export function streamEntry(cell: string, entryId: string, id: string): ListEntry {
  const dash = entryId.indexOf("-");
  const seq = entryId.slice(dash + 1).padStart(20, "0");
  return { kind: "runs", source: sourceName("runs", cell), ms: Number(entryId.slice(0, dash)), tie: seq, id, pos: entryId };
}

/** A zset member "<13-digit enqueuedAt>|<id>" of `cell`'s index as written before 2026-12-05 (undefined: not one). */
export function memberEntry(cell: string, member: string): ListEntry | undefined {
  const m = parseMember(member);
  return m && { kind: "wfs", source: sourceName("wfs", cell), ms: m.enqueuedAt, tie: m.id, id: m.id, pos: member };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The order of a page, newest first: > 0 when `a` comes after `b`. */
export function newestFirst(a: ListPosition, b: ListPosition): number {
  return b.ms - a.ms || cmp(b.source, a.source) || cmp(b.tie, a.tie);
}

/**
 * What one source reads for a page: [max, min], the bounds of XREVRANGE (stream) or ZRANGE BYLEX REV (zset):
 * strictly after `after` in the order, at or after `since`.
 */
export function sourceBounds(
  kind: SourceKind,
  source: string,
  after: ListPosition | undefined,
  since: number | undefined,
): [string, string] {
  const min = since === undefined ? "-" : kind === "runs" ? String(since) : `[${listMember(since, "")}`;
  if (!after) return ["+", min];
  // Its entries of the cursor's millisecond: all after it, all before it, or after its own place.
  const at = after.legacy ? (kind === "wfs" ? 0 : 1) : cmp(source, after.source);
  if (kind === "runs") {
    if (at < 0) return [String(after.ms), min];
    // Strictly before "<ms>-<seq>": the entry ID just below it, inclusive (nothing is below 0-0).
    const seq = at > 0 ? 0n : BigInt(after.tie);
    if (seq > 0n) return [`${after.ms}-${seq - 1n}`, min];
    return after.ms > 0 ? [String(after.ms - 1), min] : ["-", "+"];
  }
  if (at > 0) return [`(${listMember(after.ms, "")}`, min];
  if (at < 0) return [`(${listMember(after.ms + 1, "")}`, min];
  return [`(${listMember(after.ms, after.tie)}`, min];
}

export const encodeCursor = (p: ListPosition): string =>
  Buffer.from(p.legacy ? listMember(p.ms, p.tie) : JSON.stringify([p.ms, p.source, p.tie])).toString("base64url");

const POSITION = z.tuple([
  z.number().int().min(0).max(9_999_999_999_999),
  z.string().regex(/^(runs|wfs):[A-Za-z0-9._-]{1,100}$/),
  z.string().regex(/^(\d{20}|wf_[A-Za-z0-9_-]{20})$/),
]);

/** A cursor this API returned, as a position; a list's cursor from before 2026-12-05 (a member) too. */
export function decodeCursor(cursor: string): ListPosition | undefined {
  const text = Buffer.from(cursor, "base64url").toString();
  const m = parseMember(text);
  if (m) return { ms: m.enqueuedAt, source: "", tie: m.id, legacy: true };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const p = POSITION.safeParse(json);
  return p.success ? { ms: p.data[0], source: p.data[1], tie: p.data[2] } : undefined;
}

export const LIST_STATES = ["queued", "running", "parked", "review", "completed", "failed", "cancelled"] as const;
export const LIST_MAX_LIMIT = 200;
/** Index entries one page examines at most when it filters (state, class, type): bounded cost per page. */
export const LIST_SCAN = 500;

/** A time as epoch ms or ISO 8601 with an offset, as epoch ms. */
export const epochOrIso = z.union([
  z
    .string()
    .regex(/^\d{1,13}$/, "epoch ms or an ISO 8601 time")
    .transform(Number),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);

/** The query of `GET /v1/workflows` (and the admin's, which adds `tenant`). Unknown parameters are refused. */
export const ListQuerySchema = z.strictObject({
  state: z.enum(LIST_STATES).optional().meta({ description: "Only workflows in this state (`running` includes dispatched)." }),
  class: z.enum(["A", "B", "C"]).optional().meta({ description: "Only workflows of this class." }),
  type: z.string().min(1).max(100).optional().meta({ description: "Only workflows of this type." }),
  since: epochOrIso.optional().meta({ description: "Only workflows enqueued at or after this time (ISO 8601 or epoch ms)." }),
  limit: z
    .string()
    .regex(/^\d+$/, "an integer")
    .transform(Number)
    .pipe(z.number().int().min(1).max(LIST_MAX_LIMIT))
    .optional()
    .meta({ description: `Workflows per page, 1-${LIST_MAX_LIMIT} (default 50).` }),
  cursor: z
    .string()
    .max(400)
    .refine((c) => decodeCursor(c) !== undefined, "not a cursor this API returned")
    .optional()
    .meta({ description: "`nextCursor` of the previous page." }),
});
export type ListQuery = z.output<typeof ListQuerySchema>;

export interface Filter {
  state?: (typeof LIST_STATES)[number];
  class?: "A" | "B" | "C";
  type?: string;
}

/** Whether a record's fields (state as stored: `dispatched` reads as running) pass the filter. */
export function matches(f: Filter, state: string | null, cls: string | null, type: string | null): boolean {
  const publicState = state === "dispatched" ? "running" : state;
  return (!f.state || publicState === f.state) && (!f.class || cls === f.class) && (!f.type || type === f.type);
}
