import type { Redis } from "ioredis";

/**
 * What work costs Redis, from Redis's own accounting:
 *   - commandStats: INFO commandstats since the last CONFIG RESETSTAT. Redis 7
 *     counts the commands a script runs as well as the script call itself, so
 *     `commands` is every command executed (script-internal included) and
 *     `scripts` the EVALSHA/EVAL/FCALL calls among them;
 *   - keyspaceBytes: MEMORY USAGE (exact: SAMPLES 0) of every key under a
 *     prefix, grouped by what the key is, so a phase can subtract the keys that
 *     were there before it.
 */
export interface CommandStats {
  /** Every command executed, script-internal ones included (the bench's own INFO/CONFIG/MEMORY/SCAN left out). */
  commands: number;
  /** Script calls (EVALSHA, EVAL, FCALL) among them. */
  scripts: number;
  /** Redis CPU in commands (usec), by command, most first. */
  usec: { cmd: string; calls: number; usec: number }[];
}

const OWN = new Set([
  "info",
  "config|resetstat",
  "config|get",
  "config|set",
  "memory|usage",
  "scan",
  "monitor",
  "ping",
  "client|setname",
  "client|list",
]);
const SCRIPT = new Set(["evalsha", "eval", "fcall", "evalsha_ro", "eval_ro", "fcall_ro"]);

export async function commandStats(admin: Redis): Promise<CommandStats> {
  const info = await admin.info("commandstats");
  const rows = [...info.matchAll(/^cmdstat_([\w|-]+):calls=(\d+),usec=(\d+)/gm)]
    .map((m) => ({ cmd: m[1]!, calls: Number(m[2]), usec: Number(m[3]) }))
    .filter((r) => !OWN.has(r.cmd));
  return {
    commands: rows.reduce((s, r) => s + r.calls, 0),
    scripts: rows.filter((r) => SCRIPT.has(r.cmd)).reduce((s, r) => s + r.calls, 0),
    usec: rows.sort((a, b) => b.usec - a.usec),
  };
}

/** "evalsha 79µs, del 5µs, ...": the top `k` commands by Redis CPU per job. */
export function topCommands(s: CommandStats, jobs: number, k = 4): string {
  return s.usec
    .slice(0, k)
    .map((r) => `${r.cmd} ${(r.usec / jobs).toFixed(0)}µs`)
    .join(", ");
}

export type KeyKind = (key: string) => string;

/** Bytes of every key matching `pattern`, summed by kind (`kind(key)`), and the key count. */
export async function keyspaceBytes(
  admin: Redis,
  pattern: string,
  kind: KeyKind,
): Promise<{ bytes: Record<string, number>; keys: number; total: number }> {
  const bytes: Record<string, number> = {};
  let keys = 0;
  let cursor = "0";
  do {
    const [next, batch] = await admin.scan(cursor, "MATCH", pattern, "COUNT", 2000);
    cursor = next;
    if (!batch.length) continue;
    const p = admin.pipeline();
    for (const k of batch) p.call("MEMORY", "USAGE", k, "SAMPLES", "0");
    const out = (await p.exec()) ?? [];
    batch.forEach((k, i) => {
      const n = Number(out[i]?.[1] ?? 0); // a key that expired between SCAN and MEMORY USAGE: null
      const c = kind(k);
      bytes[c] = (bytes[c] ?? 0) + n;
    });
    keys += batch.length;
  } while (cursor !== "0");
  return { bytes, keys, total: Object.values(bytes).reduce((s, x) => s + x, 0) };
}

/** `after - before` by kind, per `n` workflows (kinds with nothing left out). */
export function bytesPer(before: Record<string, number>, after: Record<string, number>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d !== 0) out[k] = d / n;
  }
  return out;
}

export const sum = (r: Record<string, number>): number => Object.values(r).reduce((s, x) => s + x, 0);
