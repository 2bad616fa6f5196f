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
 *   <root>:{<root>.reg}:cells:<t>          SET cells that ever held the tenant's workflows (admission adds
 *                                          the cell before its first workflow there), so reads and cancels
 *                                          still find work left in a cell the tenant moved away from
 *
 * Cell — everything one dispatcher moves atomically shares the hash tag
 * `{<root>.<cell>}` (DESIGN invariant 5). BullMQ queues of the cell use the
 * prefix `<root>:{<root>.<cell>}`, so their keys are
 *   <root>:{<root>.<cell>}:<queueName>:<wait|active|meta|id|...>
 *   <root>:{<root>.<cell>}:<queueName>:<jobId>
 * and Fairlane's own cell keys (`<cell>` = `<root>:{<root>.<cell>}:fl`; no queue is named "fl") are
 *   <cell>:wf:<id>                 HASH the workflow record (state, times, result)
 *   <cell>:wfs:<t>                 ZSET the tenant's workflows for run lists, every score 0, member
 *                                  "<13-digit enqueuedAt>|<id>" (newest last by lex order); admission adds,
 *                                  trims those older than the record TTL now and then, and lists drop gone ones
 *   <cell>:idem:<t>:<sha256(key)>  STRING "<workflow id> <sha256 of the canonical request>" for an idempotency key (TTL;
 *                                  a bare id, written before requests were hashed, still replays)
 *   <cell>:queued                  STRING workflows queued in ingress, whole cell
 *   <cell>:qbytes:<t>              STRING payload bytes of the tenant's workflows queued in ingress (maxQueueBytes):
 *                                  INCRBY where `queued` is INCR'd, DECRBY where it is DECR'd, by the record's
 *                                  `bytes` field (includes/queuedBytes.lua)
 *   <cell>:types                   ZSET workflow type -> until when a live exec worker advertises it (its
 *                                  heartbeat, src/exec/execWorker.ts); admission refuses other types
 *   <cell>:deadlines               ZSET workflow id -> deadlineAt, written at admission; the dispatcher's
 *                                  expireQueued-2.lua pops due entries and fails those still queued
 *   <cell>:queues                  SET ingress queue names that ever held a job
 *   <cell>:tenants                 SET tenants whose scheduling caps are synced into the cell
 *   <cell>:tp:<t>                  HASH the tenant's caps as the dispatch script reads them
 *                                  (weight mca burstMca burstMs cooldownMs mcaUrgent paused pools
 *                                  burstStart m:<pool> = its member in that pool's ready sets)
 *   <cell>:run:<t>                 HASH the tenant's slots held: A, BC, p:<pool>
 *   <cell>:dirty                   SET tenants whose readiness must be recomputed
 *   <cell>:timers                  ZSET tenant -> time its readiness must be recomputed (cooldown end)
 *   <cell>:wake                    ZSET wake-up marker dispatchers block on (BZPOPMIN)
 *   <cell>:dispatch                HASH the share options and capacity cap this cell's dispatchers run with
 *                                  (reserveFraction batchMaxShare batchMinShare capacityCap, written at start and
 *                                  every reconcile), so explanations use the dispatcher's values, not the reader's
 *   <cell>:seq                     STRING dispatch sequence (the WFQ tie-break: least recently served)
 *   <cell>:slots                   HASH workflow id -> "tenant|class|pool|dispatchedAt|charge": the slot leases
 *   <cell>:pools                   SET pool names seen (heartbeats, policies)
 *   <cell>:pool:<p>:workers        ZSET exec worker id -> heartbeat expiry (epoch ms)
 *   <cell>:pool:<p>:conc           HASH exec worker id -> concurrency
 *   <cell>:pool:<p>:used           HASH slots held in the pool: total, A, C
 *   <cell>:pool:<p>:ready:<class>  ZSET backlogged, eligible tenants; score its virtual time in the pool and class,
 *                                  member "<14-digit last dispatch seq>:<tenant>" (ties: least recently served)
 *   <cell>:pool:<p>:wfq:<class>    HASH weighted fair queuing by service received (includes/wfq.lua): now (system
 *                                  virtual time), e (estimated slot-ms of a run), v:<t> (virtual time,
 *                                  slot-ms / weight), e:<t> (the tenant's estimate), c:<t> (charged for its runs in flight)
 *   <cell>:pool:<p>:runC           ZSET running Class C workflow id -> dispatch seq (preemption victims, newest first)
 *   <cell>:pool:<p>:preempting     ZSET workflow id -> when it was asked to yield
 *   <cell>:signals                 pub/sub channel: "preempt <id>" / "cancel <id>" for exec workers
 *   <cell>:wf:<id>:steps           HASH durable step name -> result JSON (the workflow's checkpoints)
 *   <cell>:gate:<t>:held           ZSET tool-gate permit id -> lease expiry (MCTC holders)
 *   <cell>:gate:<t>:heldC          ZSET the Class C holders among them (mctcBatch)
 *   <cell>:gate:<t>:wait           ZSET A/B waiters -> FIFO seq;  :waitC the Class C waiters
 *   <cell>:gate:<t>:waitExp        ZSET waiter -> expiry (a dead waiter stops blocking)
 *   <cell>:gate:<t>:seq            STRING FIFO sequence
 *   <cell>:gate                    pub/sub channel: the ids (space-separated) of the tool-gate waiters a release,
 *                                  an abandoned wait or a lapsed lease lets in; nothing when nobody may go
 *   <cell>:rl:<per>:<t>:<name>     rate-limiter-flexible counters, per tenant and tool/dependency
 *   <cell>:spend:<t>:<yyyymm>      STRING the tenant's spend this UTC month, micro-dollars
 *   <cell>:health:<dep>            HASH state since detail source (unknown|healthy|degraded|down), PEXPIRE a
 *                                  few probe intervals: a missing signal counts as not healthy; unknown
 *                                  (a starting monitor's first probe under way) is called, not parked
 *   <cell>:health:<dep>:override   HASH an operator's manual mark (down/up), no TTL, wins over probes
 *   <cell>:deps                    SET dependency names seen (probes, tools, parked workflows)
 *   <cell>:parked:<dep>            ZSET parked workflow id -> parkedAt (recovery takes the oldest first)
 *   <cell>:wfdeps                  HASH workflow type -> the dependencies it declares (comma-separated)
 *   <cell>:ev:<bucketStartMs>      HASH one 10 s bucket of the cell's usage events, field "<tenant>|<name>":
 *                                  l<b> first starts whose enqueue->start latency fell in histogram bucket b
 *                                  (<= 2^b ms; startRun-2.lua), thr THROTTLED tool calls (acquirePermit-7.lua
 *                                  queue full; src/runtime/toolGate.ts wait timeout), acq permits granted and
 *                                  gw their summed gate wait ms (acquirePermit-7.lua). EXPIRE 20 min.
 *                                  Read by src/observability/usageSnapshot.ts (dashboard, capacity rollups).
 *   <cell>:usage:<periodStartMs>   HASH one 10-minute capacity rollup: tenant -> JSON evidence (starts, throttled,
 *                                  acquired, gate wait, samples at cap with backlog, peaks). EXPIRE 8 days.
 *   <cell>:usage:lock:<periodStartMs>  STRING SET NX by the api process that writes that rollup (one writer)
 */

export type WorkflowClass = "A" | "B" | "C";
export const CLASSES: readonly WorkflowClass[] = ["A", "B", "C"];

export interface RegistryKeys {
  tenants: string;
  version: string;
  apiKeys: string;
  tenantKeys(tenant: string): string;
  audit: string;
  tenantCells(tenant: string): string;
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
  /** The tenant's run-list index (src/workflows/list.ts). */
  workflowsByTenant(tenant: string): string;
  idempotency(tenant: string, keyHash: string): string;
  queued: string;
  /** Payload bytes the tenant has queued in ingress (Lua derives it as `<cell>:qbytes:<t>`). */
  queuedBytes(tenant: string): string;
  /** Workflow types live exec workers of the cell can run, with until when. */
  types: string;
  /** Workflow id -> deadlineAt of admitted workflows (expireQueued-2.lua fails the due ones still queued). */
  deadlines: string;
  queues: string;
  /** `<cell>` itself: Lua scripts derive per-tenant and per-pool keys from it (same hash tag). */
  own: string;
  tenants: string;
  tenantCaps(tenant: string): string;
  running(tenant: string): string;
  dirty: string;
  /** The dispatcher's share options and capacity cap (src/workflows/explain.ts reads them). */
  dispatchSettings: string;
  timers: string;
  wake: string;
  seq: string;
  slots: string;
  pools: string;
  poolWorkers(pool: string): string;
  poolConcurrency(pool: string): string;
  poolUsed(pool: string): string;
  ready(pool: string, cls: WorkflowClass): string;
  wfq(pool: string, cls: WorkflowClass): string;
  runningC(pool: string): string;
  preempting(pool: string): string;
  signals: string;
  steps(id: string): string;
  gate(tenant: string): { held: string; heldC: string; wait: string; waitC: string; waitExp: string; seq: string };
  gateChannel: string;
  /** Prefix for src/runtime/rateLimit.ts and src/runtime/budget.ts keys. */
  rateLimitPrefix: string;
  budgetPrefix: string;
  health(dep: string): string;
  healthOverride(dep: string): string;
  deps: string;
  parked(dep: string): string;
  workflowDeps: string;
  /** One 10 s bucket of usage events (`bucketStart` = epoch ms, a multiple of 10,000). */
  usageEvents(bucketStart: number): string;
  /** One 10-minute capacity rollup and the lock naming its one writer. */
  usageRollup(periodStart: number): string;
  usageRollupLock(periodStart: number): string;
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
    tenantCells: (t) => `${reg}:cells:${t}`,
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
    workflowsByTenant: (t) => `${own}:wfs:${t}`,
    idempotency: (t, h) => `${own}:idem:${t}:${h}`,
    queued: `${own}:queued`,
    queuedBytes: (t) => `${own}:qbytes:${t}`,
    types: `${own}:types`,
    deadlines: `${own}:deadlines`,
    queues: `${own}:queues`,
    own,
    tenants: `${own}:tenants`,
    tenantCaps: (t) => `${own}:tp:${t}`,
    running: (t) => `${own}:run:${t}`,
    dirty: `${own}:dirty`,
    dispatchSettings: `${own}:dispatch`,
    timers: `${own}:timers`,
    wake: `${own}:wake`,
    seq: `${own}:seq`,
    slots: `${own}:slots`,
    pools: `${own}:pools`,
    poolWorkers: (p) => `${own}:pool:${p}:workers`,
    poolConcurrency: (p) => `${own}:pool:${p}:conc`,
    poolUsed: (p) => `${own}:pool:${p}:used`,
    ready: (p, c) => `${own}:pool:${p}:ready:${c}`,
    wfq: (p, c) => `${own}:pool:${p}:wfq:${c}`,
    runningC: (p) => `${own}:pool:${p}:runC`,
    preempting: (p) => `${own}:pool:${p}:preempting`,
    signals: `${own}:signals`,
    steps: (id) => `${own}:wf:${id}:steps`,
    gate: (t) => {
      const g = `${own}:gate:${t}`;
      return { held: `${g}:held`, heldC: `${g}:heldC`, wait: `${g}:wait`, waitC: `${g}:waitC`, waitExp: `${g}:waitExp`, seq: `${g}:seq` };
    },
    gateChannel: `${own}:gate`,
    rateLimitPrefix: `${own}:rl`,
    budgetPrefix: own,
    health: (dep) => `${own}:health:${dep}`,
    healthOverride: (dep) => `${own}:health:${dep}:override`,
    deps: `${own}:deps`,
    parked: (dep) => `${own}:parked:${dep}`,
    workflowDeps: `${own}:wfdeps`,
    usageEvents: (b) => `${own}:ev:${b}`,
    usageRollup: (p) => `${own}:usage:${p}`,
    usageRollupLock: (p) => `${own}:usage:lock:${p}`,
  };
}
