import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { context, trace, SpanKind } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { startDispatcherRole } from "../../workers/dispatcher.ts";
import { startExecRole } from "../../workers/exec.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { httpTool } from "../../src/runtime/httpTool.ts";
import { defineWorkflow } from "../../src/workflows/registry.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * One process, a real Redis, a real OpenTelemetry SDK (in memory): a producer's
 * traceparent is continued by admission, the run and every tool call, and the
 * tool's outgoing HTTP request carries the tool-call span's context.
 */
const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

const received: string[] = [];
let downstream: Server;
let downstreamUrl = "";

httpTool({ name: "traced-lookup", url: () => `${downstreamUrl}/lookup` });
defineWorkflow("traced", async (ctx) => {
  const a = await ctx.tool("traced-lookup", { q: "secret-payload-value" });
  const [b, c] = await ctx.all([{ tool: "traced-lookup" }, { tool: "traced-lookup" }]);
  return { ok: a.ok && b!.ok && c!.ok };
});

describe("traces from the producer's request to tool calls", () => {
  let api: TestApi;
  let stopRoles: (() => Promise<void>)[] = [];
  before(async () => {
    downstream = createServer((req, res) => {
      received.push(String(req.headers.traceparent));
      req.resume().on("end", () => res.writeHead(200, { "Content-Type": "application/json" }).end('{"found":true}'));
    });
    await new Promise<void>((r) => downstream.listen(0, "127.0.0.1", r));
    downstreamUrl = `http://127.0.0.1:${(downstream.address() as { port: number }).port}`;
    api = await startTestApi({ clinic: { tier: "professional" } });
    const log = createLogger("test", "silent");
    const exec = await startExecRole(api.platform, log);
    const dispatcher = await startDispatcherRole(api.platform, log);
    stopRoles = [dispatcher.stop, exec.stop];
  });
  after(async () => {
    for (const stop of stopRoles) await stop();
    await api.stop();
    downstream.close();
  });

  it("keeps one trace id from the producer's traceparent through enqueue, run and every tool call", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const producerSpan = "00f067aa0ba902b7";
    const r = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.clinic,
      body: { type: "traced", class: "A", payload: { note: "secret-payload-value" } },
      headers: { traceparent: `00-${traceId}-${producerSpan}-01` },
    });
    assert.equal(r.status, 202);
    const id: string = r.body.id;
    for (let i = 0; i < 200; i++) {
      const v = await http(api.base, "GET", `/v1/workflows/${id}`, { key: api.keys.clinic });
      if (v.body.state === "completed") break;
      assert.notEqual(v.body.state, "failed", JSON.stringify(v.body.error));
      await sleep(25);
    }
    await sleep(50); // the run span ends after the record says completed
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const byName = (n: string) => spans.filter((s) => s.name === n);
    const [enqueue] = byName("fairlane.enqueue");
    const [run] = byName("fairlane.workflow.run");
    const tools = byName("fairlane.tool_call");
    assert.ok(enqueue && run, `spans in the trace: ${spans.map((s) => s.name).join(", ")}`);
    assert.equal(tools.length, 3, "one span per ctx.tool call");

    const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
    assert.equal(parentOf(enqueue), producerSpan, "enqueue continues the producer's span");
    assert.equal(enqueue.kind, SpanKind.PRODUCER);
    assert.equal(parentOf(run), enqueue.spanContext().spanId, "the run is a child of the enqueue span (stored at admission)");
    assert.equal(run.kind, SpanKind.CONSUMER);
    for (const t of tools) assert.equal(parentOf(t), run.spanContext().spanId, "each tool call is a child of the run");

    for (const s of [enqueue, run, ...tools]) {
      assert.equal(s.attributes["tenant.id"], "clinic", s.name);
      assert.equal(s.attributes["workflow.class"], "A", s.name);
      assert.equal(s.attributes["workflow.id"], id, s.name);
      assert.equal(typeof s.attributes["deadline.remaining_ms"], "number", s.name);
      assert.ok((s.attributes["deadline.remaining_ms"] as number) > 0, s.name);
      assert.ok(!JSON.stringify(s.attributes).includes("secret-payload-value"), `${s.name} carries no payload values`);
    }
    assert.equal(run.attributes["fairlane.outcome"], "completed");
    assert.equal(tools[0]!.attributes["tool.name"], "traced-lookup");

    const toolSpanIds = new Set(tools.map((t) => t.spanContext().spanId));
    const sent = received.filter((h) => h.includes(traceId));
    assert.equal(sent.length, 3, `every outgoing request carries the trace: ${received.join(" ")}`);
    for (const h of sent) assert.ok(toolSpanIds.has(h.split("-")[2]!), `traceparent ${h} names its tool-call span`);
  });

  it("starts a trace when the producer sends none, and a dispatch span records what a dispatch call moved", async () => {
    exporter.reset();
    const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys.clinic, body: { type: "noop", class: "B" } });
    assert.equal(r.status, 202);
    for (let i = 0; i < 200 && !exporter.getFinishedSpans().some((s) => s.name === "fairlane.workflow.run"); i++) await sleep(25);
    const spans = exporter.getFinishedSpans();
    const enqueue = spans.find((s) => s.name === "fairlane.enqueue")!;
    const run = spans.find((s) => s.name === "fairlane.workflow.run")!;
    assert.equal(enqueue.parentSpanContext, undefined, "a new trace");
    assert.equal(run.spanContext().traceId, enqueue.spanContext().traceId);
    const rec = await api.platform.redis.hget(api.platform.keys.cell("default").workflow(r.body.id), "traceparent");
    assert.equal(
      rec,
      `00-${enqueue.spanContext().traceId}-${enqueue.spanContext().spanId}-01`,
      "the record keeps the enqueue span's context",
    );
    const dispatch = spans.find((s) => s.name === "fairlane.dispatch" && s.attributes["fairlane.dispatch.moved"] === 1);
    assert.ok(dispatch, "a dispatch span");
    assert.equal(dispatch.parentSpanContext, undefined, "its own trace");
    assert.equal(dispatch.attributes["fairlane.pool"], "default");
  });
});
