/** The simulated Downstream's counters (GET /admin/stats): their shape, fresh values and per-tenant rows. */
import type { LlmStats } from "./chatCompletions.ts";

export interface TenantStats {
  inFlight: number;
  peakInFlight: number;
  requests: number;
}

export interface DeadlineRecord {
  idempotencyKey: string | null;
  tenant: string;
  /** The X-Request-Deadline header exactly as received (ISO time or epoch ms), not parsed. */
  deadlineHeader: string | null;
  /** Epoch ms. */
  receivedAt: number;
}

/**
 * Counters since start or the last reset. For /fhir, once nothing is in flight:
 * requests = served + rejected + failed + aborted + duplicates.
 */
export interface DownstreamStats {
  inFlight: number;
  peakInFlight: number;
  capacity: number;
  requests: number;
  served: number;
  /** Answered 503 POOL_EXHAUSTED without executing (at once, or after waiting queueTimeoutMs). */
  rejected: number;
  /** Requests waiting for a connection now (queueTimeoutMs > 0). */
  waiting: number;
  /**
   * The most requests that wanted a connection at once: in flight plus waiting
   * (plus the one turned away). peakDemand / capacity is the pool's peak
   * utilisation, above 1 when callers queue or are refused.
   */
  peakDemand: number;
  /** GET /health calls (health probes), counted apart from /fhir work. */
  probes: number;
  /** Executed, then answered 503 UNAVAILABLE (outage) or 500 INTERNAL (failure rate). */
  failed: number;
  /** Epoch ms of the first of those answers (null: none yet): the earliest any caller could know. */
  firstFailedAt: number | null;
  /** By X-Tenant-Id ("-" when absent). */
  byTenant: Record<string, TenantStats>;
  /** Answered with the stored first response of an already completed Idempotency-Key, not re-executed. */
  duplicates: number;
  /** The last 1,000 /fhir requests, oldest first. */
  deadlines: DeadlineRecord[];
  /** The client closed the connection before the response was sent. */
  aborted: number;
  modelStreams: { started: number; completed: number; cutMidway: number };
  /** POST /v1/chat/completions, counted by chatCompletions.ts. */
  llm: LlmStats;
}

/** The counters this file keeps itself; `llm` comes from ChatCompletions. */
export type OwnStats = Omit<DownstreamStats, "llm">;

export function freshStats(capacity: number): OwnStats {
  return {
    inFlight: 0,
    peakInFlight: 0,
    capacity,
    requests: 0,
    served: 0,
    rejected: 0,
    waiting: 0,
    peakDemand: 0,
    probes: 0,
    failed: 0,
    firstFailedAt: null,
    byTenant: {},
    duplicates: 0,
    deadlines: [],
    aborted: 0,
    modelStreams: { started: 0, completed: 0, cutMidway: 0 },
  };
}

/** A tenant's row in `s`, created at its first request. */
export function tenantStats(s: OwnStats, name: string): TenantStats {
  return (s.byTenant[name] ??= { inFlight: 0, peakInFlight: 0, requests: 0 });
}
