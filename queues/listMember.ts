/**
 * The members of the run-list index as written before 2026-12-05 (queues/keys.ts `<cell>:wfs:<t>`; the run
 * list is a stream since, `runs:<t>`), which the run lists (src/workflows/listIndex.ts, list.ts), erasure and
 * the dispatcher's trim read until it is empty; and how far back a run list reaches (the dispatcher trims
 * it). Every member has score 0 and reads "<13-digit enqueuedAt>|<id>", so lex order is enqueue order (ties
 * by id). Pure.
 */
const MEMBER = /^(\d{13})\|(wf_[A-Za-z0-9_-]{20})$/;

export function listMember(enqueuedAt: number, id: string): string {
  return `${String(enqueuedAt).padStart(13, "0")}|${id}`;
}

export function parseMember(member: string): { enqueuedAt: number; id: string } | undefined {
  const m = MEMBER.exec(member);
  return m ? { enqueuedAt: Number(m[1]), id: m[2]! } : undefined;
}

/**
 * How far back a tenant's run-list index reaches, in ms: twice its record TTL (`retainSec`, the tenant's
 * retention, else the deployment's `recordTtlSec`), so an entry outlives the record of a workflow that stayed
 * open for up to a TTL (parked, paused); lists drop entries whose record expired. Trimmed by the dispatcher
 * (queues/trail.ts).
 */
export function runListRetentionMs(retainSec: number | null, recordTtlSec: number): number {
  return 2 * (retainSec ?? recordTtlSec) * 1000;
}
