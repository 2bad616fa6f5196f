import type { Tier } from "../tenancy/policy.ts";
import type { TenantEntry } from "../tenancy/registry.ts";

/**
 * The `tenant` label value of a metric series, bounded so that 10,000 tenants
 * do not mean 10,000 × (outcomes × buckets) series in every process.
 *
 * At most `max` tenants (FAIRLANE_METRICS_MAX_TENANTS, default 100) get their
 * own label value. Which ones is decided from the policy registry, the same in
 * every process: first the pinned tenants (FAIRLANE_METRICS_TENANTS, in the
 * order given), then by tier (enterprise, professional, free), weight
 * (highest first) and id. Every other tenant is counted under
 * `_other_<tier>` (three more values at most), so a series count never
 * exceeds (max + 3) × the per-tenant series of a metric. Tenant ids cannot
 * start with `_` (queues/names.ts TENANT_ID), so no tenant collides with them.
 *
 * Without a registry (a process that never opened a platform, or a test) the
 * first `max` tenants seen get their own label: still bounded, but then the
 * choice is per process. When the registry changes the chosen set, metrics.ts
 * removes the series of tenants that lost their own label (`onDemoted`), so
 * the bound holds in a long-running process too.
 */
export interface TenantSource {
  readonly currentVersion: string;
  list(): TenantEntry[];
}

const TIER_RANK: Record<Tier, number> = { enterprise: 0, professional: 1, free: 2 };

export class TenantLabels {
  private own = new Set<string>();
  private tiers = new Map<string, Tier>();
  private version: string | undefined;
  private source: TenantSource | undefined;
  private readonly demotedListeners: ((tenants: string[]) => void)[] = [];

  constructor(
    private max = 100,
    private pinned: string[] = [],
  ) {}

  /** The cap and the pinned tenants (FAIRLANE_METRICS_MAX_TENANTS, FAIRLANE_METRICS_TENANTS). */
  configure(max: number, pinned: string[] = []): void {
    this.max = max;
    this.pinned = pinned;
    this.version = undefined;
    if (!this.source) this.replace(new Set([...this.own].slice(0, max)));
  }

  /** Chooses labelled tenants from this registry from now on (every role's platform binds its own). */
  bind(source: TenantSource): void {
    this.source = source;
    this.version = undefined;
  }

  onDemoted(fn: (tenants: string[]) => void): void {
    this.demotedListeners.push(fn);
  }

  /** How many tenants have their own label value now. */
  get labelled(): number {
    this.refresh();
    return this.own.size;
  }

  get cap(): number {
    return this.max;
  }

  /** The label value for `tenant`; `tier` (when the caller knows it) names its aggregate. */
  label(tenant: string, tier?: Tier): string {
    this.refresh();
    if (this.own.has(tenant)) return tenant;
    if (!this.source && this.own.size < this.max) {
      this.own.add(tenant);
      return tenant;
    }
    const t = tier ?? this.tiers.get(tenant);
    return t ? `_other_${t}` : "_other";
  }

  private refresh(): void {
    const source = this.source;
    if (!source || source.currentVersion === this.version) return;
    this.version = source.currentVersion;
    const entries = source.list();
    this.tiers = new Map(entries.map((e) => [e.tenant, e.policy.tier]));
    const chosen = new Set<string>();
    for (const t of this.pinned) if (chosen.size < this.max && this.tiers.has(t)) chosen.add(t);
    const ranked = entries
      .filter((e) => !chosen.has(e.tenant))
      .sort(
        (a, b) =>
          TIER_RANK[a.policy.tier] - TIER_RANK[b.policy.tier] ||
          b.policy.weight - a.policy.weight ||
          (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0),
      );
    for (const e of ranked) {
      if (chosen.size >= this.max) break;
      chosen.add(e.tenant);
    }
    this.replace(chosen);
  }

  private replace(next: Set<string>): void {
    const demoted = [...this.own].filter((t) => !next.has(t));
    this.own = next;
    if (demoted.length) for (const fn of this.demotedListeners) fn(demoted);
  }
}

/** The process's labeller: metrics.ts and every recording site use it. */
export const tenantLabels = new TenantLabels();

/** Shorthand: the bounded `tenant` label value. */
export function tenantLabel(tenant: string, tier?: Tier): string {
  return tenantLabels.label(tenant, tier);
}
