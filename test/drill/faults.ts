import { setTimeout as sleep } from "node:timers/promises";
import type { Topology } from "../../src/dev/topology/topology.ts";
import { drillNow, type FaultRecord } from "./invariants.ts";

/**
 * The faults the drill injects into a running topology, each as a supervisor
 * or an operator would see it. Killed role processes are restarted by the
 * supervisor; Redis is restarted here on the same port and data.
 */
export const FAULT_KINDS = [
  "kill9-exec",
  "kill9-dispatcher",
  "kill9-recovery",
  "kill9-api",
  "sigstop-exec",
  "redis-sigterm",
  "redis-kill9",
  "downstream-outage",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const pick = <T>(xs: T[], rnd: () => number): T => xs[Math.floor(rnd() * xs.length)]!;

/** Injects one fault; resolves when it is over (the process stopped is resumed, Redis is back). */
export async function inject(t: Topology, kind: FaultKind, rnd: () => number, o: { lockMs: number }): Promise<FaultRecord> {
  const role = (r: string) => t.supervisor.list().filter((s) => s.spec.role === r && s.child);
  if (kind.startsWith("kill9-")) {
    const victim = pick(role(kind.slice("kill9-".length)), rnd);
    const pid = t.supervisor.signal(victim.spec.name, "SIGKILL");
    return { kind, pid, at: drillNow() };
  }
  if (kind === "sigstop-exec") {
    // Past its BullMQ lock: another worker takes the stalled run; this one must not finish it too.
    const victim = pick(role("exec"), rnd);
    const pid = t.supervisor.signal(victim.spec.name, "SIGSTOP");
    const at = drillNow();
    await sleep(o.lockMs * 2 + 1_000);
    t.supervisor.signal(victim.spec.name, "SIGCONT");
    return { kind, pid, at, until: drillNow() };
  }
  if (kind === "redis-sigterm" || kind === "redis-kill9") {
    const pid = t.redis.pid;
    const at = drillNow();
    if (kind === "redis-kill9") t.redis.killNow();
    else await t.redis.stop();
    await sleep(1_000);
    await t.restartRedis();
    return { kind, pid, at, until: drillNow() };
  }
  // downstream-outage
  const at = drillNow();
  t.downstream.setOutage(true);
  await sleep(2_000);
  t.downstream.setOutage(false);
  return { kind, at, until: drillNow() };
}
