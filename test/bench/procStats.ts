import { readFileSync } from "node:fs";

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
export const busyFraction = (a: ReturnType<typeof hostCpu>, b: ReturnType<typeof hostCpu>): number => (b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : NaN);
