import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";

/**
 * Tenant API keys: `flk_<keyId>_<secret>`. Only sha256(key) is stored, so a
 * Redis dump does not leak usable keys. Lookups go to Redis on every request
 * (one HGET), so a revoked key stops working at once on every process.
 */
export interface ApiKeyRecord {
  tenant: string;
  keyId: string;
  createdAt: string;
  label?: string;
}

export const hashKey = (key: string) => createHash("sha256").update(key).digest("hex");

export class ApiKeys {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async create(tenant: string, label?: string): Promise<{ keyId: string; key: string }> {
    const keyId = randomBytes(6).toString("hex");
    const key = `flk_${keyId}_${randomBytes(24).toString("base64url")}`;
    const h = hashKey(key);
    const record: ApiKeyRecord = { tenant, keyId, createdAt: new Date().toISOString(), ...(label ? { label } : {}) };
    await this.redis
      .multi()
      .hset(this.keys.registry.apiKeys, h, JSON.stringify(record))
      .hset(this.keys.registry.tenantKeys(tenant), keyId, h)
      .exec();
    return { keyId, key };
  }

  /** Returns false when the tenant has no such key. */
  async revoke(tenant: string, keyId: string): Promise<boolean> {
    const h = await this.redis.hget(this.keys.registry.tenantKeys(tenant), keyId);
    if (!h) return false;
    await this.redis.multi().hdel(this.keys.registry.apiKeys, h).hdel(this.keys.registry.tenantKeys(tenant), keyId).exec();
    return true;
  }

  async list(tenant: string): Promise<ApiKeyRecord[]> {
    const hashes = Object.values(await this.redis.hgetall(this.keys.registry.tenantKeys(tenant)));
    if (!hashes.length) return [];
    const raw = await this.redis.hmget(this.keys.registry.apiKeys, ...hashes);
    return raw.flatMap((r) => (r ? [JSON.parse(r) as ApiKeyRecord] : []));
  }

  async lookup(key: string): Promise<ApiKeyRecord | null> {
    if (!/^flk_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/.test(key)) return null;
    const raw = await this.redis.hget(this.keys.registry.apiKeys, hashKey(key));
    return raw ? (JSON.parse(raw) as ApiKeyRecord) : null;
  }
}
