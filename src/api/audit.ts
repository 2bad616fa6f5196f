import type { Redis } from "ioredis";
import type { CellKeys, Keys } from "../../queues/keys.ts";
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

/** The longest `why` an admin action writes into a tenant's trail (a policy spec can be long). */
const TRAIL_WHY_MAX = 1000;

/**
 * Who did what, when: every admin write is recorded here (newest first, capped). An action on a tenant
 * (`tenant.*`, `key.*`: the target is the tenant) also goes into that tenant's own audit trail
 * (`admin:<action>`, src/workflows/trail.ts), which the tenant reads with its key.
 */
export class AuditLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly clock: Clock,
    /** The cell holding a tenant's trail (its current cell); undefined for an unknown tenant. */
    private readonly trailCell: (tenant: string) => CellKeys | undefined = () => undefined,
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
    const cell = /^(tenant|key)\./.test(action) ? this.trailCell(target) : undefined;
    if (cell) {
      const why = details === undefined ? "" : JSON.stringify(details).slice(0, TRAIL_WHY_MAX);
      await this.redis.xadd(cell.trail(target), "*", "wf", "", "ev", `admin:${action}`, "by", `operator:${operator}`, "why", why);
    }
  }

  async list(limit = 100): Promise<AuditEntry[]> {
    const raw = await this.redis.lrange(this.keys.registry.audit, 0, Math.max(0, limit - 1));
    return raw.map((r) => JSON.parse(r) as AuditEntry);
  }
}
