/**
 * The hot-path cost of Fairlane's spans and metrics with no OpenTelemetry SDK
 * registered (the default): what admission, a run and a tool call add per
 * workflow / call, measured as loops of the same API calls they make.
 *   node --import tsx test/bench/tracingOverhead.ts
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { context, ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import { metrics } from "../../src/observability/metrics.ts";
import { tenantLabel } from "../../src/observability/tenantLabel.ts";
import { activeOr, ATTR, contextFromTraceparent, endSpan, traceOrigin, tracer } from "../../src/observability/tracing.ts";

const N = 200_000;
const als = new AsyncLocalStorage<{ toolTrace?: unknown }>();

async function time(name: string, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 10_000; i++) await fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await fn(i);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
  console.log(`${name.padEnd(48)} ${us.toFixed(3)} µs`);
  return us;
}

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const baseline = await time("baseline: an awaited no-op", async () => undefined);
const enqueue = await time("enqueue: span + traceparent + metric", async (i) => {
  const span = tracer.startSpan(
    "fairlane.enqueue",
    { kind: SpanKind.PRODUCER, attributes: { [ATTR.tenant]: "t" } },
    contextFromTraceparent(tp),
  );
  traceOrigin(span);
  metrics.admissions.inc({ tenant: tenantLabel(`t${i % 50}`, "free"), class: "B", outcome: "accepted" });
  endSpan(span);
});
const run = await time("run: span + context + 4 metrics", async (i) => {
  const span = tracer.startSpan("fairlane.workflow.run", { kind: SpanKind.CONSUMER }, contextFromTraceparent(tp));
  const runCtx = trace.setSpan(context.active(), span);
  await context.with(runCtx, async () => {
    const tenant = tenantLabel(`t${i % 50}`, "free");
    metrics.poolWait.observe({ tenant }, 0.002);
    metrics.enqueueToStart.observe({ class: "B" }, 0.01);
    metrics.enqueueToStartByTenant.observe({ tenant, class: "B" }, 0.01);
    metrics.runs.inc({ tenant, class: "B", outcome: "completed" });
  });
  endSpan(span, undefined, { "fairlane.outcome": "completed" });
});
const tool = await time("tool call: span + ALS + context", async () => {
  const span = tracer.startSpan("fairlane.tool_call", { kind: SpanKind.CLIENT }, activeOr(ROOT_CONTEXT));
  const ctx = trace.setSpan(activeOr(ROOT_CONTEXT), span);
  await als.run({ toolTrace: ctx }, () => context.with(ctx, async () => undefined));
  endSpan(span);
});
console.log(
  JSON.stringify({
    perEnqueueUs: +(enqueue - baseline).toFixed(3),
    perRunUs: +(run - baseline).toFixed(3),
    perToolCallUs: +(tool - baseline).toFixed(3),
  }),
);
