import { setImmediate as yieldToLoop } from "node:timers/promises";
import { ROOT_CONTEXT, SpanKind, type Context, type Span } from "@opentelemetry/api";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { admitWorkflows, type AdmissionBudget, type AdmitInput, type AdmitOutcome } from "../../queues/lua/admitWorkflow.ts";
import type { Clock } from "../lib/clock.ts";
import { FairlaneError, invalidRequest } from "../lib/errors.ts";
import { metrics } from "../observability/metrics.ts";
import { tenantLabel, tenantLabels } from "../observability/tenantLabel.ts";
import { ATTR, contextFromTraceparent, endSpan, traceOrigin, tracer } from "../observability/tracing.ts";
import { TenantBudget } from "../runtime/budget.ts";
import type { PolicyRegistry, TenantEntry } from "../tenancy/registry.ts";
import { prepareWorkflow, type AdmissionLimits } from "./prepare.ts";
import { refusal } from "./refusal.ts";
import { describeIssues } from "./schema.ts";
import { settle, type Accepted, type BulkResult } from "./settle.ts";
import { TenantCells } from "./tenantCells.ts";
import { WorkflowTypes } from "./workflowTypes.ts";

export type { AdmissionLimits } from "./prepare.ts";
export type { Accepted, BulkResult } from "./settle.ts";
export { newWorkflowId, WORKFLOW_ID } from "./workflowId.ts";

/** The admission outcome label of fairlane_admissions_total. */
type AdmissionOutcome =
  | "accepted"
  | "duplicate"
  | "backpressure_tenant"
  | "backpressure_platform"
  | "budget_exceeded"
  | "invalid"
  | "unavailable";
const OUTCOME: Record<AdmitOutcome["kind"], AdmissionOutcome> = {
  ok: "accepted",
  duplicate: "duplicate",
  conflict: "invalid",
  tenant_full: "backpressure_tenant",
  tenant_bytes_full: "backpressure_tenant",
  cell_full: "backpressure_platform",
  budget_exceeded: "budget_exceeded",
  failed: "unavailable",
};

/**
 * A bulk is prepared and sent BULK_CHUNK items at a time, yielding to the event loop in between: another
 * tenant's request in the same process (a Class A admission, a health check) waits for one chunk, not for
 * a 1,000-item bulk (measured: a Class A admission during a 1,200-item bulk took 46-214 ms before).
 * The chunks go on a connection of their own (`bulkRedis`): Redis answers a connection's commands in the
 * order sent, so a single admission sent behind a chunk's 100 scripts waited for all of them (~30 ms at
 * the storm benchmark's batch arrival), while Redis serves two connections in turns.
 */
export const BULK_CHUNK = 100;
/**
 * A bulk of this many items or fewer goes on the request connection, as single admissions do: it holds
 * them up no more than a few single admissions would, and it is not held up behind another tenant's
 * chunks on the bulk connection (the storm benchmark's Class A trickle, sent as bulks of one, was).
 */
export const BULK_SMALL = 10;

/** Where admission's trace continues from: a context (producer.ts), or a producer's `traceparent` value. */
export type TraceParent = Context | string;
const parentContext = (p: TraceParent) => (typeof p === "string" ? contextFromTraceparent(p) : p);

/**
 * Admission: validate one workflow request, fix its deadline (prepare.ts), refuse work
 * that can never run (refusal.ts: a type no live exec worker has, Class A for a tenant
 * with mcaUrgent 0), and hand it to the admitWorkflow script, which applies
 * idempotency, the monthly budgets, the tenant's queued count and bytes and the
 * cell's safety valve atomically with the enqueue; settle.ts turns its outcome into the answer.
 * Nothing is written unless the script admits (but the cell the tenant's work is in,
 * remembered once per process).
 */
export class Admission {
  private readonly types: WorkflowTypes;
  private readonly cells: TenantCells;
  /** Per cell: where its tenants' month spend is (budgetPrefix). */
  private readonly budgets = new Map<string, TenantBudget>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly registry: PolicyRegistry,
    private readonly clock: Clock,
    private readonly limits: AdmissionLimits,
    /** Where a bulk of more than BULK_SMALL items sends its scripts; the same connection unless given one of its own. */
    private readonly bulkRedis: Redis = redis,
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

  hasTenant(tenant: string): boolean {
    return this.registry.get(tenant) !== undefined;
  }

  tenantEntry(tenant: string): TenantEntry {
    const entry = this.registry.get(tenant);
    if (!entry) throw new FairlaneError("TENANT_UNKNOWN", `tenant "${tenant}" has no policy`, 403);
    return entry;
  }

  /** Cells that may hold the tenant's workflows, its current cell first (tenantCells.ts). */
  workflowCells(tenant: string): Promise<string[]> {
    return this.cells.of(tenant, this.tenantEntry(tenant).policy.cell);
  }

  /**
   * The monthly budgets the admitWorkflow script holds the tenant's new work to: its own, and its org's
   * (src/tenancy/orgs.ts). The script refuses when either is spent; settle.ts names whose, never another
   * tenant's spend.
   */
  private budgetOf(entry: TenantEntry): AdmissionBudget {
    const cell = entry.policy.cell;
    let budget = this.budgets.get(cell);
    if (!budget)
      this.budgets.set(
        cell,
        (budget = new TenantBudget(this.redis, this.keys.cell(cell).budgetPrefix, this.clock, undefined, this.registry)),
      );
    return budget.admissionBudget(entry.tenant, entry.policy.budget.monthlyUsd);
  }

  /**
   * One workflow, in a `fairlane.enqueue` span (child of `parent`: the producer's
   * request) whose context the workflow carries to its run and tool calls.
   */
  async admitOne(
    tenant: string,
    body: unknown,
    parent: TraceParent = ROOT_CONTEXT,
    by?: string,
  ): Promise<{ status: 200 | 202; body: Accepted }> {
    const span = tracer.startSpan(
      "fairlane.enqueue",
      { kind: SpanKind.PRODUCER, attributes: { [ATTR.tenant]: tenant } },
      parentContext(parent),
    );
    let code: string | undefined;
    try {
      const entry = this.tenantEntry(tenant);
      const prepared = prepareWorkflow(entry, body, traceOrigin(span), this.clock, this.limits);
      if (!prepared.ok) {
        this.count(entry, "none", "invalid");
        throw invalidRequest(`invalid workflow: ${describeIssues(prepared.issues)}`, prepared.issues);
      }
      const { input } = prepared;
      input.by = by;
      input.budget = this.budgetOf(entry);
      const refused = await refusal(this.types, entry, input);
      if (refused) {
        this.count(entry, "none", "invalid");
        throw refused;
      }
      if (span.isRecording()) span.setAttributes(enqueueAttributes(input));
      await this.cells.note(entry.tenant, entry.policy.cell);
      const [outcome] = await admitWorkflows(this.redis, [{ cell: this.keys.cell(entry.policy.cell), input }]);
      if (outcome!.kind === "failed") throw outcome!.error; // the api's 503 (REDIS_FULL, ...), logged throttled
      this.countOutcome(entry, input, outcome!);
      if (span.isRecording()) span.setAttribute("fairlane.admission.outcome", OUTCOME[outcome!.kind]);
      const result = await settle(this.settleDeps(), entry, input, outcome!);
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
  /** `by`: who admits, for the tenant's audit trail (key:<api key id>). */
  async admitBulk(tenant: string, items: unknown[], parent: TraceParent = ROOT_CONTEXT, by?: string): Promise<BulkResult> {
    const span = tracer.startSpan(
      "fairlane.enqueue",
      { kind: SpanKind.PRODUCER, attributes: { [ATTR.tenant]: tenant, "fairlane.bulk.size": items.length } },
      parentContext(parent),
    );
    let code: string | undefined;
    try {
      const result = await this.admitBulkIn(span, tenant, items, by);
      if (span.isRecording())
        span.setAttributes({ "fairlane.bulk.accepted": result.accepted.length, "fairlane.bulk.rejected": result.rejected.length });
      return result;
    } catch (err) {
      code = (err as { code?: string }).code ?? "INTERNAL";
      throw err;
    } finally {
      endSpan(span, code);
    }
  }

  private async admitBulkIn(span: Span, tenant: string, items: unknown[], by: string | undefined): Promise<BulkResult> {
    const entry = this.tenantEntry(tenant);
    const cell = this.keys.cell(entry.policy.cell);
    const traceparent = traceOrigin(span);
    const out: BulkResult = { accepted: [], rejected: [] };
    const valid: { index: number; input: AdmitInput }[] = [];
    const budget = this.budgetOf(entry);
    // A bad item is rejected on its own (its index, code and details), as any invalid item always was:
    // one too-deep or unknown-type workflow does not cost the batch its good ones.
    for (const [index, item] of items.entries()) {
      if (index > 0 && index % BULK_CHUNK === 0) await yieldToLoop();
      const p = prepareWorkflow(entry, item, traceparent, this.clock, this.limits);
      const refused = p.ok ? await refusal(this.types, entry, p.input) : invalidRequest(describeIssues(p.issues), p.issues);
      if (p.ok && !refused) valid.push({ index, input: { ...p.input, by, budget } });
      else {
        this.count(entry, "none", "invalid");
        out.rejected.push({ index, error: { code: refused!.code, message: refused!.message, details: refused!.details } });
      }
    }
    if (span.isRecording() && valid.length) span.setAttributes(enqueueAttributes(...valid.map((v) => v.input)));
    if (valid.length) await this.cells.note(entry.tenant, entry.policy.cell);
    const outcomes = valid.length
      ? await admitWorkflows(
          valid.length <= BULK_SMALL ? this.redis : this.bulkRedis,
          valid.map((v) => ({ cell, input: v.input })),
          BULK_CHUNK,
        )
      : [];
    // Redis refused every item (away, full, read-only): the request's 503. Refused part-way through
    // (memory ran out mid-bulk): the items it admitted are accepted, the rest rejected with the reason.
    const firstFailure = outcomes.find((o) => o.kind === "failed");
    if (firstFailure && outcomes.every((o) => o.kind === "failed")) throw firstFailure.error;
    // A spent month refuses the whole request (402), as it does a single admission.
    if (outcomes.length && outcomes.every((o) => o.kind === "budget_exceeded")) {
      for (const v of valid) this.count(entry, v.input.cls, "budget_exceeded");
      throw await settle(this.settleDeps(), entry, valid[0]!.input, outcomes[0]!);
    }
    for (const [i, outcome] of outcomes.entries()) {
      if (i > 0 && i % BULK_CHUNK === 0) await yieldToLoop();
      const { index, input } = valid[i]!;
      this.countOutcome(entry, input, outcome);
      const r = await settle(this.settleDeps(), entry, input, outcome);
      if (r instanceof FairlaneError)
        out.rejected.push({
          index,
          error: { code: r.code, message: r.message, ...(r.details === undefined ? {} : { details: r.details }) },
        });
      else out.accepted.push({ index, ...r });
    }
    out.rejected.sort((a, b) => a.index - b.index);
    return out;
  }

  private settleDeps() {
    return { redis: this.redis, keys: this.keys, retryAfterSec: this.limits.retryAfterSec };
  }

  private count(entry: TenantEntry, cls: string, outcome: AdmissionOutcome): void {
    metrics.admissions.inc({ tenant: tenantLabel(entry.tenant, entry.policy.tier), class: cls, outcome });
  }

  private countOutcome(entry: TenantEntry, input: AdmitInput, outcome: AdmitOutcome): void {
    const label = OUTCOME[outcome.kind];
    this.count(entry, label === "invalid" ? "none" : input.cls, label);
  }
}

/** Span attributes of one or more admitted workflows: class when they share one, the nearest deadline. */
function enqueueAttributes(...inputs: AdmitInput[]): Record<string, string | number> {
  const a: Record<string, string | number> = {};
  const classes = new Set(inputs.map((i) => i.cls));
  if (classes.size === 1) a[ATTR.cls] = inputs[0]!.cls;
  if (inputs.length === 1) a[ATTR.workflowId] = inputs[0]!.id;
  const deadlines = inputs
    .map((i) => i.record.deadlineAt)
    .filter((d): d is string => d !== undefined)
    .map(Number);
  if (deadlines.length) a[ATTR.remainingMs] = Math.max(0, Math.min(...deadlines) - inputs[0]!.now);
  return a;
}
