/**
 * The job contract between admission (src/admission, through queues/lua/includes/admit.lua) and the exec
 * workers (src/exec): what a workflow's BullMQ job carries from ingress.<tenant>.<class> through the
 * dispatcher to exec.<pool>. Neither side imports the other: both read this.
 *
 * A workflow's job `data` is its payload, exactly as a plain BullMQ job would carry it: the id is the
 * job id, the type the job name, and everything else the run needs (tenant, class, enqueue time,
 * trace context, deadline) is in the workflow record (queues/keys.ts `<cell>:wf:<id>`), which startRun
 * reads anyway; the policy comes from the exec's live registry.
 */
export type IngressJobData = Record<string, unknown>;

/**
 * Jobs admitted before that (their record has no `traceparent`) carried an envelope instead, read by
 * the exec for as long as any is still queued. `Policy` is the tenant's RuntimePolicy
 * (src/tenancy/policy.ts) as admission saw it: the queues sit below tenancy, so the reader names it.
 */
export interface LegacyJobData<Policy> {
  v: 1;
  payload: Record<string, unknown>;
  traceparent?: string;
  traceId: string;
  policy: Policy;
}
