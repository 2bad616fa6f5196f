import { z } from "zod";
import { parseMember } from "../../queues/listMember.ts";

/**
 * The run-list index's members and cursors (queues/keys.ts `wfs:<t>`): every member has score 0 and reads
 * "<13-digit enqueuedAt>|<id>" (queues/listMember.ts, shared with admission's script), so lex order is
 * enqueue order (ties by id) and one bound both pages and filters by time. A cursor is the last member a
 * page examined, base64url-encoded: the next page starts strictly below it. Pure: src/workflows/list.ts
 * reads Redis.
 */
export { listMember, parseMember } from "../../queues/listMember.ts";

export const encodeCursor = (member: string): string => Buffer.from(member).toString("base64url");

export function decodeCursor(cursor: string): string | undefined {
  const member = Buffer.from(cursor, "base64url").toString();
  return parseMember(member) ? member : undefined;
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
    .max(200)
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
