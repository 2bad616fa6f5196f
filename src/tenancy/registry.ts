import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { changesSince, writePolicy, type PolicyKind } from "../../queues/lua/writePolicy.ts";
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
 * Every write bumps a version counter and logs which tenant or org it wrote, in
 * the same script (queues/lua/writePolicy-3.lua). Each process polls that
 * counter (one GET per `pollMs`, default 250 ms) and, when it moved, reads again
 * the tenants and orgs the log names since its own version (the whole registry
 * when the log does not cover the gap), so a live change reaches every process
 * well within one second with no extra connection and no lost pub/sub message,
 * at a cost that does not grow with the number of tenants (catchUp, loadOnce).
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
  /** Loads and catch-ups under way (a write applies its own change only when none is: one could undo it). */
  private loading = 0;
  private cellsAt: { version: string; cells: readonly string[] } | undefined;
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

  /**
   * The cells the policies name, sorted: computed once per version, since a run list or a workflow
   * not found in its tenant's cell asks on every request (sorting 10,000 tenants each time was ~5 ms).
   */
  cells(): readonly string[] {
    if (this.cellsAt?.version !== this.version) {
      const named = new Set<string>();
      for (const e of this.entries.values()) named.add(e.policy.cell);
      this.cellsAt = { version: this.version, cells: [...named].sort() };
    }
    return this.cellsAt.cells;
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
    const entry = { tenant, spec: r.spec, policy: r.policy };
    const json = JSON.stringify(r.spec);
    await this.write("tenant", tenant, json, () => this.adopt(tenant, json, entry));
    return entry;
  }

  /** Validates and stores an org's policy (PUT /v1/admin/orgs/:org). */
  async putOrg(org: string, input: unknown): Promise<OrgEntry> {
    const r = resolveOrg(input);
    if (!r.ok) throw invalidRequest(`invalid policy for org "${org}": ${formatIssues(r.issues)}`, r.issues);
    const entry = { org, policy: r.policy };
    const json = JSON.stringify(input);
    await this.write("org", org, json, () => this.adoptOrg(org, json, entry));
    return entry;
  }

  /** Deletes an org no tenant belongs to; false when it has tenants (or does not exist). */
  async deleteOrg(org: string): Promise<boolean> {
    if (!this.orgEntries.has(org) || this.tenantsOf(org).length) return false;
    await this.write("org", org, null, () => this.adoptOrg(org, null, undefined));
    return true;
  }

  /**
   * Stores one spec (null: deletes it), bumps the version and logs the change (writePolicy-3.lua). When
   * the version it bumped is the one this process last loaded (no other write since, no load under way),
   * `apply` puts the entry in place; otherwise the changes since are read, so the caller reads its own
   * write either way. At 10,000 tenants the whole registry is a 1.3 MB read (27-44 ms).
   */
  private async write(kind: PolicyKind, name: string, json: string | null, apply: () => void): Promise<void> {
    const version = await writePolicy(this.writer, this.keys.registry, kind, name, json);
    if (this.loading === 0 && String(version - 1) === this.version) {
      apply();
      this.version = String(version);
      return;
    }
    await this.catchUp(this.writer);
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
    if (this.loading) return; // the next tick looks again
    const v = (await this.redis.get(this.keys.registry.version)) ?? "0";
    if (v !== this.version) await this.catchUp(this.redis);
  }

  /**
   * From this process's version to the current one: only the tenants and orgs the change log names are
   * read again (one round trip, whatever the registry's size), or the whole registry when the log does
   * not cover the gap (this process is new or far behind, or a write logged nothing: a seed).
   */
  private async catchUp(redis: Redis): Promise<void> {
    // A load under way may have read before the write this one must see: read again, all of it.
    if (this.loading || this.version === "") return this.load(redis);
    this.loading++;
    try {
      const from = Number(this.version);
      const [[, v], [, log]] = (await redis
        .multi()
        .get(this.keys.registry.version)
        .zrangebyscore(this.keys.registry.changes, `(${from}`, "+inf")
        .exec()) as [[null, string | null], [null, string[]]];
      const changed = changesSince(log, from, Number(v ?? "0"));
      if (!changed) {
        await this.loadOnce(redis);
        return;
      }
      const read = redis.multi();
      if (changed.tenants.length) read.hmget(this.keys.registry.tenants, ...changed.tenants);
      if (changed.orgs.length) read.hmget(this.keys.registry.orgs, ...changed.orgs);
      const replies = ((await read.exec()) ?? []).map(([err, r]) => {
        if (err) throw err;
        return r as (string | null)[];
      });
      const tenantJson = changed.tenants.length ? replies.shift()! : [];
      const orgJson = changed.orgs.length ? replies.shift()! : [];
      changed.orgs.forEach((org, i) => this.adoptOrg(org, orgJson[i] ?? null, this.orgFrom(org, orgJson[i] ?? null)));
      changed.tenants.forEach((t, i) => this.adopt(t, tenantJson[i] ?? null, this.tenantFrom(t, tenantJson[i] ?? null)));
      this.version = v ?? "0";
    } finally {
      this.loading--;
    }
  }

  private async reload(): Promise<void> {
    this.reloading ??= this.load().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  /** loadOnce, counted while under way (write). */
  private async load(redis: Redis = this.redis): Promise<void> {
    this.loading++;
    try {
      await this.loadOnce(redis);
    } finally {
      this.loading--;
    }
  }

  /**
   * Re-reads both hashes and resolves only the specs whose stored JSON changed since the last load: the
   * others keep their entry (the same object). Resolving is the costly part (schema checks, ~17 µs a
   * spec), so even a whole read at 10,000 tenants costs each process tens of milliseconds, not a stall
   * of every process's event loop (and with it the dispatch of Class A) for all of them.
   */
  private async loadOnce(redis: Redis): Promise<void> {
    const [[, v], [, all], [, orgs]] = (await redis
      .multi()
      .get(this.keys.registry.version)
      .hgetall(this.keys.registry.tenants)
      .hgetall(this.keys.registry.orgs)
      .exec()) as [[null, string | null], [null, Record<string, string>], [null, Record<string, string>]];
    const nextOrgs = new Map<string, OrgEntry>();
    const nextOrgJson = new Map<string, string>();
    for (const [org, json] of Object.entries(orgs)) {
      const entry = this.orgFrom(org, json);
      if (!entry) continue;
      nextOrgs.set(org, entry);
      nextOrgJson.set(org, json);
    }
    const next = new Map<string, TenantEntry>();
    const nextJson = new Map<string, string>();
    for (const [tenant, json] of Object.entries(all)) {
      const entry = this.tenantFrom(tenant, json);
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

  /**
   * The entry of a tenant stored as `json`: the one it has when its JSON is unchanged, else resolved.
   * Undefined when it is not stored, or its spec no longer resolves (a tier default changed under it):
   * that keeps the tenant out rather than running it with a half-valid policy; the admin API shows why.
   */
  private tenantFrom(tenant: string, json: string | null): TenantEntry | undefined {
    if (json === null) return undefined;
    if (this.json.get(tenant) === json) return this.entries.get(tenant);
    const r = resolvePolicy(JSON.parse(json));
    return r.ok ? { tenant, spec: r.spec, policy: r.policy } : undefined;
  }

  private orgFrom(org: string, json: string | null): OrgEntry | undefined {
    if (json === null) return undefined;
    if (this.orgJson.get(org) === json) return this.orgEntries.get(org);
    const r = resolveOrg(JSON.parse(json));
    return r.ok ? { org, policy: r.policy } : undefined;
  }

  /** Puts a tenant's entry in place (undefined: takes it out). */
  private adopt(tenant: string, json: string | null, entry: TenantEntry | undefined): void {
    if (entry && json !== null) {
      this.entries.set(tenant, entry);
      this.json.set(tenant, json);
    } else {
      this.entries.delete(tenant);
      this.json.delete(tenant);
    }
  }

  private adoptOrg(org: string, json: string | null, entry: OrgEntry | undefined): void {
    if (entry && json !== null) {
      this.orgEntries.set(org, entry);
      this.orgJson.set(org, json);
    } else {
      this.orgEntries.delete(org);
      this.orgJson.delete(org);
    }
  }
}
