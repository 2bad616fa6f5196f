import { z } from "zod";
import { POOL_ID, TENANT_ID } from "../../queues/names.ts";

/**
 * Tenant policy: what an operator writes (a *spec*: a tier plus overrides) and
 * what the system uses (a *resolved* policy: every field filled from the tier's
 * defaults). The spec is stored in Redis as the single truth; every process
 * resolves it the same way, so changing a tier default changes every tenant
 * that did not override it.
 */

export const TIERS = ["free", "professional", "enterprise"] as const;
export type Tier = (typeof TIERS)[number];

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const toolName = z.string().regex(/^[a-zA-Z0-9_.:-]{1,64}$/, "tool names are 1-64 of [a-zA-Z0-9_.:-]");

const poolName = z.string().regex(POOL_ID, "pool names are lowercase [a-z0-9_-]");

const RateLimit = z.strictObject({
  limit: posInt,
  per: z.enum(["second", "minute", "hour", "day"]),
});

/** Fields every resolved policy has. */
const ResolvedShape = {
  tier: z.enum(TIERS),
  weight: z.number().positive().max(1000),
  mca: posInt,
  burst: z.strictObject({ mca: posInt, seconds: nonNegInt, cooldownSeconds: nonNegInt }),
  mcaUrgent: nonNegInt,
  mctc: posInt,
  mctcBatch: posInt,
  toolQueueDepth: nonNegInt,
  toolWaitTimeoutMs: nonNegInt,
  deadline: z.strictObject({ runBudgetMs: posInt, maxIterations: posInt, toolRetries: nonNegInt }),
  rateLimits: z.record(toolName, RateLimit),
  budget: z.strictObject({ perWorkflowUsd: z.number().nonnegative(), monthlyUsd: z.number().nonnegative() }),
  modelTier: z.string().min(1).max(64),
  allowedTools: z.array(toolName).nullable(),
  deniedTools: z.array(toolName),
  dataResidency: z.string().min(1).max(32).nullable(),
  pools: z.array(poolName).min(1),
  maxQueueDepth: posInt,
  /** Payload bytes it may have queued in ingress, all classes (a count alone lets 256 KB payloads fill Redis). */
  maxQueueBytes: posInt,
  cell: z.string().regex(POOL_ID, "cell names are lowercase [a-z0-9_-]"),
  paused: z.boolean(),
  /**
   * Days an ended workflow's data (record, result, step results, idempotency key) is kept before Redis
   * erases it; null: the deployment's FAIRLANE_RECORD_TTL_SEC. Fractions allowed (0.5 = 12 hours).
   */
  erasureAfterDays: z.number().positive().max(3650).nullable(),
  /**
   * Days its audit trail (every transition of its workflows, every admin action on it) is kept in Redis.
   * Redis is a hot store: a regulator's years are the export's job (docs/concepts.md#audit-trail).
   */
  auditRetentionDays: z.number().positive().max(400),
  /** The organisation it belongs to (src/tenancy/orgs.ts): the org's caps bound its tenants together; null: none. */
  org: z.string().regex(TENANT_ID, "org names are lowercase [a-z0-9_-]").nullable(),
  /** Human review (ctx.review): its reviewer pool, an SLA, and what an item not decided within it does. */
  review: z.strictObject({
    pool: poolName,
    slaSeconds: posInt.nullable(),
    onTimeout: z.enum(["escalate", "fail"]),
    escalateTo: poolName.nullable(),
  }),
};

export const ResolvedPolicySchema = z.strictObject(ResolvedShape).superRefine((p, ctx) => {
  if (p.burst.mca < p.mca) ctx.addIssue({ code: "custom", path: ["burst", "mca"], message: `must be >= mca (${p.mca})` });
  if (p.mctcBatch > p.mctc) ctx.addIssue({ code: "custom", path: ["mctcBatch"], message: `must be <= mctc (${p.mctc})` });
  const both = (p.allowedTools ?? []).filter((t) => p.deniedTools.includes(t));
  if (both.length) ctx.addIssue({ code: "custom", path: ["deniedTools"], message: `also allowed: ${both.join(", ")}` });
});
export type TenantPolicy = z.infer<typeof ResolvedPolicySchema>;

/** What an operator writes: a tier and any overrides; nested objects may be partial. */
export const PolicySpecSchema = z.strictObject({
  tier: z.enum(TIERS),
  weight: ResolvedShape.weight.optional(),
  mca: ResolvedShape.mca.optional(),
  burst: ResolvedShape.burst.partial().optional(),
  mcaUrgent: ResolvedShape.mcaUrgent.optional(),
  mctc: ResolvedShape.mctc.optional(),
  mctcBatch: ResolvedShape.mctcBatch.optional(),
  toolQueueDepth: ResolvedShape.toolQueueDepth.optional(),
  toolWaitTimeoutMs: ResolvedShape.toolWaitTimeoutMs.optional(),
  deadline: ResolvedShape.deadline.partial().optional(),
  rateLimits: ResolvedShape.rateLimits.optional(),
  budget: ResolvedShape.budget.partial().optional(),
  modelTier: ResolvedShape.modelTier.optional(),
  allowedTools: ResolvedShape.allowedTools.optional(),
  deniedTools: ResolvedShape.deniedTools.optional(),
  dataResidency: ResolvedShape.dataResidency.optional(),
  pools: ResolvedShape.pools.optional(),
  maxQueueDepth: ResolvedShape.maxQueueDepth.optional(),
  maxQueueBytes: ResolvedShape.maxQueueBytes.optional(),
  cell: ResolvedShape.cell.optional(),
  paused: ResolvedShape.paused.optional(),
  erasureAfterDays: ResolvedShape.erasureAfterDays.optional(),
  auditRetentionDays: ResolvedShape.auditRetentionDays.optional(),
  review: ResolvedShape.review.partial().optional(),
  org: ResolvedShape.org.optional(),
  description: z.string().max(200).optional(),
});
export type PolicySpec = z.infer<typeof PolicySpecSchema>;

const MiB = 1024 * 1024;

/** Reviews go to the shared pool, with no SLA (an item waits until its workflow's deadline). */
export const REVIEW_DEFAULTS = { pool: "shared", slaSeconds: null, onTimeout: "fail", escalateTo: null } as const;

type TierDefaults = Omit<TenantPolicy, "tier" | "toolQueueDepth" | "org"> & { toolQueueDepth?: number };

/**
 * Tier defaults. Deadlines, iterations and retries are seed 001's; caps are sized for a shared pool.
 * maxQueueBytes bounds what a full queue costs Redis: at maxQueueDepth it allows an average payload
 * of 16 KB (free), 26 KB (professional) and 21 KB (enterprise), not the 256 KB each one may be.
 */
export const TIER_DEFAULTS: Record<Tier, TierDefaults> = {
  free: {
    weight: 1,
    mca: 3,
    burst: { mca: 3, seconds: 0, cooldownSeconds: 0 },
    mcaUrgent: 1,
    mctc: 10,
    mctcBatch: 5,
    toolWaitTimeoutMs: 2_000,
    deadline: { runBudgetMs: 30_000, maxIterations: 2, toolRetries: 0 },
    rateLimits: {},
    budget: { perWorkflowUsd: 0.1, monthlyUsd: 50 },
    modelTier: "small",
    allowedTools: null,
    deniedTools: [],
    dataResidency: null,
    pools: ["default"],
    maxQueueDepth: 1_000,
    maxQueueBytes: 16 * MiB,
    cell: "default",
    paused: false,
    erasureAfterDays: null,
    auditRetentionDays: 7,
    review: REVIEW_DEFAULTS,
  },
  professional: {
    weight: 2,
    mca: 10,
    burst: { mca: 15, seconds: 30, cooldownSeconds: 300 },
    mcaUrgent: 3,
    mctc: 50,
    mctcBatch: 20,
    toolWaitTimeoutMs: 5_000,
    deadline: { runBudgetMs: 120_000, maxIterations: 5, toolRetries: 1 },
    rateLimits: {},
    budget: { perWorkflowUsd: 0.5, monthlyUsd: 2_000 },
    modelTier: "standard",
    allowedTools: null,
    deniedTools: [],
    dataResidency: null,
    pools: ["default"],
    maxQueueDepth: 10_000,
    maxQueueBytes: 256 * MiB,
    cell: "default",
    paused: false,
    erasureAfterDays: null,
    auditRetentionDays: 7,
    review: REVIEW_DEFAULTS,
  },
  enterprise: {
    weight: 4,
    mca: 50,
    burst: { mca: 75, seconds: 60, cooldownSeconds: 600 },
    mcaUrgent: 10,
    mctc: 200,
    mctcBatch: 100,
    toolWaitTimeoutMs: 10_000,
    deadline: { runBudgetMs: 300_000, maxIterations: 10, toolRetries: 2 },
    rateLimits: {},
    budget: { perWorkflowUsd: 2, monthlyUsd: 20_000 },
    modelTier: "premium",
    allowedTools: null,
    deniedTools: [],
    dataResidency: null,
    pools: ["default"],
    maxQueueDepth: 50_000,
    maxQueueBytes: 1024 * MiB,
    cell: "default",
    paused: false,
    erasureAfterDays: null,
    auditRetentionDays: 30,
    review: REVIEW_DEFAULTS,
  },
};

export interface PolicyIssue {
  field: string;
  message: string;
}

export type ResolveResult = { ok: true; policy: TenantPolicy; spec: PolicySpec } | { ok: false; issues: PolicyIssue[] };

const toIssues = (error: z.ZodError): PolicyIssue[] =>
  error.issues.map((i) => ({ field: i.path.join(".") || "(policy)", message: i.message }));

/** Validates a spec and fills it from its tier's defaults. Pure. */
export function resolvePolicy(input: unknown): ResolveResult {
  const parsed = PolicySpecSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) };
  const spec = parsed.data;
  const d = TIER_DEFAULTS[spec.tier];
  const mca = spec.mca ?? d.mca;
  const mctc = spec.mctc ?? d.mctc;
  const merged = {
    tier: spec.tier,
    weight: spec.weight ?? d.weight,
    mca,
    // A tenant that raises mca without saying anything about burst bursts by the tier's ratio.
    burst: {
      mca: spec.burst?.mca ?? Math.max(mca, Math.round((mca * d.burst.mca) / d.mca)),
      seconds: spec.burst?.seconds ?? d.burst.seconds,
      cooldownSeconds: spec.burst?.cooldownSeconds ?? d.burst.cooldownSeconds,
    },
    mcaUrgent: spec.mcaUrgent ?? d.mcaUrgent,
    mctc,
    mctcBatch: spec.mctcBatch ?? Math.min(d.mctcBatch, mctc),
    toolQueueDepth: spec.toolQueueDepth ?? 3 * mctc,
    toolWaitTimeoutMs: spec.toolWaitTimeoutMs ?? d.toolWaitTimeoutMs,
    deadline: { ...d.deadline, ...spec.deadline },
    rateLimits: spec.rateLimits ?? d.rateLimits,
    budget: { ...d.budget, ...spec.budget },
    modelTier: spec.modelTier ?? d.modelTier,
    allowedTools: spec.allowedTools === undefined ? d.allowedTools : spec.allowedTools,
    deniedTools: spec.deniedTools ?? d.deniedTools,
    dataResidency: spec.dataResidency === undefined ? d.dataResidency : spec.dataResidency,
    pools: spec.pools ?? d.pools,
    maxQueueDepth: spec.maxQueueDepth ?? d.maxQueueDepth,
    maxQueueBytes: spec.maxQueueBytes ?? d.maxQueueBytes,
    cell: spec.cell ?? d.cell,
    paused: spec.paused ?? d.paused,
    erasureAfterDays: spec.erasureAfterDays === undefined ? d.erasureAfterDays : spec.erasureAfterDays,
    auditRetentionDays: spec.auditRetentionDays ?? d.auditRetentionDays,
    review: { ...d.review, ...spec.review },
    org: spec.org ?? null,
  };
  const resolved = ResolvedPolicySchema.safeParse(merged);
  if (!resolved.success) return { ok: false, issues: toIssues(resolved.error) };
  return { ok: true, policy: resolved.data, spec };
}

/** How long an ended workflow's data is kept, in whole seconds (at least 1); null: the deployment's record TTL. */
export function retentionSec(p: Pick<TenantPolicy, "erasureAfterDays">): number | null {
  const days = p.erasureAfterDays ?? null; // a policy written before the field: none
  return days === null ? null : Math.max(1, Math.round(days * 86_400));
}

/** How far back a tenant's audit trail reaches (auditRetentionDays), in ms. */
export const trailRetentionMs = (p: Pick<TenantPolicy, "auditRetentionDays">) => Math.round(p.auditRetentionDays * 86_400_000);

export function formatIssues(issues: PolicyIssue[]): string {
  return issues.map((i) => `${i.field}: ${i.message}`).join("; ");
}

/**
 * The part of a policy a running workflow needs (from the exec's live registry), and its org's tool-call
 * bound when its org sets an mctc (added by the exec's live registry: workers/exec.ts).
 */
export type RuntimePolicy = { orgGate?: { name: string; mctc: number } } & Pick<
  TenantPolicy,
  | "tier"
  | "mctc"
  | "mctcBatch"
  | "toolQueueDepth"
  | "toolWaitTimeoutMs"
  | "deadline"
  | "rateLimits"
  | "budget"
  | "modelTier"
  | "dataResidency"
  | "allowedTools"
  | "deniedTools"
  | "review"
>;

export function runtimePolicy(p: TenantPolicy): RuntimePolicy {
  const {
    tier,
    mctc,
    mctcBatch,
    toolQueueDepth,
    toolWaitTimeoutMs,
    deadline,
    rateLimits,
    budget,
    modelTier,
    dataResidency,
    allowedTools,
    deniedTools,
    review,
  } = p;
  return {
    tier,
    mctc,
    mctcBatch,
    toolQueueDepth,
    toolWaitTimeoutMs,
    deadline,
    rateLimits,
    budget,
    modelTier,
    dataResidency,
    allowedTools,
    deniedTools,
    review,
  };
}
