/**
 * The process roles, the one list of them. Each has its entrypoint `workers/<role>.ts`, which starts
 * that role alone; `npm start` (workers/all.ts) starts every role in this order (the exec role in
 * processes of its own, src/dev/execChildren.ts; the others in its own process)
 * (health first, so its first probe is written before any work can resume; the api last, so
 * nothing is accepted before it can run) and stops them in the reverse order.
 */
export const ROLES = ["health", "exec", "dispatcher", "recovery", "api"] as const;

export type Role = (typeof ROLES)[number];

/** A role's entrypoint, relative to the project root (tsx runs it; the build's is dist/workers/<role>.js). */
export function roleEntrypoint(role: Role): string {
  return `workers/${role}.ts`;
}
