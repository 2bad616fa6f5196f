import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";
import type { OperatorName } from "../lib/operatorName.ts";

/** Who acts (src/lib/operatorName.ts: checked once, by adminAuth). */
export { OPERATOR_NAME_RULE, operatorName, type OperatorName } from "../lib/operatorName.ts";

export interface AuditEntry {
  at: string;
  operator: string;
  action: string;
  target: string;
  details?: unknown;
}

/** Who did what, when: every admin write is recorded here (newest first, capped). */
export class AuditLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly clock: Clock,
    private readonly cap = 10_000,
  ) {}

  async record(operator: OperatorName, action: string, target: string, details?: unknown): Promise<void> {
    const entry: AuditEntry = { at: new Date(this.clock.now()).toISOString(), operator, action, target };
    if (details !== undefined) entry.details = details;
    await this.redis
      .multi()
      .lpush(this.keys.registry.audit, JSON.stringify(entry))
      .ltrim(this.keys.registry.audit, 0, this.cap - 1)
      .exec();
  }

  async list(limit = 100): Promise<AuditEntry[]> {
    const raw = await this.redis.lrange(this.keys.registry.audit, 0, Math.max(0, limit - 1));
    return raw.map((r) => JSON.parse(r) as AuditEntry);
  }
}
