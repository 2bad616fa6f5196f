import type { Redis } from "ioredis";
import { cpuSeconds, writeCalls } from "../procStats.ts";
import { commandStats, topCommands } from "./redisCost.ts";

/**
 * The cost of one phase of a throughput run, per workflow: CPU of every
 * process in it and of Redis (/proc), write syscalls per process (≈ its round
 * trips to Redis: lib/../procStats.ts writeCalls), and Redis's own command
 * counts (lib/redisCost.ts). Each process counts from `begin`, once it has
 * booted, so no start-up is charged to the workflows.
 */
export interface ProcessCost {
  role: string;
  pid: number;
  /** µs of CPU per workflow. */
  cpuUs: number;
  /** Write syscalls per workflow. */
  writes: number;
}

export interface PhaseCost {
  seconds: number;
  perSec: number;
  /** µs of CPU per workflow: every process of the phase plus Redis. */
  cpuUs: number;
  redisCpuUs: number;
  processes: ProcessCost[];
  /** Redis commands per workflow, script-internal ones included; script calls among them. */
  commands: number;
  scripts: number;
  top: string;
}

interface Start {
  role: string;
  pid: number;
  cpu: number;
  writes: number;
}

export class Meter {
  private started: Start[] = [];
  private redis0 = 0;

  constructor(
    private readonly admin: Redis,
    private readonly redisPid: number,
  ) {}

  /** Resets Redis's statistics and takes every process's counters. */
  async begin(procs: { role: string; pid: number }[]): Promise<void> {
    await this.admin.config("RESETSTAT");
    this.redis0 = cpuSeconds(this.redisPid);
    this.started = [];
    for (const p of procs) this.started.push({ ...p, cpu: cpuSeconds(p.pid), writes: writeCalls(p.pid) });
  }

  async end(jobs: number, seconds: number): Promise<PhaseCost> {
    const redisCpu = cpuSeconds(this.redisPid) - this.redis0;
    const processes = this.started.map((s) => ({
      role: s.role,
      pid: s.pid,
      cpuUs: ((cpuSeconds(s.pid) - s.cpu) / jobs) * 1e6,
      writes: (writeCalls(s.pid) - s.writes) / jobs,
    }));
    const stats = await commandStats(this.admin);
    return {
      seconds,
      perSec: jobs / seconds,
      cpuUs: processes.reduce((t, p) => t + p.cpuUs, 0) + (redisCpu / jobs) * 1e6,
      redisCpuUs: (redisCpu / jobs) * 1e6,
      processes,
      commands: stats.commands / jobs,
      scripts: stats.scripts / jobs,
      top: topCommands(stats, jobs),
    };
  }
}

/** Per role: processes of one role summed (two exec processes → one "exec" row). */
export function byRole(ps: ProcessCost[]): { role: string; processes: number; cpuUs: number; writes: number }[] {
  const out = new Map<string, { role: string; processes: number; cpuUs: number; writes: number }>();
  for (const p of ps) {
    const r = out.get(p.role) ?? { role: p.role, processes: 0, cpuUs: 0, writes: 0 };
    out.set(p.role, { role: p.role, processes: r.processes + 1, cpuUs: r.cpuUs + p.cpuUs, writes: r.writes + p.writes });
  }
  return [...out.values()];
}
