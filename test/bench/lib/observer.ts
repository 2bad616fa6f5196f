import { Redis } from "ioredis";

/**
 * The benchmark's own record of what ran, written by the workflows themselves
 * (Fairlane's exec workers and the controls-off plain workers alike) into a
 * Redis list of its own: `start` and `end` per run with the wall-clock time.
 * Every latency in the report is the producer's enqueue time to these
 * timestamps; no figure comes from Fairlane's counters.
 */
export interface RunEvent {
  kind: "start" | "end";
  id: string;
  tenant: string;
  cls: string;
  at: number;
  /** end: "ok" or the error's first words. */
  outcome?: string;
}

let client: Redis | undefined;
const redis = () => (client ??= new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null }));

export function recordRun(obs: string, e: RunEvent): Promise<unknown> {
  return redis().rpush(`${obs}:log`, [e.kind, e.id, e.tenant, e.cls, e.at, e.outcome ?? ""].join("|"));
}

/** Runs `fn` between a start and an end record; the end says ok (with `note(result)`) or the error. */
export async function observed<T>(
  obs: string,
  id: string,
  tenant: string,
  cls: string,
  fn: () => Promise<T>,
  note?: (r: T) => string,
): Promise<T> {
  await recordRun(obs, { kind: "start", id, tenant, cls, at: Date.now() });
  let outcome = "ok";
  try {
    const r = await fn();
    if (note) outcome = `ok ${note(r)}`;
    return r;
  } catch (err) {
    outcome = String((err as Error).message ?? err)
      .slice(0, 60)
      .replaceAll("|", "/");
    throw err;
  } finally {
    await recordRun(obs, { kind: "end", id, tenant, cls, at: Date.now(), outcome });
  }
}

export interface RunSummary {
  id: string;
  tenant: string;
  cls: string;
  /** First start, last end (epoch ms). */
  firstStart: number;
  lastEnd?: number;
  starts: number;
  outcome?: string;
}

export async function readRuns(r: Redis, obs: string): Promise<Map<string, RunSummary>> {
  const out = new Map<string, RunSummary>();
  for (const line of await r.lrange(`${obs}:log`, 0, -1)) {
    const [kind, id, tenant, cls, at, outcome] = line.split("|") as [string, string, string, string, string, string];
    let s = out.get(id);
    if (!s) out.set(id, (s = { id, tenant, cls, firstStart: Number(at), starts: 0 }));
    if (kind === "start") {
      s.starts++;
      s.firstStart = Math.min(s.firstStart, Number(at));
    } else {
      s.lastEnd = Math.max(s.lastEnd ?? 0, Number(at));
      s.outcome = outcome;
    }
  }
  return out;
}
