import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isOtherNode } from "./processes.ts";

/** What `<data dir>/instance.json` says about the Fairlane running from that folder. */
export interface Instance {
  pid: number;
  startedAt: string;
  /** Set once the API listens. */
  apiUrl?: string;
  /** The embedded redis-server, when there is one; its URL without the password. */
  redisPid?: number;
  redis?: string;
}

/**
 * One `npm start` per data folder. The instance file is created exclusively
 * (`wx`) before anything else happens, so a second start refuses having changed
 * nothing. A file whose pid is dead, or no longer a node process (pids are
 * reused; a container restart gives pid 1 again), is a crashed run's and is
 * replaced. Two starts racing to replace the same stale file in the same
 * millisecond could both win; the Redis ownership check and the port behind
 * them still keep the second off the first one's data.
 */
export class InstanceLock {
  private released = false;

  private constructor(
    readonly file: string,
    private info: Instance,
  ) {}

  /** Takes `dir` for this process, or throws naming the instance that holds it. */
  static acquire(dir: string): InstanceLock {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, "instance.json");
    const info: Instance = { pid: process.pid, startedAt: new Date().toISOString() };
    // Written aside, then linked into place: link(2) fails if the file exists, and the
    // file never exists half-written (an empty one would look like a crashed run's).
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(info)}\n`, { mode: 0o600 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(tmp, file);
          return new InstanceLock(file, info);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        }
        const raw = readOr(file);
        const other = parse(raw);
        // npm start (workers/all.ts) or the compiled build (node dist/workers/all.js)
        if (other && (isOtherNode(other.pid, "all.ts") || isOtherNode(other.pid, "all.js")))
          throw new Error(
            `Fairlane is already running from this data folder (pid ${other.pid}, ${other.apiUrl ?? "still starting"}); stop it first`,
          );
        if (readOr(file) === raw) rmSync(file, { force: true }); // a crashed run's file
      }
    } finally {
      rmSync(tmp, { force: true });
    }
    throw new Error(`could not take ${file}: another start keeps replacing it`);
  }

  /** Adds what is known now (the API URL once listening, the Redis pid after a restart). */
  update(patch: Partial<Omit<Instance, "pid" | "startedAt">>): void {
    if (this.released) return;
    this.info = { ...this.info, ...patch };
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.info)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  /** Removes the file if it is still this process's; synchronous, for exit handlers. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (parse(readOr(this.file))?.pid === process.pid) rmSync(this.file, { force: true });
  }
}

function readOr(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function parse(raw: string): Instance | undefined {
  try {
    const v = JSON.parse(raw) as Instance;
    return Number.isInteger(v.pid) && v.pid > 0 ? v : undefined;
  } catch {
    return undefined; // unreadable: a crashed run's
  }
}
