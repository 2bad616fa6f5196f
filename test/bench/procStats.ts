import { readdirSync, readFileSync, readlinkSync } from "node:fs";

const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

/** The whole machine's CPU counters (/proc/stat): busy and total jiffies so far. */
export function hostCpu(): { busy: number; total: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((s, x) => s + x, 0);
    return { busy: total - f[3]! - (f[4] ?? 0), total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** The fraction of the machine's CPU that was busy between two hostCpu() readings. */
export const busyFraction = (a: ReturnType<typeof hostCpu>, b: ReturnType<typeof hostCpu>): number =>
  b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : NaN;

/**
 * Write syscalls a process has made so far (/proc/<pid>/io syscw). For a role
 * that logs at warn this is almost only its Redis sockets: ioredis writes each
 * command, or each pipeline, with one write, so the delta over a phase counts
 * its round trips to Redis.
 */
export function writeCalls(pid: number): number {
  try {
    return Number(/^syscw:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** Seconds a process has spent runnable but waiting for a CPU so far (/proc/<pid>/schedstat). */
export function runQueueSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** The local TCP ports of a process's sockets (its Redis connections among them), from /proc. */
export function localPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(":")[1]!, 16));
    }
  }
  return ports;
}
