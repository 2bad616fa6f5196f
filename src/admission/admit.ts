import { createHash } from "node:crypto";
import { ROOT_CONTEXT, SpanKind, type Context, type Span } from "@opentelemetry/api";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { admitWorkflows, type AdmitInput, type AdmitOutcome } from "../../queues/lua/admitWorkflow.ts";
import type { Clock } from "../lib/clock.ts";
import { randomToken } from "../lib/random.ts";
import { backpressure, FairlaneError, invalidRequest, redisError, redisTrouble } from "../lib/errors.ts";
import { metrics } from "../observability/metrics.ts";
import { tenantLabel, tenantLabels } from "../observability/tenantLabel.ts";
import { ATTR, contextFromTraceparent, endSpan, traceOrigin, tracer } from "../observability/tracing.ts";
import { TenantBudget } from "../runtime/budget.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { PolicyRegistry, TenantEntry } from "../tenancy/registry.ts";
import { readWorkflow } from "../workflows/record.ts";
import { deadlineAtAdmission } from "./deadline.ts";
import { jsonShapeIssues } from "./jsonShape.ts";
import { requestHash } from "./requestHash.ts";
import { describeIssues, fieldIssues, WorkflowRequestSchema, type FieldIssue } from "./schema.ts";
import { TenantCells } from "./tenantCells.ts";
import { WorkflowTypes } from "./workflowTypes.ts";

export interface AdmissionLimits {
  maxQueuedTotal: number;
  idempotencyTtlSec: number;
  retryAfterSec: number;
  maxPayloadBytes: number;
  /** How long an ended workflow's record is kept: run lists reach back this far (FAIRLANE_RECORD_TTL_SEC). */
  recordTtlSec: number;
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

/**
 * A workflow's job `data` is its payload, exactly as a plain BullMQ job would carry it: the id is the
 * job id, the type the job name, and everything else the run needs (tenant, class, enqueue time,
 * trace context, deadline) is in the workflow record, which startRun reads anyway; the policy comes
 * from the exec's live registry. Jobs admitted before this (their record has no `traceparent`)
 * carried an envelope instead, read by the exec for as long as any is still queued.
 */
export interface LegacyJobData {
  v: 1;
  payload: Record<string, unknown>;
  traceparent?: string;
  traceId: string;
  policy: RuntimePolicy;
}

/** The admission outcome label of fairlane_admissions_total. */
type AdmissionOutcome = "accepted" | "duplicate" | "backpressure_tenant" | "backpressure_platform" | "budget_exceeded" | "invalid" | "unavailable";
const OUTCOME: Record<AdmitOutcome["kind"], AdmissionOutcome> = {
  ok: "accepted",
  duplicate: "duplicate",
  conflict: "invalid",
  tenant_full: "backpressure_tenant",
  tenant_bytes_full: "backpressure_tenant",
  cell_full: "backpressure_platform",
  failed: "unavailable",
};

/** Where admission's trace continues from: a context (producer.ts), or a producer's `traceparent` value. */
export type TraceParent = Context | string;
const parentContext = (p: TraceParent) => (typeof p === "string" ? contextFromTraceparent(p) : p);

export const newWorkflowId = () => `wf_${randomToken(15, "base64url")}`;
export const WORKFLOW_ID = /^wf_[A-Za-z0-9_-]{20}$/;

/**
 * Admission: validate one workflow request, fix its deadline, refuse work
 * that can never run (a type no live exec worker has, Class A for a tenant
 * with mcaUrgent 0), and hand it to the admitWorkflow script, which applies
 * idempotency, the tenant's queued count and bytes and the cell's safety
 * valve atomically with the enqueue. Nothing is written unless the script
 * admits (but the cell the tenant's work is in, remembered once per process).
 */
export class Admission {
  private readonly types: WorkflowTypes;
  private readonly cells: TenantCells;

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
    this.types = new WorkflowTypes(redis, keys, clock);
    this.cells = new TenantCells(redis, keys, registry);
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
      const refused = await this.refusal(entry, input);
      if (refused) {
        this.count(entry, "none", "invalid");
        throw refused;
      }
      if (span.isRecording()) span.setAttributes(enqueueAttributes(input));
      await this.checkBudget(entry).catch((err: unknown) => {
        this.count(entry, input.cls, "budget_exceeded");
        throw err;
      });
      await this.cells.note(entry.tenant, entry.policy.cell);
      const [outcome] = await admitWorkflows(this.redis, [{ cell: this.keys.cell(entry.policy.cell), input }]);
      if (outcome!.kind === "failed") throw outcome!.error; // the api's 503 (REDIS_FULL, ...), logged throttled
      this.countOutcome(entry, input, outcome!);
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
    // A bad item is rejected on its own (its index, code and details), as any invalid item always was:
    // one too-deep or unknown-type workflow does not cost the batch its good ones.
    for (const [index, item] of items.entries()) {
      const p = this.prepare(entry, item, origin);
      const refused = p.ok ? await this.refusal(entry, p.input) : invalidRequest(describeIssues(p.issues), p.issues);
      if (p.ok && !refused) valid.push({ index, input: p.input });
      else {
        this.count(entry, "none", "invalid");
        out.rejected.push({ index, error: { code: refused!.code, message: refused!.message, details: refused!.details } });
      }
    }
    if (span.isRecording() && valid.length) span.setAttributes(enqueueAttributes(...valid.map((v) => v.input)));
    if (valid.length)
      await this.checkBudget(entry).catch((err: unknown) => {
        for (const v of valid) this.count(entry, v.input.cls, "budget_exceeded");
        throw err;
      });
    if (valid.length) await this.cells.note(entry.tenant, entry.policy.cell);
    const outcomes = valid.length ? await admitWorkflows(this.redis, valid.map((v) => ({ cell, input: v.input }))) : [];
    // Redis refused every item (away, full, read-only): the request's 503. Refused part-way through
    // (memory ran out mid-bulk): the items it admitted are accepted, the rest rejected with the reason.
    const firstFailure = outcomes.find((o) => o.kind === "failed");
    if (firstFailure && outcomes.every((o) => o.kind === "failed")) throw firstFailure.error;
    for (const [i, outcome] of outcomes.entries()) {
      const { index, input } = valid[i]!;
      this.countOutcome(entry, input, outcome);
      const r = await this.settle(entry, input, outcome);
      if (r instanceof FairlaneError) out.rejected.push({ index, error: { code: r.code, message: r.message, ...(r.details === undefined ? {} : { details: r.details }) } });
      else out.accepted.push({ index, ...r });
    }
    out.rejected.sort((a, b) => a.index - b.index);
    return out;
  }

  private count(entry: TenantEntry, cls: string, outcome: AdmissionOutcome): void {
    metrics.admissions.inc({ tenant: tenantLabel(entry.tenant, entry.policy.tier), class: cls, outcome });
  }

  private countOutcome(entry: TenantEntry, input: AdmitInput, outcome: AdmitOutcome): void {
    const label = OUTCOME[outcome.kind];
    this.count(entry, label === "invalid" ? "none" : input.cls, label);
  }

  /**
   * Work that can never run, refused before anything is written: Class A for a tenant whose
   * mcaUrgent is 0 (the dispatcher starts Class A only under that cap), and a type no live exec
   * worker of the cell can run (accepted while none advertises: src/admission/workflowTypes.ts).
   */
  private async refusal(entry: TenantEntry, input: AdmitInput): Promise<FairlaneError | undefined> {
    if (input.cls === "A" && entry.policy.mcaUrgent === 0)
      return new FairlaneError(
        "CLASS_NOT_ALLOWED",
        `tenant ${entry.tenant} may not run Class A: its policy's mcaUrgent is 0, so a Class A workflow would never start (send class B, or raise mcaUrgent)`,
        422,
        { field: "class", policy: "mcaUrgent", mcaUrgent: 0 },
      );
    const verdict = await this.types.check(entry.policy.cell, input.type);
    if (!verdict.ok)
      return new FairlaneError(
        "UNKNOWN_WORKFLOW_TYPE",
        `no exec worker can run workflow type "${input.type}"; known types: ${verdict.known.slice(0, 20).join(", ")}${verdict.known.length > 20 ? ", ..." : ""}`,
        400,
        { field: "type", type: input.type, known: verdict.known.slice(0, 100) },
      );
    return undefined;
  }

  /** Cells that may hold the tenant's workflows, its current cell first (tenantCells.ts). */
  workflowCells(tenant: string): Promise<string[]> {
    return this.cells.of(tenant, this.tenantEntry(tenant).policy.cell);
  }

  private prepare(
    entry: TenantEntry,
    body: unknown,
    { traceparent }: { traceparent: string },
  ): { ok: true; input: AdmitInput } | { ok: false; issues: FieldIssue[] } {
    // Before anything that recurses (zod, JSON.stringify): too deep, __proto__, Infinity (jsonShape.ts).
    const shape = jsonShapeIssues(body);
    if (shape.length) return { ok: false, issues: shape };
    const parsed = WorkflowRequestSchema.safeParse(body);
    if (!parsed.success) return { ok: false, issues: fieldIssues(parsed.error) };
    const req = parsed.data;
    const now = this.clock.now();
    const { policy } = entry;
    const payloadJson = JSON.stringify(req.payload);
    const payloadBytes = Buffer.byteLength(payloadJson);
    if (payloadBytes > this.limits.maxPayloadBytes)
      return { ok: false, issues: [{ field: "payload", message: `larger than ${this.limits.maxPayloadBytes} bytes` }] };
    // Larger than all the tenant may ever have queued: no retry would help, so not a 429.
    if (payloadBytes > policy.maxQueueBytes)
      return { ok: false, issues: [{ field: "payload", message: `larger than the tenant's maxQueueBytes (${policy.maxQueueBytes} bytes)` }] };
    const requested = req.deadlineAt === undefined ? undefined : Date.parse(req.deadlineAt);
    if (requested !== undefined && requested <= now)
      return { ok: false, issues: [{ field: "deadlineAt", message: "is already in the past" }] };
    const deadlineAt = deadlineAtAdmission(req.class, now, policy.deadline.runBudgetMs, requested);
    const id = newWorkflowId();
    const record: Record<string, string> = {
      tenant: entry.tenant,
      type: req.type,
      class: req.class,
      state: "queued",
      queue: `ingress.${entry.tenant}.${req.class}`,
      enqueuedAt: String(now),
      traceparent,
    };
    if (deadlineAt !== null) record.deadlineAt = String(deadlineAt);
    // Class C's run budget starts at dispatch (dispatch-18.lua); A and B have it in their deadline already.
    if (req.class === "C") record.runBudgetMs = String(policy.deadline.runBudgetMs);
    return {
      ok: true,
      input: {
        id,
        tenant: entry.tenant,
        cls: req.class,
        type: req.type,
        data: payloadJson,
        now,
        idempotencyHash: req.idempotencyKey && createHash("sha256").update(req.idempotencyKey).digest("hex"),
        requestHash: req.idempotencyKey ? requestHash(req, requested) : undefined,
        idempotencyTtlSec: this.limits.idempotencyTtlSec,
        maxQueueDepth: policy.maxQueueDepth,
        payloadBytes,
        maxQueueBytes: policy.maxQueueBytes,
        maxQueuedTotal: this.limits.maxQueuedTotal,
        record,
        // Twice the record TTL: an entry outlives the record of a workflow that stayed open for up to a TTL
        // (parked, paused); lists drop entries whose record expired as they read them.
        listRetentionMs: 2 * this.limits.recordTtlSec * 1000,
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
      case "conflict":
        return new FairlaneError(
          "IDEMPOTENCY_KEY_REUSED",
          "this idempotencyKey was already used for a different request (type, class, payload or deadlineAt differ); send the same request to replay it, or use a new key",
          409,
          { field: "idempotencyKey", id: outcome.id },
        );
      case "tenant_bytes_full":
        return backpressure(
          `tenant ${entry.tenant} has ${outcome.bytes} payload bytes queued; ${input.payloadBytes ?? 0} more would pass its maxQueueBytes of ${entry.policy.maxQueueBytes}`,
          retryAfterSec,
        );
      case "tenant_full":
        return backpressure(
          `tenant ${entry.tenant} has ${outcome.depth} workflows queued, its maxQueueDepth is ${entry.policy.maxQueueDepth}`,
          retryAfterSec,
        );
      case "cell_full":
        return backpressure(`the platform has ${outcome.queued} workflows queued (safety valve)`, retryAfterSec);
      case "failed": {
        const trouble = redisTrouble(outcome.error);
        if (!trouble) throw outcome.error; // not Redis being away or full: a bug, the request's 500
        return redisError(trouble, retryAfterSec);
      }
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
