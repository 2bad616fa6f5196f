import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ingressQueue } from "../../queues/names.ts";
import { startDispatcherRole } from "../../workers/dispatcher.ts";
import { startExecRole } from "../../workers/exec.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { httpTool } from "../../src/runtime/httpTool.ts";
import { defineWorkflow } from "../../src/workflows/registry.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * No OpenTelemetry SDK in this process and no `traceparent` from the producer: the record keeps
 * neither a trace context nor a queue name, and the run's tool calls still carry one trace per
 * workflow. The expected trace id is computed here from the id's own characters, and observed at
 * the downstream's own socket, not through Fairlane's code.
 */
const received = new Map<string, string[]>();
let downstream: Server;
let downstreamUrl = "";

httpTool({ name: "derived-lookup", url: () => `${downstreamUrl}/lookup` });
defineWorkflow("derived-traced", async (ctx) => {
  await ctx.tool("derived-lookup", { q: 1 });
  return { traceId: ctx.traceId };
});

/** "f1" and the id's 15 random bytes in hex (docs/observability.md): base64url decoded by hand, not by Buffer. */
function expectedTraceId(id: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const bits = [...id.slice(3)].map((ch) => alphabet.indexOf(ch).toString(2).padStart(6, "0")).join("");
  const bytes = bits.match(/.{8}/g)!.map((b) => Number.parseInt(b, 2).toString(16).padStart(2, "0"));
  return `f1${bytes.join("")}`;
}

describe("a workflow admitted without a trace context", () => {
  let api: TestApi;
  let stopRoles: (() => Promise<void>)[] = [];
  before(async () => {
    downstream = createServer((req, res) => {
      const tenant = String(req.headers["x-tenant-id"]);
      received.set(tenant, [...(received.get(tenant) ?? []), String(req.headers.traceparent)]);
      req.resume().on("end", () => res.writeHead(200, { "Content-Type": "application/json" }).end("{}"));
    });
    await new Promise<void>((r) => downstream.listen(0, "127.0.0.1", r));
    downstreamUrl = `http://127.0.0.1:${(downstream.address() as { port: number }).port}`;
    api = await startTestApi({ clinic: { tier: "professional" } });
  });
  after(async () => {
    for (const stop of stopRoles) await stop();
    await api.stop();
    downstream.close();
  });

  it("is queued with an empty traceparent and no queue name, and runs in a trace derived from its id", async () => {
    const cell = api.platform.keys.cell("default");
    const r = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.clinic,
      body: { workflows: [{ type: "derived-traced" }, { type: "derived-traced" }] },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const ids: string[] = r.body.accepted.map((a: { id: string }) => a.id);
    assert.equal(ids.length, 2);
    // No dispatcher runs yet: both are queued as admission wrote them.
    for (const id of ids) {
      const rec = await api.platform.redis.hgetall(cell.workflow(id));
      assert.equal(rec.state, "queued");
      assert.equal(rec.traceparent, "", "no trace context to keep");
      assert.equal(rec.queue, undefined, "its ingress queue is implied by tenant and class");
      assert.ok(await api.platform.redis.exists(cell.jobKey(ingressQueue("clinic", "B"), id)), "its job is in clinic's Class B queue");
    }

    const log = createLogger("test", "silent");
    const exec = await startExecRole(api.platform, log);
    const dispatcher = await startDispatcherRole(api.platform, log);
    stopRoles = [dispatcher.stop, exec.stop];
    const done = new Map<string, { result: { traceId: string } }>();
    // Bounded for a busy 2-core machine (a run takes milliseconds on a quiet one).
    for (const until = Date.now() + 60_000; Date.now() < until && done.size < ids.length; ) {
      for (const id of ids) {
        const w = await http(api.base, "GET", `/v1/workflows/${id}`, { key: api.keys.clinic });
        if (w.body.state === "completed") done.set(id, w.body);
      }
      await sleep(25);
    }
    assert.equal(done.size, 2, "both ran");
    const sent = received.get("clinic") ?? [];
    assert.equal(sent.length, 2, "one tool call each");
    const traceIds = sent.map((h) => /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(h)?.[1]);
    for (const id of ids) {
      assert.equal(done.get(id)!.result.traceId, expectedTraceId(id), "ctx.traceId names the workflow");
      assert.ok(traceIds.includes(expectedTraceId(id)), `a tool call of ${id} carried its trace id: ${sent.join(", ")}`);
    }
    assert.notEqual(expectedTraceId(ids[0]!), expectedTraceId(ids[1]!), "each workflow of a bulk is a trace of its own");
  });
});
