import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

/** Resident set size of a process in MiB (/proc/<pid>/status VmRSS); NaN once it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface RedisMemory {
  /** used_memory (INFO memory). */
  used: number;
  /** used_memory less the observer log and the BullMQ event streams: what must stay flat. */
  net: number;
  observerLog: number;
  /** BullMQ's event streams (`<queue>:events`), and the longest one's length. */
  eventStreams: number;
  eventStreamMaxLen: number;
}

/**
 * Redis memory in MiB, and the same net of what grows by design but is
 * bounded elsewhere: the harness's own observer log (a list outside the
 * deployment's prefix, two entries per run) and BullMQ's event streams, which
 * fill up to the queue's maxLenEvents (10,000 by default) and are trimmed
 * there — their length is reported so that bound is seen to hold.
 */
export async function redisMemoryMiB(redis: Redis, observerLog: string, eventStreams: readonly string[]): Promise<RedisMemory> {
  const info = await redis.info("memory");
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
  const p = redis.pipeline();
  for (const k of [observerLog, ...eventStreams]) p.call("MEMORY", "USAGE", k, "SAMPLES", "0");
  for (const k of eventStreams) p.xlen(k);
  const replies = (await p.exec())!.map(([, v]) => Number(v ?? 0));
  const log = replies[0]!;
  const streams = replies.slice(1, 1 + eventStreams.length).reduce((s, x) => s + x, 0);
  const mib = (b: number) => b / 2 ** 20;
  return {
    used: mib(used),
    net: mib(used - log - streams),
    observerLog: mib(log),
    eventStreams: mib(streams),
    eventStreamMaxLen: Math.max(0, ...replies.slice(1 + eventStreams.length)),
  };
}

/** One sample of the soak. */
export interface Sample {
  at: number;
  /** Minutes since the load started. */
  min: number;
  rss: Record<string, number>;
  redis: RedisMemory;
  redisRss: number;
  /** Keys of the deployment, and those without a TTL. */
  keys: { total: number; noTtl: number; perWorkflowNoTtl: number };
}
