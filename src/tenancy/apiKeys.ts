import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";

/**
 * API keys: `<kind>_<keyId>_<secret>`, owned by a tenant (`flk_`, producers) or by a reviewer pool
 * (`flr_`, reviewers: src/api/reviews.ts). Only sha256(key) is stored, so a Redis dump does not leak
 * usable keys. Lookups go to Redis on every request (one HGET), so a revoked key stops working at
 * once on every process. The two kinds live in separate hashes: a reviewer key never authenticates a
 * producer, nor a tenant key a reviewer.
 */
export type KeyRecord<Owner extends string> = Record<Owner, string> & { keyId: string; createdAt: string; label?: string };
export type ApiKeyRecord = KeyRecord<"tenant">;
export type ReviewerKeyRecord = KeyRecord<"pool">;

export const hashKey = (key: string) => createHash("sha256").update(key).digest("hex");

class OwnedKeys<Owner extends string> {
  private readonly shape: RegExp;

  constructor(
    private readonly redis: Redis,
    private readonly kind: "flk" | "flr",
    private readonly owner: Owner,
    /** sha256(key) -> record. */
    private readonly byHash: string,
    /** keyId -> sha256(key), per owner. */
    private readonly index: (owner: string) => string,
  ) {
    this.shape = new RegExp(`^${kind}_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$`);
  }

  async create(owner: string, label?: string): Promise<{ keyId: string; key: string }> {
    const keyId = randomBytes(6).toString("hex");
    const key = `${this.kind}_${keyId}_${randomBytes(24).toString("base64url")}`;
    const h = hashKey(key);
    const record = { [this.owner]: owner, keyId, createdAt: new Date().toISOString(), ...(label ? { label } : {}) };
    await this.redis.multi().hset(this.byHash, h, JSON.stringify(record)).hset(this.index(owner), keyId, h).exec();
    return { keyId, key };
  }

  /** Returns false when the owner has no such key. */
  async revoke(owner: string, keyId: string): Promise<boolean> {
    const h = await this.redis.hget(this.index(owner), keyId);
    if (!h) return false;
    await this.redis.multi().hdel(this.byHash, h).hdel(this.index(owner), keyId).exec();
    return true;
  }

  async list(owner: string): Promise<KeyRecord<Owner>[]> {
    const hashes = Object.values(await this.redis.hgetall(this.index(owner)));
    if (!hashes.length) return [];
    const raw = await this.redis.hmget(this.byHash, ...hashes);
    return raw.flatMap((r) => (r ? [JSON.parse(r) as KeyRecord<Owner>] : []));
  }

  async lookup(key: string): Promise<KeyRecord<Owner> | null> {
    if (!this.shape.test(key)) return null;
    const raw = await this.redis.hget(this.byHash, hashKey(key));
    return raw ? (JSON.parse(raw) as KeyRecord<Owner>) : null;
  }
}

/** A tenant's producer keys (`flk_`). */
export class ApiKeys extends OwnedKeys<"tenant"> {
  constructor(redis: Redis, keys: Keys) {
    super(redis, "flk", "tenant", keys.registry.apiKeys, keys.registry.tenantKeys);
  }
}

/** A reviewer pool's keys (`flr_`): a reviewer claims and decides that pool's review items only. */
export class ReviewerKeys extends OwnedKeys<"pool"> {
  constructor(redis: Redis, keys: Keys) {
    super(redis, "flr", "pool", keys.registry.reviewerKeys, keys.registry.poolKeys);
  }
}
