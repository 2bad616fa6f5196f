/**
 * The production layout of docker-compose.yml as a list of processes, pure:
 * api ×2, dispatcher ×2, exec ×3 in pool "default" and ×2 in pool "eu-west-1",
 * health ×2, recovery ×2. `npm run topology` and the fault drill start it as
 * local OS processes (src/dev/topology/supervisor.ts).
 */
import type { Role } from "../../lib/roles.ts";

export type { Role };

export interface ProcessSpec {
  /** Unique, e.g. "exec-default-2". */
  name: string;
  role: Role;
  env: Record<string, string>;
}

export interface LayoutOptions {
  /** The first api's port; the second listens on the next one. */
  apiPort: number;
  execConcurrency: number;
  /** Exec processes per pool (default: the compose file's 3 and 2). */
  execs?: Record<string, number>;
}

export function productionLayout(o: LayoutOptions): ProcessSpec[] {
  const out: ProcessSpec[] = [];
  const add = (role: Role, n: number, name: string, env: (i: number) => Record<string, string> = () => ({})) => {
    for (let i = 1; i <= n; i++) out.push({ name: `${name}-${i}`, role, env: env(i) });
  };
  add("api", 2, "api", (i) => ({ PORT: String(o.apiPort + i - 1) }));
  add("dispatcher", 2, "dispatcher");
  for (const [pool, n] of Object.entries(o.execs ?? { default: 3, "eu-west-1": 2 }))
    add("exec", n, `exec-${pool}`, () => ({ FAIRLANE_POOL: pool, FAIRLANE_CONCURRENCY: String(o.execConcurrency) }));
  add("health", 2, "health");
  add("recovery", 2, "recovery");
  return out;
}
