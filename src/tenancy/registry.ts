import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { invalidRequest } from "../lib/errors.ts";
import { formatIssues, resolvePolicy, type PolicySpec, type TenantPolicy } from "./policy.ts";
import { resolveOrg, type OrgEntry } from "./orgs.ts";

export interface TenantEntry {
  tenant: string;
  spec: PolicySpec;
  policy: TenantPolicy;
}

/**
 * Tenant policies, kept in Redis as the single truth and cached in memory.
 *
 * Every write bumps a version counter in the same MULTI. Each process polls that
 * counter (one GET per `pollMs`, default 250 ms) and reloads the whole hash when
 * it moved, so a live change reaches every process well within one second with
 * no extra connection and no lost pub/sub message; only the specs that changed
 * are resolved again (load).
 */
export class PolicyRegistry {
  private entries = new Map<string, TenantEntry>();
  private orgEntries = new Map<string, OrgEntry>();
  /** The stored JSON each entry was resolved from (load reuses an entry whose JSON is unchanged). */
  private json = new Map<string, string>();
  private orgJson = new Map<string, string>();
  private version = "";
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  /** Where put/seed write and then re-read: the api's fail-fast connection once it has one (setWriter). */
  private writer: Redis;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly pollMs = 250,
  ) {
    this.writer = redis;
  }

  /**
   * Writes (an admin's PUT, pause, seed) and the reload that follows them go through `redis`: the api
   * role passes its fail-fast request connection, so a write during a Redis outage answers 503 at
   * once instead of waiting for Redis. Polling keeps the connection given to the constructor.
   */
  setWriter(redis: Redis | undefined): void {
    this.writer = redis ?? this.redis;
  }

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.poll().catch(() => undefined), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Changes whenever any policy changes (a Redis counter). */
  get currentVersion(): string {
    return this.version;
  }

  get(tenant: string): TenantEntry | undefined {
    return this.entries.get(tenant);
  }

  /** The tenant's entry, reloading once when this process has not seen it yet (created since the last poll). */
  async fresh(tenant: string): Promise<TenantEntry | undefined> {
    const e = this.entries.get(tenant);
    if (e) return e;
    await this.reload();
    return this.entries.get(tenant);
  }

  list(): TenantEntry[] {
    return [...this.entries.values()].sort((a, b) => a.tenant.localeCompare(b.tenant));
  }

  org(name: string): OrgEntry | undefined {
    return this.orgEntries.get(name);
  }

  orgs(): OrgEntry[] {
    return [...this.orgEntries.values()].sort((a, b) => a.org.localeCompare(b.org));
  }

  /** The tenants of an org, by name. */
  tenantsOf(org: string): TenantEntry[] {
    return this.list().filter((e) => e.policy.org === org);
  }

  /**
   * Validates and stores a spec; returns the resolved entry. Throws INVALID_REQUEST naming the field:
   * an org that does not exist, or whose tenants live in another cell (an org's caps are enforced in
   * the scripts of one cell), is refused like any invalid field.
   */
  async put(tenant: string, input: unknown): Promise<TenantEntry> {
    const r = resolvePolicy(input);
    if (!r.ok) throw invalidRequest(`invalid policy for tenant "${tenant}": ${formatIssues(r.issues)}`, r.issues);
    const org = r.policy.org;
    if (org !== null) {
      if (!this.orgEntries.has(org)) throw invalidRequest(`no org "${org}": create it first`, [{ field: "org", message: "unknown org" }]);
      const other = this.tenantsOf(org).find((e) => e.tenant !== tenant && e.policy.cell !== r.policy.cell);
      if (other)
        throw invalidRequest(
          `org "${org}" has its tenants in cell ${other.policy.cell} (${other.tenant}): an org's tenants share one cell`,
          [{ field: "cell", message: `must be ${other.policy.cell}, the cell of org ${org}` }],
        );
    }
    await this.write(this.keys.registry.tenants, tenant, JSON.stringify(r.spec));
    return { tenant, spec: r.spec, policy: r.policy };
  }

  /** Validates and stores an org's policy (PUT /v1/admin/orgs/:org). */
  async putOrg(org: string, input: unknown): Promise<OrgEntry> {
    const r = resolveOrg(input);
    if (!r.ok) throw invalidRequest(`invalid policy for org "${org}": ${formatIssues(r.issues)}`, r.issues);
    await this.write(this.keys.registry.orgs, org, JSON.stringify(input));
    return { org, policy: r.policy };
  }

  /** Deletes an org no tenant belongs to; false when it has tenants (or does not exist). */
  async deleteOrg(org: string): Promise<boolean> {
    if (!this.orgEntries.has(org) || this.tenantsOf(org).length) return false;
    await this.writer.multi().hdel(this.keys.registry.orgs, org).incr(this.keys.registry.version).exec();
    await this.load(this.writer);
    return true;
  }

  private async write(hash: string, field: string, json: string): Promise<void> {
    const [failed] = ((await this.writer.multi().hset(hash, field, json).incr(this.keys.registry.version).exec()) ?? []).filter(
      ([err]) => err,
    );
    if (failed) throw failed[0];
    await this.load(this.writer);
  }

  /** Creates the tenants in `specs` that Redis does not have yet (or all of them with `replace`). */
  async seed(specs: Map<string, PolicySpec>, replace: boolean): Promise<string[]> {
    const written: string[] = [];
    for (const [tenant, spec] of specs) {
      const json = JSON.stringify(spec);
      const done = replace
        ? (await this.writer.hset(this.keys.registry.tenants, tenant, json), 1)
        : await this.writer.hsetnx(this.keys.registry.tenants, tenant, json);
      if (done) written.push(tenant);
    }
    if (written.length) await this.writer.incr(this.keys.registry.version);
    await this.load(this.writer);
    return written;
  }

  private async poll(): Promise<void> {
    const v = (await this.redis.get(this.keys.registry.version)) ?? "0";
    if (v !== this.version) await this.reload();
  }

  private async reload(): Promise<void> {
    this.reloading ??= this.load().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  /**
   * Re-reads both hashes and resolves only the specs whose stored JSON changed since the last load: the
   * others keep their entry (the same object). Resolving is the costly part (schema checks, ~17 µs a
   * spec), so one tenant's change at 10,000 tenants costs each process milliseconds, not a stall of
   * every process's event loop (and with it the dispatch of Class A) for all of them.
   */
  private async load(redis: Redis = this.redis): Promise<void> {
    const [[, v], [, all], [, orgs]] = (await redis
      .multi()
      .get(this.keys.registry.version)
      .hgetall(this.keys.registry.tenants)
      .hgetall(this.keys.registry.orgs)
      .exec()) as [[null, string | null], [null, Record<string, string>], [null, Record<string, string>]];
    const nextOrgs = new Map<string, OrgEntry>();
    const nextOrgJson = new Map<string, string>();
    for (const [org, json] of Object.entries(orgs)) {
      const kept = this.orgJson.get(org) === json ? this.orgEntries.get(org) : undefined;
      const r = kept ? undefined : resolveOrg(JSON.parse(json));
      const entry = kept ?? (r?.ok ? { org, policy: r.policy } : undefined);
      if (!entry) continue;
      nextOrgs.set(org, entry);
      nextOrgJson.set(org, json);
    }
    const next = new Map<string, TenantEntry>();
    const nextJson = new Map<string, string>();
    for (const [tenant, json] of Object.entries(all)) {
      // A spec that no longer resolves (a tier default changed under it) keeps the tenant out
      // rather than running it with a half-valid policy; the admin API shows why.
      const kept = this.json.get(tenant) === json ? this.entries.get(tenant) : undefined;
      const r = kept ? undefined : resolvePolicy(JSON.parse(json));
      const entry = kept ?? (r?.ok ? { tenant, spec: r.spec, policy: r.policy } : undefined);
      if (!entry) continue;
      next.set(tenant, entry);
      nextJson.set(tenant, json);
    }
    this.orgEntries = nextOrgs;
    this.orgJson = nextOrgJson;
    this.entries = next;
    this.json = nextJson;
    this.version = v ?? "0";
  }
}
