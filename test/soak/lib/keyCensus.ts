/**
 * Counts a deployment's Redis keys by kind (SCAN over `<prefix>:*`, PTTL of
 * each), the kinds being the roles queues/keys.ts gives them. Per-workflow
 * kinds (a record, its steps, an idempotency key, a BullMQ job) grow with the
 * load; once the queues drain, each one left must carry a TTL. Everything else
 * is bounded by tenants × classes × pools and must not grow without one.
 */
import type { Redis } from "ioredis";

export type KeyKind =
  | "workflow record"
  | "workflow steps"
  | "idempotency key"
  | "usage event bucket"
  | "usage rollup"
  | "spend"
  | "rate limit"
  | "tool gate"
  | "health signal"
  | "cell state"
  | "registry"
  | "ingress job"
  | "ingress queue"
  | "exec job"
  | "exec queue"
  | "parked job"
  | "parked queue"
  | "other";

/** Kinds with one key (or a few) per workflow: growth here is growth with the load. */
export const PER_WORKFLOW: ReadonlySet<KeyKind> = new Set([
  "workflow record",
  "workflow steps",
  "idempotency key",
  "ingress job",
  "exec job",
  "parked job",
]);

const WF = /wf_[A-Za-z0-9_-]{20}/g;

/** The kind of one key of the deployment `prefix`, and its pattern (ids, times and hashes as placeholders). */
export function classify(key: string, prefix: string, tenants: readonly string[] = []): { kind: KeyKind; pattern: string } {
  let pattern = key
    .slice(prefix.length + 1)
    .replace(WF, "<wf>")
    .replace(/\b\d{13}\b/g, "<ms>")
    .replace(/\b[0-9a-f]{64}\b/g, "<sha>");
  for (const t of tenants)
    pattern = pattern
      .replaceAll(`:${t}:`, ":<t>:")
      .replace(new RegExp(`:${t}$`), ":<t>")
      .replaceAll(`.${t}.`, ".<t>.");
  const kind = kindOf(key, prefix);
  return { kind, pattern };
}

function kindOf(key: string, prefix: string): KeyKind {
  if (key.startsWith(`${prefix}:{${prefix}.reg}:`)) return "registry";
  const m = new RegExp(`^${prefix.replace(/[.]/g, "\\.")}:\\{[^}]+\\}:(.*)$`).exec(key);
  if (!m) return "other";
  const rest = m[1]!;
  if (rest.startsWith("fl:")) {
    const own = rest.slice(3);
    if (/^wf:[^:]+:steps$/.test(own)) return "workflow steps";
    if (/^wf:[^:]+$/.test(own)) return "workflow record";
    const head = own.split(":")[0]!;
    const byHead: Record<string, KeyKind> = {
      idem: "idempotency key",
      ev: "usage event bucket",
      usage: "usage rollup",
      spend: "spend",
      rl: "rate limit",
      gate: "tool gate",
      health: "health signal",
    };
    return byHead[head] ?? "cell state";
  }
  const q = /^(ingress\.[^:]+|exec\.[^:]+|parked):(.*)$/.exec(rest);
  if (!q) return "other";
  const family = q[1]!.startsWith("ingress.") ? "ingress" : q[1]!.startsWith("exec.") ? "exec" : "parked";
  return `${family} ${/^wf_/.test(q[2]!) ? "job" : "queue"}` as KeyKind;
}

export interface KindCount {
  kind: KeyKind;
  total: number;
  /** Keys without a TTL (PTTL -1). */
  noTtl: number;
}

export interface Census {
  at: number;
  total: number;
  byKind: Partial<Record<KeyKind, KindCount>>;
  /** Pattern -> count of keys without a TTL. */
  noTtlByPattern: Record<string, number>;
  /** Every key without a TTL (a leak is one of these that was not there before). */
  noTtlKeys: Set<string>;
}

/** Every key of the deployment, counted by kind and TTL. */
export async function census(redis: Redis, prefix: string, tenants: readonly string[]): Promise<Census> {
  const out: Census = { at: Date.now(), total: 0, byKind: {}, noTtlByPattern: {}, noTtlKeys: new Set() };
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (!keys.length) continue;
    const p = redis.pipeline();
    for (const k of keys) p.pttl(k);
    const ttls = (await p.exec())!.map(([, v]) => Number(v));
    keys.forEach((k, i) => {
      const ttl = ttls[i]!;
      if (ttl === -2) return; // expired between SCAN and PTTL
      const { kind, pattern } = classify(k, prefix, tenants);
      const c = (out.byKind[kind] ??= { kind, total: 0, noTtl: 0 });
      c.total++;
      out.total++;
      if (ttl === -1) {
        c.noTtl++;
        out.noTtlKeys.add(k);
        out.noTtlByPattern[pattern] = (out.noTtlByPattern[pattern] ?? 0) + 1;
      }
    });
  } while (cursor !== "0");
  return out;
}

export interface Leak {
  kind: KeyKind;
  pattern: string;
  count: number;
  examples: string[];
}

/**
 * Keys without a TTL present after that were not before, grouped by pattern.
 * A per-workflow kind among them is a leak (it grows with the load); other
 * kinds are listed as `grown` — state that appeared, bounded by the tenants.
 */
export function diff(before: Census, after: Census, prefix: string, tenants: readonly string[]): { leaks: Leak[]; grown: Leak[] } {
  const groups = new Map<string, Leak>();
  for (const k of after.noTtlKeys) {
    if (before.noTtlKeys.has(k)) continue;
    const { kind, pattern } = classify(k, prefix, tenants);
    const g = groups.get(pattern) ?? { kind, pattern, count: 0, examples: [] };
    g.count++;
    if (g.examples.length < 3) g.examples.push(k);
    groups.set(pattern, g);
  }
  const all = [...groups.values()].sort((a, b) => b.count - a.count);
  return { leaks: all.filter((g) => PER_WORKFLOW.has(g.kind)), grown: all.filter((g) => !PER_WORKFLOW.has(g.kind)) };
}

export const serializeCensus = (c: Census) => ({ at: c.at, total: c.total, byKind: c.byKind, noTtlByPattern: c.noTtlByPattern });
