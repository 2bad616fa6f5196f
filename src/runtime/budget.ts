import type { Redis } from "ioredis";
import { recordSpend } from "../../queues/lua/spend.ts";

/**
 * Cost budgets (`policy.budget: { perWorkflowUsd, monthlyUsd }`) and tool
 * permissions (`allowedTools`, `deniedTools`).
 *
 * Month spend lives in Redis, per tenant per calendar month (UTC), as integer
 * micro-dollars (INCRBY, so concurrent recorders never lose an update):
 *   `<prefix>:spend:<tenant>:<yyyymm>`  STRING, TTL 40 days set at the month's first
 *   spend (EXPIRE NX, Redis ≥ 7): a month is at most 31 days, so a key outlives its
 *   month by at least 9 days and never needs cleaning up.
 * A workflow's own spend is the caller's (in memory, for the run).
 *
 * On the tool-call path (`monthSpentUsd`) a process reads a tenant's month total at most once per
 * `maxAgeMs` (one read in flight, shared), and each of its own records updates what it knows at once;
 * another process's spend shows within `maxAgeMs`. The month budget was never exact across
 * concurrent workflows (a month can be overspent by the calls already under way); this keeps that
 * bound small while taking a Redis round trip off every costed call. Admission (`canAdmit`) reads Redis.
 *
 * stepBudgetDecision, with remaining = max(0, min(perWorkflowUsd − spent, monthRemainingUsd)):
 *   estimate > remaining        → "refuse"  (the step would exceed a budget)
 *   estimate > 0.8 × remaining  → "degrade" (cheaper model tier / skip optional steps)
 *   otherwise                   → "ok"      (a free step is always ok)
 * Amounts are compared in whole micro-dollars so 0.1 + 0.2 style float noise
 * never flips a decision.
 *
 * toolAllowed: deniedTools always wins; allowedTools null allows every other tool.
 */

export const MICRO_PER_USD = 1_000_000;
export const SPEND_TTL_SEC = 40 * 24 * 3600;
/** Above this share of what remains, a step should degrade. */
export const DEGRADE_SHARE = 0.8;

const toMicro = (usd: number) => Math.round(usd * MICRO_PER_USD);

/** `yyyymm` of an epoch-ms instant, in UTC. */
export function monthOf(epochMs: number): string {
  const d = new Date(epochMs);
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

export class TenantBudget {
  /** Per month key: the highest month total this process has seen (spend only grows) and when. */
  private readonly known = new Map<string, { micro: number; at: number }>();
  private readonly reads = new Map<string, Promise<number>>();

  constructor(
    private readonly redis: Redis,
    /** e.g. the tenant's cell's own prefix `<root>:{<root>.<cell>}:fl`; the caller builds it (queues/keys.ts owns key names). */
    private readonly prefix: string,
    private readonly clock: { now(): number },
    private readonly maxAgeMs = 250,
  ) {}

  /** The key holding the tenant's spend for the current UTC month. */
  spendKey(tenant: string): string {
    return `${this.prefix}:spend:${tenant}:${monthOf(this.clock.now())}`;
  }

  /** The month's spend as this process knows it: Redis's, at most `maxAgeMs` old, plus its own records since. */
  async monthSpentUsd(tenant: string): Promise<number> {
    const key = this.spendKey(tenant);
    const k = this.known.get(key);
    if (k && this.clock.now() - k.at <= this.maxAgeMs) return k.micro / MICRO_PER_USD;
    let read = this.reads.get(key);
    if (!read) {
      read = this.read(key).finally(() => this.reads.delete(key));
      this.reads.set(key, read);
    }
    return (await read) / MICRO_PER_USD;
  }

  /** Admission check: true when the tenant's month spend in Redis is below monthlyUsd. */
  async canAdmit(tenant: string, monthlyUsd: number): Promise<boolean> {
    return (await this.read(this.spendKey(tenant))) < toMicro(monthlyUsd);
  }

  /** Records spend (after a tool/model call) atomically; returns the new month total in USD. */
  async record(tenant: string, usd: number): Promise<number> {
    if (!Number.isFinite(usd) || usd < 0) throw new RangeError(`spend must be a finite, non-negative amount of USD (got ${usd})`);
    const key = this.spendKey(tenant);
    const total = await recordSpend(this.redis, key, toMicro(usd), SPEND_TTL_SEC);
    this.learn(key, total);
    return total / MICRO_PER_USD;
  }

  private async read(key: string): Promise<number> {
    const v = await this.redis.get(key);
    return this.learn(key, v === null ? 0 : Number(v));
  }

  private learn(key: string, micro: number): number {
    const k = this.known.get(key);
    const best = Math.max(micro, k?.micro ?? 0);
    this.known.set(key, { micro: best, at: this.clock.now() });
    if (this.known.size > 10_000) this.known.delete(this.known.keys().next().value!); // bounded: oldest first
    return best;
  }
}

/** Pure: before a step, given the workflow's spend so far, the step's estimate and the budgets, decide "ok" | "degrade" | "refuse". */
export function stepBudgetDecision(
  spentUsd: number,
  estimateUsd: number,
  perWorkflowUsd: number,
  monthRemainingUsd: number,
): "ok" | "degrade" | "refuse" {
  for (const [name, v] of [
    ["spentUsd", spentUsd],
    ["estimateUsd", estimateUsd],
    ["perWorkflowUsd", perWorkflowUsd],
  ] as const)
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite, non-negative amount of USD (got ${v})`);
  if (Number.isNaN(monthRemainingUsd)) throw new RangeError("monthRemainingUsd must be a number (got NaN)");
  const estimate = toMicro(estimateUsd);
  // A month overspent by concurrent workflows leaves a negative remainder: nothing remains.
  const remaining = Math.max(0, Math.min(toMicro(perWorkflowUsd) - toMicro(spentUsd), toMicro(monthRemainingUsd)));
  if (estimate > remaining) return "refuse";
  if (estimate > DEGRADE_SHARE * remaining) return "degrade";
  return "ok";
}

/** Pure: tool allowed by policy? deniedTools always wins; allowedTools null = all allowed. */
export function toolAllowed(tool: string, allowedTools: string[] | null, deniedTools: string[]): boolean {
  if (deniedTools.includes(tool)) return false;
  return allowedTools === null || allowedTools.includes(tool);
}
