import { createHash, randomBytes } from "node:crypto";
import { ROOT_CONTEXT, SpanKind, type Context, type Span } from "@opentelemetry/api";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { admitWorkflows, type AdmitInput, type AdmitOutcome } from "../../queues/lua/admitWorkflow.ts";
import type { Clock } from "../lib/clock.ts";
import { backpressure, FairlaneError, invalidRequest } from "../lib/errors.ts";
import { metrics } from "../observability/metrics.ts";
import { tenantLabel, tenantLabels } from "../observability/tenantLabel.ts";
import { ATTR, contextFromTraceparent, endSpan, traceOrigin, tracer } from "../observability/tracing.ts";
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
  /** W3C trace context of the enqueue span: the run span's parent (absent in jobs admitted before it existed). */
  traceparent?: string;
  policy: RuntimePolicy;
}

/** The admission outcome label of fairlane_admissions_total. */
type AdmissionOutcome = "accepted" | "duplicate" | "backpressure_tenant" | "backpressure_platform" | "budget_exceeded" | "invalid";
const OUTCOME: Record<AdmitOutcome["kind"], AdmissionOutcome> = {
  ok: "accepted",
  duplicate: "duplicate",
  tenant_full: "backpressure_tenant",
  cell_full: "backpressure_platform",
};

/** Where admission's trace continues from: a context (producer.ts), or a producer's `traceparent` value. */
export type TraceParent = Context | string;
const parentContext = (p: TraceParent) => (typeof p === "string" ? contextFromTraceparent(p) : p);

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
  ) {
    // Every role opens its platform (and so one Admission) over the registry: binding it here
    // gives every process the same tenants with their own metric label (tenantLabel.ts).
    tenantLabels.bind(registry);
  }

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

  /**
   * One workflow, in a `fairlane.enqueue` span (child of `parent`: the producer's
   * request) whose context the workflow carries to its run and tool calls.
   */
  async admitOne(tenant: string, body: unknown, parent: TraceParent = ROOT_CONTEXT): Promise<{ status: 200 | 202; body: Accepted }> {
    const span = tracer.startSpan("fairlane.enqueue", { kind: SpanKind.PRODUCER, attributes: { [ATTR.tenant]: tenant } }, parentContext(parent));
    let code: string | undefined;
    try {
      const entry = this.tenantEntry(tenant);
      const prepared = this.prepare(entry, body, traceOrigin(span));
      if (!prepared.ok) {
        this.count(entry, "none", "invalid");
        throw invalidRequest(`invalid workflow: ${describeIssues(prepared.issues)}`, prepared.issues);
      }
      const { input } = prepared;
      if (span.isRecording()) span.setAttributes(enqueueAttributes(input));
      await this.checkBudget(entry).catch((err: unknown) => {
        this.count(entry, input.cls, "budget_exceeded");
        throw err;
      });
      const [outcome] = await admitWorkflows(this.redis, [{ cell: this.keys.cell(entry.policy.cell), input }]);
      this.count(entry, input.cls, OUTCOME[outcome!.kind]);
      if (span.isRecording()) span.setAttribute("fairlane.admission.outcome", OUTCOME[outcome!.kind]);
      const result = await this.settle(entry, input, outcome!);
      if (result instanceof FairlaneError) throw result;
      return { status: result.duplicate ? 200 : 202, body: result };
    } catch (err) {
      code = (err as { code?: string }).code ?? "INTERNAL";
      throw err;
    } finally {
      endSpan(span, code);
    }
  }

  /** A bulk request: one `fairlane.enqueue` span for the batch; every workflow carries its context. */
  async admitBulk(tenant: string, items: unknown[], parent: TraceParent = ROOT_CONTEXT): Promise<BulkResult> {
    const span = tracer.startSpan("fairlane.enqueue", { kind: SpanKind.PRODUCER, attributes: { [ATTR.tenant]: tenant, "fairlane.bulk.size": items.length } }, parentContext(parent));
    let code: string | undefined;
    try {
      const result = await this.admitBulkIn(span, tenant, items);
      if (span.isRecording()) span.setAttributes({ "fairlane.bulk.accepted": result.accepted.length, "fairlane.bulk.rejected": result.rejected.length });
      return result;
    } catch (err) {
      code = (err as { code?: string }).code ?? "INTERNAL";
      throw err;
    } finally {
      endSpan(span, code);
    }
  }

  private async admitBulkIn(span: Span, tenant: string, items: unknown[]): Promise<BulkResult> {
    const entry = this.tenantEntry(tenant);
    const cell = this.keys.cell(entry.policy.cell);
    const origin = traceOrigin(span);
    const out: BulkResult = { accepted: [], rejected: [] };
    const valid: { index: number; input: AdmitInput }[] = [];
    items.forEach((item, index) => {
      const p = this.prepare(entry, item, origin);
      if (p.ok) valid.push({ index, input: p.input });
      else {
        this.count(entry, "none", "invalid");
        out.rejected.push({
          index,
          error: { code: "INVALID_REQUEST", message: describeIssues(p.issues), details: p.issues },
        });
      }
    });
    if (span.isRecording() && valid.length) span.setAttributes(enqueueAttributes(...valid.map((v) => v.input)));
    if (valid.length)
      await this.checkBudget(entry).catch((err: unknown) => {
        for (const v of valid) this.count(entry, v.input.cls, "budget_exceeded");
        throw err;
      });
    const outcomes = valid.length ? await admitWorkflows(this.redis, valid.map((v) => ({ cell, input: v.input }))) : [];
    for (const [i, outcome] of outcomes.entries()) {
      const { index, input } = valid[i]!;
      this.count(entry, input.cls, OUTCOME[outcome.kind]);
      const r = await this.settle(entry, input, outcome);
      if (r instanceof FairlaneError) out.rejected.push({ index, error: { code: r.code, message: r.message } });
      else out.accepted.push({ index, ...r });
    }
    out.rejected.sort((a, b) => a.index - b.index);
    return out;
  }

  private count(entry: TenantEntry, cls: string, outcome: AdmissionOutcome): void {
    metrics.admissions.inc({ tenant: tenantLabel(entry.tenant, entry.policy.tier), class: cls, outcome });
  }

  private prepare(
    entry: TenantEntry,
    body: unknown,
    { traceId, traceparent }: { traceId: string; traceparent: string },
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
      traceparent,
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

/** Span attributes of one or more admitted workflows: class when they share one, the nearest deadline. */
function enqueueAttributes(...inputs: AdmitInput[]): Record<string, string | number> {
  const a: Record<string, string | number> = {};
  const classes = new Set(inputs.map((i) => i.cls));
  if (classes.size === 1) a[ATTR.cls] = inputs[0]!.cls;
  if (inputs.length === 1) a[ATTR.workflowId] = inputs[0]!.id;
  const deadlines = inputs.map((i) => i.record.deadlineAt).filter((d): d is string => d !== undefined).map(Number);
  if (deadlines.length) a[ATTR.remainingMs] = Math.max(0, Math.min(...deadlines) - inputs[0]!.now);
  return a;
}
