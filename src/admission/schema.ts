import { z } from "zod";

export const WORKFLOW_TYPE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** One workflow as a producer sends it. Unknown fields are refused, so a typo never passes silently. */
export const WorkflowRequestSchema = z.strictObject({
  type: z.string().regex(WORKFLOW_TYPE, "must be 1-64 of lowercase letters, digits, '.', '_' or '-'"),
  class: z.enum(["A", "B", "C"]).default("B"),
  payload: z.record(z.string(), z.unknown()).default({}),
  idempotencyKey: z.string().min(1).max(200).optional(),
  deadlineAt: z.iso.datetime({ offset: true, message: "must be an ISO 8601 time with a zone, e.g. 2026-11-24T10:00:00Z" }).optional(),
});
export type WorkflowRequest = z.infer<typeof WorkflowRequestSchema>;
/** What a producer may send (defaults not yet applied). */
export type WorkflowRequestInput = z.input<typeof WorkflowRequestSchema>;

export const MAX_BULK = 1000;

export const BulkRequestSchema = z.strictObject({
  workflows: z.array(z.unknown()).min(1, "must hold at least one workflow").max(MAX_BULK, `at most ${MAX_BULK} workflows per request`),
});

export interface FieldIssue {
  field: string;
  message: string;
}

export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((i) => ({ field: i.path.join(".") || "(body)", message: i.message }));
}

export function describeIssues(issues: FieldIssue[]): string {
  return issues.map((i) => `${i.field}: ${i.message}`).join("; ");
}
