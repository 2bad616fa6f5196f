import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";

/**
 * Who acts, as the audit log and tenants' cancellation messages show it. It
 * comes from a request (the Basic user name or X-Fairlane-Operator), so it is
 * checked once at the edge (adminAuth) and only a checked name has this type:
 * nothing stores a raw header. Letters of any script, digits, spaces inside and
 * . _ @ + ' -, at most 64 characters: no control or format characters (a
 * newline forging a second log line, a bidi override disguising a name), no
 * markup, no padding.
 */
declare const checked: unique symbol;
export type OperatorName = string & { readonly [checked]: true };

export const OPERATOR_NAME_RULE = "1-64 characters: letters, digits, spaces (not at either end) and . _ @ + ' -";
const OPERATOR_NAME = /^(?! )[\p{L}\p{M}\p{N}._@+' -]+(?<! )$/u;

/** The name in NFC, or null when it breaks OPERATOR_NAME_RULE. */
export function operatorName(raw: string): OperatorName | null {
  const name = raw.normalize("NFC");
  if ([...name].length > 64 || !OPERATOR_NAME.test(name)) return null;
  return name as OperatorName;
}

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
