import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";

/**
 * Which cells hold a tenant's workflows. A tenant moved to another cell
 * (docs/cluster.md) leaves its queued work behind in the old one; reads and
 * cancels look there too. Admission notes each cell in the registry's
 * `cells:<t>` set before the tenant's first workflow there (once per process
 * and cell: no round trip in steady state).
 */
export class TenantCells {
  private readonly noted = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly registry: PolicyRegistry,
  ) {}

  async note(tenant: string, cell: string): Promise<void> {
    const id = `${tenant} ${cell}`;
    if (this.noted.has(id)) return;
    await this.redis.sadd(this.keys.registry.tenantCells(tenant), cell);
    this.noted.add(id);
  }

  /**
   * `current` first, then every cell the tenant was admitted into, then every
   * cell a policy names (work admitted before cells were noted).
   */
  async of(tenant: string, current: string): Promise<string[]> {
    const noted = await this.redis.smembers(this.keys.registry.tenantCells(tenant));
    return [...new Set([current, ...noted.sort(), ...this.registry.cells()])];
  }
}
