/**
 * The members of the run-list index (queues/keys.ts `<cell>:wfs:<t>`), shared by admitWorkflow-14.lua's
 * wrapper (queues/lua/admitWorkflow.ts), which adds them, and the run lists (src/workflows/listIndex.ts,
 * list.ts), which page through them. Every member has score 0 and reads "<13-digit enqueuedAt>|<id>",
 * so lex order is enqueue order (ties by id). Pure.
 */
const MEMBER = /^(\d{13})\|(wf_[A-Za-z0-9_-]{20})$/;

export function listMember(enqueuedAt: number, id: string): string {
  return `${String(enqueuedAt).padStart(13, "0")}|${id}`;
}

export function parseMember(member: string): { enqueuedAt: number; id: string } | undefined {
  const m = MEMBER.exec(member);
  return m ? { enqueuedAt: Number(m[1]), id: m[2]! } : undefined;
}
