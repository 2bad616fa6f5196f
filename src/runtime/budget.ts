import type { Redis } from "ioredis";
import type { AdmissionBudget } from "../../queues/lua/admitWorkflow.ts";
import type { SpendArgs } from "../../queues/lua/permits.ts";
import { recordSpend } from "../../queues/lua/spend.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";

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
 * Orgs (src/tenancy/orgs.ts): a tenant's spend also counts toward its org's month,
 *   `<prefix>:spend:@<org>:<yyyymm>`  the tenant pattern with the tenant `@<org>`, as the org's dispatch
 *   keys are (tp:@<org>, run:@<org>); tenant ids never start with "@".
 * The same script call adds to both (queues/lua/recordSpend-2.lua, and for a tool call its permit's
 * release, releasePermit-8.lua, both through includes/spend.lua: an org's tenants share its cell, so one
 * slot). Only spend recorded while the tenant is in the org counts. An org's `budget.monthlyUsd` (null:
 * unbounded) bounds its tenants together: once its month is spent admission refuses every one of them, and
 * what remains of a tenant's month at run time is min(its own remaining, its org's remaining)
 * (`monthRemainingUsd`). A budget finds a tenant's org in the policy registry it is given.
 *
 * On the tool-call path (`monthSpentUsd`) a process reads a tenant's month total at most once per
 * `maxAgeMs` (one read in flight, shared), and each of its own records updates what it knows at once;
 * another process's spend shows within `maxAgeMs`. The month budget was never exact across
 * concurrent workflows (a month can be overspent by the calls already under way); this keeps that
 * bound small while taking a Redis round trip off every costed call. Admission reads Redis (`admissionBudget`).
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

/** Where a budget finds a tenant's org and the org's policy: the policy registry (src/tenancy/registry.ts). */
export type OrgLookup = Pick<PolicyRegistry, "get" | "org">;

/** A tenant's org as its budget sees it: its month key, and its monthly budget in micro-dollars (null: unbounded). */
interface OrgMonth {
  key: string;
  orgMonthly: number | null;
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
    /** Where tenants' orgs are found (the policy registry); without it no org budget counts. */
    private readonly orgs?: OrgLookup,
  ) {}

  /** The key holding the tenant's spend for the current UTC month. */
  spendKey(tenant: string): string {
    return `${this.prefix}:spend:${tenant}:${monthOf(this.clock.now())}`;
  }

  /** The key holding the org's spend (all its tenants') for the current UTC month. */
  orgSpendKey(org: string): string {
    return this.spendKey(`@${org}`);
  }

  /** The tenant's month spend as this process knows it: Redis's, at most `maxAgeMs` old, plus its own records since. */
  async monthSpentUsd(tenant: string): Promise<number> {
    return (await this.knownMicro(this.spendKey(tenant))) / MICRO_PER_USD;
  }

  /**
   * What remains of the month for the tenant's work, as this process knows it: its `monthlyUsd` less its
   * spend, and for a tenant of an org with a monthly budget no more than the org has left. The runtime's
   * budget decision (budgetFor in src/runtime/context.ts) works from it. May be negative (overspent).
   */
  async monthRemainingUsd(tenant: string, monthlyUsd: number): Promise<number> {
    const org = this.orgMonth(tenant);
    const own = toMicro(monthlyUsd) - (await this.knownMicro(this.spendKey(tenant)));
    if (!org || org.orgMonthly === null) return own / MICRO_PER_USD;
    return Math.min(own, org.orgMonthly - (await this.knownMicro(org.key))) / MICRO_PER_USD;
  }

  /**
   * What admission holds a new workflow to: the tenant's month key and `monthlyUsd`, then its org's when the
   * org has a monthly budget. The admission script reads the keys with the rest of its checks
   * (queues/lua/includes/admit.lua): exact against concurrent spend, and no round trip of its own.
   */
  admissionBudget(tenant: string, monthlyUsd: number): AdmissionBudget {
    const own = this.spendKey(tenant);
    const org = this.orgMonth(tenant);
    return org && org.orgMonthly !== null
      ? { keys: [own, org.key], micro: [toMicro(monthlyUsd), org.orgMonthly] }
      : { keys: [own, own], micro: [toMicro(monthlyUsd), -1] };
  }

  /** Records spend (after a model call, an agent's charge) atomically, to its org's month too; returns the tenant's new month total in USD. */
  async record(tenant: string, usd: number): Promise<number> {
    const s = this.spendOf(tenant, usd);
    const total = await recordSpend(this.redis, s.keys[0], s.keys[1] === s.keys[0] ? null : s.keys[1], s.micro, s.ttlSec);
    return this.spent(s, [total.tenant, total.org ?? total.tenant]);
  }

  /** What a spend writes: its month keys (the tenant's, its org's) and micro-dollars; a tool call's goes with its permit's release. */
  spendOf(tenant: string, usd: number): SpendArgs {
    if (!Number.isFinite(usd) || usd < 0) throw new RangeError(`spend must be a finite, non-negative amount of USD (got ${usd})`);
    const key = this.spendKey(tenant);
    return { keys: [key, this.orgMonth(tenant)?.key ?? key], micro: toMicro(usd), ttlSec: SPEND_TTL_SEC };
  }

  /** A spend's new month totals as its script answered them, learnt by this process; the tenant's in USD. */
  spent(s: SpendArgs, totals: [number, number]): number {
    this.learn(s.keys[0], totals[0]);
    if (s.keys[1] !== s.keys[0]) this.learn(s.keys[1], totals[1]);
    return totals[0] / MICRO_PER_USD;
  }

  private orgMonth(tenant: string): OrgMonth | undefined {
    const registry = this.orgs;
    const entry = registry?.get(tenant);
    const org = entry?.policy.org;
    if (!registry || !entry || !org) return undefined;
    const orgMonthly = registry.org(org)?.policy.budget.monthlyUsd ?? null; // an org gone from the registry: unbounded
    return { key: this.orgSpendKey(org), orgMonthly: orgMonthly === null ? null : toMicro(orgMonthly) };
  }

  /** A month total, from what this process knows when at most `maxAgeMs` old, else one shared read. */
  private async knownMicro(key: string): Promise<number> {
    const k = this.known.get(key);
    if (k && this.clock.now() - k.at <= this.maxAgeMs) return k.micro;
    let read = this.reads.get(key);
    if (!read) {
      read = this.read(key).finally(() => this.reads.delete(key));
      this.reads.set(key, read);
    }
    return read;
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
