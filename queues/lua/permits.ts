import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { BUCKET_TTL_SEC, bucketStart } from "../usageEvents.ts";
import { LuaScript } from "./script.ts";

/**
 * Typed wrappers of the tool gate's two scripts. Each is one round trip; a
 * release publishes on the cell's gate channel only when it lets a waiter in,
 * and then the ids of the waiters that may go (space-separated).
 */
const acquire = new LuaScript("acquirePermit-10.lua");
const release = new LuaScript("releasePermit-8.lua");

export interface GateLimits {
  mctc: number;
  mctcBatch: number;
  depth: number;
  /** The tenant's org and its mctc, when the org bounds its tenants' tool calls together. */
  org?: { name: string; mctc: number };
}

/** The org holders key and mctc the scripts take (the tenant's own holders and 0 when no org bounds it). */
function orgGate(cell: CellKeys, g: { held: string }, limits: Pick<GateLimits, "org">): [string, number] {
  return limits.org ? [cell.gate(`@${limits.org.name}`).held, limits.org.mctc] : [g.held, 0];
}

export type AcquireOutcome =
  | { kind: "acquired" }
  | { kind: "queued" | "waiting"; position: number }
  | { kind: "full"; queued: number }
  | { kind: "unhealthy"; state: "degraded" | "down" };

export async function acquirePermit(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
  a: {
    id: string;
    batch: boolean;
    now: number;
    leaseUntil: number;
    waitUntil: number;
    limits: GateLimits;
    waitStartedAt?: number;
    /** The dependency the call goes to: none is granted while it is marked degraded or down (gateRefuses). */
    dependency?: string;
  },
): Promise<AcquireOutcome> {
  const g = cell.gate(tenant);
  const [orgHeld, orgMctc] = orgGate(cell, g, a.limits);
  const health = a.dependency ? [cell.healthOverride(a.dependency), cell.health(a.dependency)] : [g.held, g.held];
  const [kind, n] = await acquire.run<[string, (number | string)?]>(
    redis,
    [g.held, g.heldC, g.wait, g.waitC, g.waitExp, g.seq, cell.usageEvents(bucketStart(a.now)), orgHeld, ...health],
    [
      a.id,
      a.batch ? 1 : 0,
      a.now,
      a.leaseUntil,
      a.waitUntil,
      a.limits.mctc,
      a.limits.mctcBatch,
      a.limits.depth,
      a.waitStartedAt ?? a.now,
      tenant,
      BUCKET_TTL_SEC,
      cell.gateChannel,
      orgMctc,
      a.dependency ? 1 : 0,
    ],
  );
  if (kind === "acquired") return { kind };
  if (kind === "unhealthy") return { kind, state: n as "degraded" | "down" };
  if (kind === "full") return { kind, queued: Number(n) };
  return { kind: kind as "queued" | "waiting", position: Number(n) };
}

/** Counts a THROTTLED that the caller decided (its wait timed out) in the usage-event bucket. */
export async function recordGateThrottle(redis: Redis, cell: CellKeys, tenant: string, now: number): Promise<void> {
  const key = cell.usageEvents(bucketStart(now));
  await redis.multi().hincrby(key, `${tenant}|thr`, 1).expire(key, BUCKET_TTL_SEC).exec();
}

/** A spend's month keys (the tenant's, then its org's or the tenant's again), micro-dollars and a new key's TTL. */
export interface SpendArgs {
  keys: [string, string];
  micro: number;
  ttlSec: number;
}

type ReleaseArgs = { id: string; batch: boolean; now: number; limits: Pick<GateLimits, "mctc" | "mctcBatch" | "org"> };

/**
 * Gives a permit back, or abandons a wait; true when a held permit was released.
 * `limits` decide whom the freed permit lets in (the waiters are the same tenant's).
 */
export async function releasePermit(redis: Redis, cell: CellKeys, tenant: string, r: ReleaseArgs): Promise<boolean> {
  return (await releaseCall(redis, cell, tenant, r, undefined))[0] === 1;
}

/**
 * A tool call's permit given back with its cost added to the month totals, in one round trip (the spend is
 * added whether or not the permit was still held); the tenant's and its org's new totals in micro-dollars.
 */
export async function releaseSpending(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
  r: ReleaseArgs,
  spend: SpendArgs,
): Promise<{ released: boolean; totals: [number, number] }> {
  const [released, own, org] = await releaseCall(redis, cell, tenant, r, spend);
  return { released: released === 1, totals: [Number(own), Number(org)] };
}

function releaseCall(redis: Redis, cell: CellKeys, tenant: string, r: ReleaseArgs, spend: SpendArgs | undefined): Promise<number[]> {
  const g = cell.gate(tenant);
  const [orgHeld, orgMctc] = orgGate(cell, g, r.limits);
  return release.run<number[]>(
    redis,
    [g.held, g.heldC, g.wait, g.waitC, g.waitExp, orgHeld, ...(spend ? spend.keys : [g.held, g.held])],
    [r.id, r.batch ? 1 : 0, r.now, r.limits.mctc, r.limits.mctcBatch, cell.gateChannel, orgMctc, spend?.micro ?? 0, spend?.ttlSec ?? 0],
  );
}

/** The waiter ids a gate-channel message names (each process wakes its own). */
export function wokenIds(message: string): string[] {
  return message.split(" ");
}

/** Extends the leases of permits this process holds (ZADD XX: a lapsed one is not revived). */
export async function renewPermits(
  redis: Redis,
  cell: CellKeys,
  held: { tenant: string; id: string; batch: boolean; limits?: Pick<GateLimits, "org"> }[],
  leaseUntil: number,
): Promise<void> {
  if (!held.length) return;
  const pipeline = redis.pipeline();
  for (const h of held) {
    const g = cell.gate(h.tenant);
    pipeline.zadd(g.held, "XX", leaseUntil, h.id);
    if (h.batch) pipeline.zadd(g.heldC, "XX", leaseUntil, h.id);
    if (h.limits?.org) pipeline.zadd(cell.gate(`@${h.limits.org.name}`).held, "XX", leaseUntil, h.id);
  }
  await pipeline.exec();
}
