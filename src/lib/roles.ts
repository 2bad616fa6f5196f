/**
 * The process roles, the one list of them. Each has its entrypoint `workers/<role>.ts`, which starts
 * that role alone; `npm start` (workers/all.ts) starts every role in this order (the exec role in
 * processes of its own, src/dev/execChildren.ts; the others in its own process)
 * (health first, so its first probe is written before any work can resume; the api last, so
 * nothing is accepted before it can run) and stops them in the reverse order.
 */
export const ROLES = ["health", "exec", "dispatcher", "recovery", "api"] as const;

export type Role = (typeof ROLES)[number];

/**
 * The node flags every role process runs with (npm start, the image's entrypoint, the dev topology,
 * the tests and the benchmarks). `--single-threaded-gc`: V8 collects garbage on the process's own
 * thread instead of four helper threads per process. Fairlane runs several single-threaded roles per
 * machine (or per CPU quota), so the helpers only compete with the other processes for the same
 * cores, and a collection whose helper waits for a core stalls its process meanwhile: in the storm
 * benchmark the dispatcher spent 140-190 ms of a second in collections at the batch's arrival, with
 * ~40 ms of JavaScript, and Class A's start p99 under the storm fell from a median of 89 ms to 58 ms
 * with the flag (docs/benchmarks.md). It is a command-line flag (NODE_OPTIONS refuses it, and set at
 * run time V8 aborts): whoever starts a role passes it.
 */
export const ROLE_NODE_FLAGS: readonly string[] = ["--single-threaded-gc"];

/** A role's entrypoint, relative to the project root (tsx runs it; the build's is dist/workers/<role>.js). */
export function roleEntrypoint(role: Role): string {
  return `workers/${role}.ts`;
}
