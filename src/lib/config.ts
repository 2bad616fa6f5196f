import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

// src/lib/config.ts from source (tsx), dist/src/lib/config.js once compiled (npm run build): one level deeper.
export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), import.meta.url.endsWith(".js") ? "../../../.." : "../../..");

const int = (def: number) => z.coerce.number().int().nonnegative().default(def);

/** Every environment variable Fairlane reads, parsed once at the edge. */
const EnvSchema = z.object({
  PORT: int(3000),
  HOST: z.string().default("127.0.0.1"),
  REDIS_URL: z.string().url().optional(),
  // Redis Cluster (docs/cluster.md): seed nodes "host:port,host:port"; every connection is then an
  // ioredis Cluster (REDIS_URL, if also set, only lends its credentials and TLS). `?cluster=1` on
  // REDIS_URL does the same with that one node as the seed.
  REDIS_CLUSTER_NODES: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .regex(/^\s*[^\s,:]+:\d{1,5}\s*(,\s*[^\s,:]+:\d{1,5}\s*)*$/, "must be host:port[,host:port...]")
      .optional(),
  ),
  FAIRLANE_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_.-]+$/)
    .default("fl"),
  FAIRLANE_DATA_DIR: z.string().default(resolve(REPO_ROOT, ".fairlane")),
  FAIRLANE_ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  FAIRLANE_TENANTS_FILE: z.string().default(resolve(REPO_ROOT, "src/tenancy/tenants.example.yaml")),
  FAIRLANE_TENANTS_MODE: z.enum(["seed", "replace"]).default("seed"),
  FAIRLANE_DEV_KEYS: z.enum(["auto", "on", "off"]).default("auto"),
  FAIRLANE_REDIS_PORT: int(6390),
  FAIRLANE_REDIS_APPENDFSYNC: z.enum(["always", "everysec", "no"]).default("always"),
  // the embedded Redis's memory bound (redis `maxmemory`: 512mb, 2gb; 0 = unbounded), noeviction:
  // when full, new work is refused and nothing acknowledged is dropped
  FAIRLANE_REDIS_MAXMEMORY: z
    .string()
    .regex(/^\d+(b|k|kb|m|mb|g|gb)?$/i, "must be a size like 512mb or 1gb (0 = unbounded)")
    .default("1gb"),
  FAIRLANE_MAX_QUEUED_TOTAL: int(200_000),
  FAIRLANE_RETRY_AFTER_SEC: int(5),
  FAIRLANE_BODY_LIMIT: z.string().default("1mb"),
  FAIRLANE_BULK_BODY_LIMIT: z.string().default("16mb"),
  FAIRLANE_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000), // api: a request's headers and body must arrive within this (408)
  FAIRLANE_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000), // api: ... and its headers within this
  FAIRLANE_MAX_PAYLOAD_BYTES: int(256 * 1024),
  FAIRLANE_IDEMPOTENCY_TTL_SEC: int(7 * 24 * 3600),
  FAIRLANE_POLICY_POLL_MS: int(250),
  FAIRLANE_CELLS: z
    .string()
    .regex(/^[a-z0-9_-]+(,[a-z0-9_-]+)*$/)
    .default("default"),
  FAIRLANE_RECORD_TTL_SEC: int(7 * 24 * 3600),
  // exec role
  FAIRLANE_POOL: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,47}$/)
    .default("default"),
  FAIRLANE_WORKER_ID: z
    .string()
    .regex(/^[\w.:-]{1,100}$/)
    .optional(),
  FAIRLANE_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(10),
  /** Exec: how late (ms, p99) its event loop may run before Class C backs off (src/exec/batchLimit.ts); 0 = off. */
  FAIRLANE_EXEC_LAG_TARGET_MS: z.coerce.number().int().min(0).max(10_000).default(10),
  FAIRLANE_WORKFLOW_MODULES: z.string().default(""),
  FAIRLANE_SHUTDOWN_GRACE_MS: int(10_000),
  FAIRLANE_LOCK_MS: int(10_000),
  FAIRLANE_HEARTBEAT_TTL_MS: int(5_000),
  // dispatcher role
  FAIRLANE_RESERVE_A: z.coerce.number().min(0).max(1).default(0.1),
  FAIRLANE_BATCH_MAX_SHARE: z.coerce.number().min(0).max(1).default(0.5),
  FAIRLANE_BATCH_MIN_SHARE: z.coerce.number().min(0).max(1).default(0.05),
  FAIRLANE_POOL_CAPACITY_CAP: int(0),
  FAIRLANE_DISPATCH_BATCH: z.coerce.number().int().min(1).max(1000).default(64),
  /** Dispatcher: the most a pool may prefetch, a fraction of its capacity (src/dispatch/policy/prefetch.ts); 0 = none. */
  FAIRLANE_PREFETCH_MAX: z.coerce.number().min(0).max(1).default(1),
  /** Dispatcher: a pool prefetches at most the runs it ends in this long (ms), about the longest a prefetched workflow waits. */
  FAIRLANE_PREFETCH_WINDOW_MS: z.coerce.number().int().min(1).max(1000).default(50),
  // the example workflows' downstream (npm start runs the simulated one on FAIRLANE_DOWNSTREAM_PORT)
  FAIRLANE_DOWNSTREAM_URL: z.string().url().default("http://127.0.0.1:4100"),
  FAIRLANE_MODEL_URL: z.string().url().optional(),
  // ctx.agent's OpenAI-compatible model endpoints (src/agents/models.ts; parsed there, named here so a
  // bad value stops the process at start): default endpoint, more by data-residency region, models
  // and prices by tier; FAIRLANE_LLM_API_KEY (or FAIRLANE_LLM_API_KEY_<REGION>) is never logged
  FAIRLANE_LLM_BASE_URL: z.string().url().optional(),
  FAIRLANE_LLM_REGIONS: z.string().optional(),
  FAIRLANE_LLM_API_KEY: z.string().optional(),
  FAIRLANE_LLM_MODELS: z.string().optional(),
  FAIRLANE_LLM_PRICES: z.string().optional(),
  FAIRLANE_DOWNSTREAM_PORT: int(4100),
  FAIRLANE_DOWNSTREAM_CAPACITY: z.coerce.number().int().min(1).default(50),
  /** npm start: exec processes beside it (src/dev/execChildren.ts), each with FAIRLANE_CONCURRENCY slots; 0 = the exec role inside it. */
  FAIRLANE_START_EXEC_PROCESSES: z.coerce.number().int().min(0).max(32).default(1),
  // health role: probes (JSON, see workers/health.ts) and how often
  FAIRLANE_HEALTH_PROBES: z.string().optional(),
  FAIRLANE_HEALTH_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  // recovery role
  FAIRLANE_RECOVERY_STABLE_MS: int(10_000),
  FAIRLANE_RECOVERY_RATE: z.coerce.number().positive().default(20),
  FAIRLANE_RECOVERY_MAX_WAVE: z.coerce.number().int().min(1).default(50),
  // dispatcher / exec / health / recovery roles: serve /metrics on this port when set
  FAIRLANE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  // who may read /metrics (docs/observability.md): `admin` needs the admin token or, when set,
  // the read-only FAIRLANE_METRICS_TOKEN; `none` serves it to anyone who can reach it
  FAIRLANE_METRICS_AUTH: z.enum(["admin", "none"]).default("admin"),
  FAIRLANE_METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  // metric cardinality: at most this many tenants get their own `tenant` label value; the rest
  // aggregate into _other_<tier> (src/observability/tenantLabel.ts). FAIRLANE_METRICS_TENANTS
  // (comma-separated) always get their own, within the cap.
  FAIRLANE_METRICS_MAX_TENANTS: z.coerce.number().int().min(0).max(5000).default(100),
  FAIRLANE_METRICS_TENANTS: z.string().default(""),
  // api: the capacity report raises or lowers nothing for a tenant observed for less than this
  // ("24h", "90m", "7d"; src/usage/recommend.ts): 90 s of data says nothing about Monday morning
  FAIRLANE_CAPACITY_MIN_EVIDENCE: z
    .string()
    .regex(/^\d{1,5}[smhd]$/, 'must be a number and a unit s, m, h or d, e.g. "20h"')
    .default("20h"),
});

export type Config = z.infer<typeof EnvSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
