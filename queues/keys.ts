/**
 * Every Redis key Fairlane uses is built here. Nothing else in the code base
 * concatenates key strings.
 *
 * Root prefix `<root>` (default "fl", env FAIRLANE_PREFIX) separates deployments
 * (and tests) sharing one Redis.
 *
 * Registry — global, one hash tag `{<root>.reg}` so multi-key updates are atomic:
 *   <root>:{<root>.reg}:tenants            HASH tenant -> policy spec (JSON, as written)
 *   <root>:{<root>.reg}:version            STRING counter, bumped on every policy change
 *   <root>:{<root>.reg}:keys               HASH sha256(apiKey) -> {tenant,keyId,createdAt}
 *   <root>:{<root>.reg}:tenantkeys:<t>     HASH keyId -> sha256(apiKey)
 *   <root>:{<root>.reg}:audit              LIST of admin actions (newest first, capped)
 *
 * Cell — everything one dispatcher moves atomically shares the hash tag
 * `{<root>.<cell>}` (DESIGN invariant 5). BullMQ queues of the cell use the
 * prefix `<root>:{<root>.<cell>}`, so their keys are
 *   <root>:{<root>.<cell>}:<queueName>:<wait|active|meta|id|...>
 *   <root>:{<root>.<cell>}:<queueName>:<jobId>
 * and Fairlane's own cell keys (`<cell>` = `<root>:{<root>.<cell>}:fl`; no queue is named "fl") are
 *   <cell>:wf:<id>                 HASH the workflow record (state, times, result)
 *   <cell>:idem:<t>:<sha256(key)>  STRING workflow id for an idempotency key (TTL)
 *   <cell>:queued                  STRING workflows queued in ingress, whole cell
 *   <cell>:queues                  SET ingress queue names that ever held a job
 *   <cell>:backlog:<class>         SET tenants with queued work of that class
 */

export type WorkflowClass = "A" | "B" | "C";
export const CLASSES: readonly WorkflowClass[] = ["A", "B", "C"];

export interface RegistryKeys {
  tenants: string;
  version: string;
  apiKeys: string;
  tenantKeys(tenant: string): string;
  audit: string;
}

export interface CellKeys {
  cell: string;
  /** BullMQ `prefix` option for every queue of this cell. */
  bullPrefix: string;
  /** Prefix of one queue's keys: `<bullPrefix>:<queueName>:`. */
  queuePrefix(queueName: string): string;
  queueKey(queueName: string, type: string): string;
  jobKey(queueName: string, jobId: string): string;
  workflow(id: string): string;
  idempotency(tenant: string, keyHash: string): string;
  queued: string;
  queues: string;
  backlog(cls: WorkflowClass): string;
}

export interface Keys {
  root: string;
  registry: RegistryKeys;
  cell(name: string): CellKeys;
}

export function createKeys(root = "fl"): Keys {
  const reg = `${root}:{${root}.reg}`;
  const registry: RegistryKeys = {
    tenants: `${reg}:tenants`,
    version: `${reg}:version`,
    apiKeys: `${reg}:keys`,
    tenantKeys: (t) => `${reg}:tenantkeys:${t}`,
    audit: `${reg}:audit`,
  };
  const cells = new Map<string, CellKeys>();
  return {
    root,
    registry,
    cell(name) {
      let keys = cells.get(name);
      if (!keys) {
        keys = cellKeys(root, name);
        cells.set(name, keys);
      }
      return keys;
    },
  };
}

function cellKeys(root: string, cell: string): CellKeys {
  const bullPrefix = `${root}:{${root}.${cell}}`;
  const own = `${bullPrefix}:fl`;
  return {
    cell,
    bullPrefix,
    queuePrefix: (q) => `${bullPrefix}:${q}:`,
    queueKey: (q, type) => `${bullPrefix}:${q}:${type}`,
    jobKey: (q, id) => `${bullPrefix}:${q}:${id}`,
    workflow: (id) => `${own}:wf:${id}`,
    idempotency: (t, h) => `${own}:idem:${t}:${h}`,
    queued: `${own}:queued`,
    queues: `${own}:queues`,
    backlog: (cls) => `${own}:backlog:${cls}`,
  };
}
