import { readFileSync, readlinkSync, realpathSync } from "node:fs";

/**
 * Who a pid is, from /proc (Linux). Used to decide whether a pid written in a
 * file earlier still names the process that wrote it: pids are reused, so a
 * live pid alone proves nothing. Where /proc is missing, the checks fall back
 * to "alive" and callers say so in their comments.
 */

/** The pid exists (a zombie counts: it is gone for every purpose but this one). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // someone else's live process
  }
}

/** Its command line, arguments joined by spaces; undefined when it is gone (or a zombie). */
export function cmdlineOf(pid: number): string | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw ? raw.split("\0").join(" ").trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Its working directory, resolved; undefined when unreadable. */
export function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

export function hasProc(): boolean {
  try {
    readlinkSync("/proc/self/cwd");
    return true;
  } catch {
    return false;
  }
}

/**
 * A live redis-server whose working directory is `dir` (redis-server chdirs to
 * its `--dir`; its command line is rewritten to "redis-server host:port", so
 * the directory is the only trace of which data it serves).
 */
export function isRedisServing(pid: number, dir: string): boolean {
  if (!alive(pid)) return false;
  if (!hasProc()) return true;
  const cmd = cmdlineOf(pid);
  return !!cmd && cmd.includes("redis-server") && cwdOf(pid) === realpathSync(dir);
}

/**
 * A live node process other than this one (a Fairlane that still owns what it wrote);
 * with `running`, only one whose command line mentions it (e.g. "workers/all.ts").
 */
export function isOtherNode(pid: number, running?: string): boolean {
  if (!pid || pid === process.pid || !alive(pid)) return false;
  if (!hasProc()) return true;
  const cmd = cmdlineOf(pid);
  if (!cmd || !/(^|\/)(node|tsx)(\d+)?\s/.test(`${cmd} `)) return false;
  return !running || cmd.includes(running);
}

/** Its parent's pid (1, or a subreaper, once the parent is gone); 0 when unknown. */
export function ppidOf(pid: number): number {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) || 0;
  } catch {
    return 0;
  }
}
