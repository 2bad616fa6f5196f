import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";

/** The workflow ids a tenant's run list holds in a cell (queues/keys.ts `runs:<t>`), oldest first. */
export async function runListIds(redis: Redis, cell: CellKeys, tenant: string): Promise<string[]> {
  return (await redis.xrange(cell.runList(tenant), "-", "+")).map(([, fields]) => fields[1]!);
}
