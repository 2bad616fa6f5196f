import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { admitWorkflows, type AdmitInput, type AdmitOutcome } from "../../queues/lua/admitWorkflow.ts";
import type { Clock } from "../lib/clock.ts";
import { backpressure, FairlaneError, invalidRequest } from "../lib/errors.ts";
import { TenantBudget } from "../runtime/budget.ts";
import { runtimePolicy, type RuntimePolicy } from "../tenancy/policy.ts";
import type { PolicyRegistry, TenantEntry } from "../tenancy/registry.ts";
import { readWorkflow } from "../workflows/record.ts";
import { deadlineAtAdmission } from "./deadline.ts";
import { describeIssues, fieldIssues, WorkflowRequestSchema, type FieldIssue } from "./schema.ts";

export interface AdmissionLimits {
  maxQueuedTotal: number;
  idempotencyTtlSec: number;
  retryAfterSec: number;
  maxPayloadBytes: number;
}

export interface Accepted {
  id: string;
  tenant: string;
  class: string;
  state: string;
  enqueuedAt: string | null;
  deadlineAt: string | null;
  /** True when an earlier request with the same idempotency key created this workflow. */
  duplicate?: boolean;
}

export interface BulkResult {
  accepted: ({ index: number } & Accepted)[];
  rejected: { index: number; error: { code: string; message: string; details?: unknown } }[];
}

/** The job data every later stage reads: the dispatcher, the runtime, the recovery worker. */
export interface IngressJobData {
  v: 1;
  workflowId: string;
  tenant: string;
  class: "A" | "B" | "C";
  type: string;
  payload: Record<string, unknown>;
  enqueuedAt: number;
  deadlineAt: number | null;
  runBudgetMs: number;
  traceId: string;
  policy: RuntimePolicy;
}

export const newWorkflowId = () => `wf_${randomBytes(15).toString("base64url")}`;
export const WORKFLOW_ID = /^wf_[A-Za-z0-9_-]{20}$/;

/**
 * Admission: validate one workflow request, fix its deadline, and hand it to
 * the admitWorkflow script, which applies idempotency and both safety valves
 * atomically with the enqueue. Nothing is written unless the script admits.
 */
export class Admission {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly registry: PolicyRegistry,
    private readonly clock: Clock,
    private readonly limits: AdmissionLimits,
  ) {}

  get retryAfterSec(): number {
    return this.limits.retryAfterSec;
  }

  tenantEntry(tenant: string): TenantEntry {
    const entry = this.registry.get(tenant);
    if (!entry) throw new FairlaneError("TENANT_UNKNOWN", `tenant "${tenant}" has no policy`, 403);
    return entry;
  }

  /** A tenant whose monthly cost budget is spent gets no new workflows (one GET). */
  private async checkBudget(entry: TenantEntry): Promise<void> {
    const budget = new TenantBudget(this.redis, this.keys.cell(entry.policy.cell).budgetPrefix, this.clock);
    if (!(await budget.canAdmit(entry.tenant, entry.policy.budget.monthlyUsd)))
      throw new FairlaneError("BUDGET_EXCEEDED", `tenant ${entry.tenant} has spent its monthly budget of $${entry.policy.budget.monthlyUsd}`, 402);
  }

  async admitOne(tenant: string, body: unknown, traceId: string): Promise<{ status: 200 | 202; body: Accepted }> {
    const entry = this.tenantEntry(tenant);
    const prepared = this.prepare(entry, body, traceId);
    if (!prepared.ok) throw invalidRequest(`invalid workflow: ${describeIssues(prepared.issues)}`, prepared.issues);
    await this.checkBudget(entry);
    const [outcome] = await admitWorkflows(this.redis, [{ cell: this.keys.cell(entry.policy.cell), input: prepared.input }]);
    const result = await this.settle(entry, prepared.input, outcome!);
    if (result instanceof FairlaneError) throw result;
    return { status: result.duplicate ? 200 : 202, body: result };
  }

  async admitBulk(tenant: string, items: unknown[], traceId: string): Promise<BulkResult> {
    const entry = this.tenantEntry(tenant);
    const cell = this.keys.cell(entry.policy.cell);
    const out: BulkResult = { accepted: [], rejected: [] };
    const valid: { index: number; input: AdmitInput }[] = [];
    items.forEach((item, index) => {
      const p = this.prepare(entry, item, traceId);
      if (p.ok) valid.push({ index, input: p.input });
      else
        out.rejected.push({
          index,
          error: { code: "INVALID_REQUEST", message: describeIssues(p.issues), details: p.issues },
        });
    });
    if (valid.length) await this.checkBudget(entry);
    const outcomes = valid.length ? await admitWorkflows(this.redis, valid.map((v) => ({ cell, input: v.input }))) : [];
    for (const [i, outcome] of outcomes.entries()) {
      const { index, input } = valid[i]!;
      const r = await this.settle(entry, input, outcome);
      if (r instanceof FairlaneError) out.rejected.push({ index, error: { code: r.code, message: r.message } });
      else out.accepted.push({ index, ...r });
    }
    out.rejected.sort((a, b) => a.index - b.index);
    return out;
  }

  private prepare(
    entry: TenantEntry,
    body: unknown,
    traceId: string,
  ): { ok: true; input: AdmitInput } | { ok: false; issues: FieldIssue[] } {
    const parsed = WorkflowRequestSchema.safeParse(body);
    if (!parsed.success) return { ok: false, issues: fieldIssues(parsed.error) };
    const req = parsed.data;
    const now = this.clock.now();
    const payloadJson = JSON.stringify(req.payload);
    if (Buffer.byteLength(payloadJson) > this.limits.maxPayloadBytes)
      return { ok: false, issues: [{ field: "payload", message: `larger than ${this.limits.maxPayloadBytes} bytes` }] };
    const requested = req.deadlineAt === undefined ? undefined : Date.parse(req.deadlineAt);
    if (requested !== undefined && requested <= now)
      return { ok: false, issues: [{ field: "deadlineAt", message: "is already in the past" }] };
    const { policy } = entry;
    const deadlineAt = deadlineAtAdmission(req.class, now, policy.deadline.runBudgetMs, requested);
    const id = newWorkflowId();
    const data: IngressJobData = {
      v: 1,
      workflowId: id,
      tenant: entry.tenant,
      class: req.class,
      type: req.type,
      payload: req.payload,
      enqueuedAt: now,
      deadlineAt,
      runBudgetMs: policy.deadline.runBudgetMs,
      traceId,
      policy: runtimePolicy(policy),
    };
    const record: Record<string, string> = {
      tenant: entry.tenant,
      type: req.type,
      class: req.class,
      state: "queued",
      queue: `ingress.${entry.tenant}.${req.class}`,
      enqueuedAt: String(now),
      runBudgetMs: String(policy.deadline.runBudgetMs),
      attempts: "0",
      traceId,
    };
    if (deadlineAt !== null) record.deadlineAt = String(deadlineAt);
    return {
      ok: true,
      input: {
        id,
        tenant: entry.tenant,
        cls: req.class,
        type: req.type,
        data: JSON.stringify(data),
        now,
        idempotencyHash: req.idempotencyKey && createHash("sha256").update(req.idempotencyKey).digest("hex"),
        idempotencyTtlSec: this.limits.idempotencyTtlSec,
        maxQueueDepth: policy.maxQueueDepth,
        maxQueuedTotal: this.limits.maxQueuedTotal,
        record,
      },
    };
  }

  private async settle(entry: TenantEntry, input: AdmitInput, outcome: AdmitOutcome): Promise<Accepted | FairlaneError> {
    const { retryAfterSec } = this.limits;
    switch (outcome.kind) {
      case "ok":
        return {
          id: outcome.id,
          tenant: entry.tenant,
          class: input.cls,
          state: "queued",
          enqueuedAt: new Date(input.now).toISOString(),
          deadlineAt: input.record.deadlineAt ? new Date(Number(input.record.deadlineAt)).toISOString() : null,
        };
      case "duplicate": {
        const view = await readWorkflow(this.redis, this.keys.cell(entry.policy.cell), outcome.id, entry.tenant);
        if (!view) return new FairlaneError("CONFLICT", "idempotency key names a workflow that no longer exists", 409);
        const { id, tenant, class: cls, state, enqueuedAt, deadlineAt } = view;
        return { id, tenant, class: cls, state, enqueuedAt, deadlineAt, duplicate: true };
      }
      case "tenant_full":
        return backpressure(
          `tenant ${entry.tenant} has ${outcome.depth} workflows queued, its maxQueueDepth is ${entry.policy.maxQueueDepth}`,
          retryAfterSec,
        );
      case "cell_full":
        return backpressure(`the platform has ${outcome.queued} workflows queued (safety valve)`, retryAfterSec);
    }
  }
}
