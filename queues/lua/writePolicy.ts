import type { Redis } from "ioredis";
import type { RegistryKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("writePolicy-3.lua");

/** Changes the registry's log keeps (writePolicy-3.lua): a process further behind reads the whole registry. */
export const POLICY_LOG_KEPT = 1000;

export type PolicyKind = "tenant" | "org";

/** Stores a tenant's or org's spec (`json`; null deletes it), bumps the version and logs the change; the new version. */
export async function writePolicy(redis: Redis, reg: RegistryKeys, kind: PolicyKind, name: string, json: string | null): Promise<number> {
  const hash = kind === "tenant" ? reg.tenants : reg.orgs;
  const v = await script.run<number>(
    redis,
    [hash, reg.version, reg.changes],
    [name, json ?? "", kind === "tenant" ? "t" : "o", POLICY_LOG_KEPT],
  );
  return Number(v);
}

/**
 * What changed from version `from` to `to`, from the log's members above `from` ("<version> <t|o> <name>",
 * as ZRANGEBYSCORE gives them): the tenants and orgs to read again, or null when the log does not hold
 * every version in between (trimmed, or a write that logged nothing), so the whole registry must be read.
 * Pure.
 */
export function changesSince(log: string[], from: number, to: number): { tenants: string[]; orgs: string[] } | null {
  if (!(to > from) || log.length < to - from) return null;
  const tenants = new Set<string>();
  const orgs = new Set<string>();
  for (let i = 0; i < to - from; i++) {
    const m = /^(\d+) ([to]) (\S+)$/.exec(log[i]!);
    if (!m || Number(m[1]) !== from + 1 + i) return null;
    (m[2] === "t" ? tenants : orgs).add(m[3]!);
  }
  return { tenants: [...tenants], orgs: [...orgs] };
}
