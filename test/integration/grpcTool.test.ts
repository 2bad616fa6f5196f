import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { createContext } from "../../src/runtime/context.ts";
import { grpcTool } from "../../src/runtime/grpcTool.ts";
import type { ToolGate } from "../../src/runtime/toolGate.ts";
import { resolvePolicy, runtimePolicy, type PolicySpec } from "../../src/tenancy/policy.ts";
import { contextDeps, startTestGate } from "../helpers/gate.ts";

/**
 * grpcTool through ctx.tool on a real Redis and ToolGate, against a real gRPC
 * server (test/fixtures/grpc/lookup.proto). The server records, per call, the
 * deadline and metadata it saw and whether it saw the call cancelled, and
 * counts its own concurrent calls; the request tells it to delay or to fail.
 */
interface FindRequest {
  query: string;
  delayMs: number;
  failCode: string;
  failTimes: number;
}
interface Seen {
  query: string;
  key: string;
  tenant: string;
  traceparent: string;
  requestDeadline: string;
  /** call.getDeadline() as epoch ms (Infinity: none). */
  deadline: number;
  /** When the handler ran: the server read the call's grpc-timeout before this. */
  receivedAt: number;
  cancelledAt?: number;
}

const packageDefinition = protoLoader.loadSync(fileURLToPath(new URL("../fixtures/grpc/lookup.proto", import.meta.url)), {
  defaults: true,
});
const proto = grpc.loadPackageDefinition(packageDefinition) as { fairlane: { test: { Lookup: grpc.ServiceClientConstructor } } };
const Lookup = proto.fairlane.test.Lookup;

const seen: Seen[] = [];
const attemptsByKey = new Map<string, number>();
let inFlight = 0;
let peak = 0;

function find(call: grpc.ServerUnaryCall<FindRequest, { answer: string }>, callback: grpc.sendUnaryData<{ answer: string }>): void {
  const get = (key: string) => String(call.metadata.get(key)[0] ?? "");
  const deadline = call.getDeadline();
  const s: Seen = {
    query: call.request.query,
    key: get("idempotency-key"),
    tenant: get("x-tenant-id"),
    traceparent: get("traceparent"),
    requestDeadline: get("x-request-deadline"),
    deadline: deadline instanceof Date ? deadline.getTime() : deadline,
    receivedAt: Date.now(),
  };
  seen.push(s);
  const attempt = (attemptsByKey.get(s.key) ?? 0) + 1;
  attemptsByKey.set(s.key, attempt);
  inFlight++;
  peak = Math.max(peak, inFlight);
  let done = false;
  const finish = () => {
    if (!done) inFlight--;
    done = true;
  };
  const timer = setTimeout(() => {
    finish();
    const { failCode, failTimes, query } = call.request;
    if (failCode && attempt <= failTimes)
      callback({ code: grpc.status[failCode as keyof typeof grpc.status], details: `no answer for ${query}` });
    else callback(null, { answer: `found ${query}` });
  }, call.request.delayMs);
  call.on("cancelled", () => {
    clearTimeout(timer);
    s.cancelledAt = Date.now();
    finish();
  });
}

let address = "";
let client: grpc.Client | undefined;
const lookupClient = () => (client ??= new Lookup(address, grpc.credentials.createInsecure()));
type FindArgs = Partial<FindRequest> & { query: string };

grpcTool<FindArgs, { answer: string }>({ name: "grpc-find", dependency: "lookup", client: lookupClient, method: "Find" });
grpcTool<FindArgs>({ name: "grpc-watch", client: lookupClient, method: "Watch" });

const seenFor = (query: string) => seen.filter((s) => s.query === query);

/**
 * The server's deadline is `expected` give or take what the wire can do to it: the client sends
 * the time left (rounded up to the ms) at send time and the server adds it to its read time, so
 * the server's deadline is late by the transit (at most from `sentAt` to the handler), never early.
 * On an idle machine that is a few ms; the bound stays exact on a busy one.
 */
function assertDeadline(s: Seen, expected: number, sentAt: number): void {
  const skew = s.deadline - expected;
  const transit = s.receivedAt - sentAt;
  assert.ok(
    skew >= -5 && skew <= transit + 5,
    `the server's deadline is ${skew} ms off ${new Date(expected).toISOString()} (transit at most ${transit} ms)`,
  );
}

async function until(what: string, check: () => boolean, ms = 2_000): Promise<void> {
  for (const end = Date.now() + ms; !check(); await sleep(10)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
}

describe("grpcTool", () => {
  let redis: Redis;
  let keys: Keys;
  let gate: ToolGate;
  let closeGate: () => Promise<void>;
  let server: grpc.Server;
  const timers: NodeJS.Timeout[] = [];

  before(async () => {
    ({ redis, keys, gate, close: closeGate } = await startTestGate());
    server = new grpc.Server();
    server.addService(Lookup.service, {
      Find: find,
      Watch: (call: grpc.ServerWritableStream<FindRequest, { answer: string }>) => call.end(),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });
  after(async () => {
    for (const t of timers) clearTimeout(t);
    client?.close();
    server.forceShutdown();
    await closeGate();
  });

  /** A run's context as exec builds it: its signal fires "deadline" at the deadline. */
  function make(tenant: string, spec: PolicySpec, deadlineMs: number | null = 10_000) {
    const r = resolvePolicy(spec);
    assert.ok(r.ok);
    const cell = keys.cell("default");
    const controller = new AbortController();
    const deadlineAt = deadlineMs === null ? null : Date.now() + deadlineMs;
    if (deadlineMs !== null) timers.push(setTimeout(() => controller.abort("deadline"), deadlineMs));
    const made = createContext(contextDeps(redis, gate, keys), {
      cellName: "default",
      cell,
      workflowId: `wf_${tenant}_${randomBytes(3).toString("hex")}`,
      tenant,
      cls: "B",
      type: "t",
      payload: {},
      deadlineAt,
      traceId: randomBytes(16).toString("hex"),
      attempt: 1,
      policy: runtimePolicy(r.policy),
      signal: controller.signal,
      park: () => controller.abort("park"),
      review: () => controller.abort("review"),
    });
    return { ...made, controller, deadlineAt };
  }

  it("sends the workflow's deadline as the call's gRPC deadline, with the idempotency key, tenant, trace and deadline metadata", async () => {
    const w = make("grpc-carrier", { tier: "professional" }, 5_000);
    const sentAt = Date.now();
    const r = await w.run(() => w.ctx.step("look", () => w.ctx.tool<{ answer: string }>("grpc-find", { query: "q-carrier" })));
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value, { answer: "found q-carrier" });
    const [s] = seenFor("q-carrier");
    assert.ok(s);
    // grpc-timeout is the time left when the client sent the call (ms, rounded up), and the server
    // dates it from when it read it: the server's deadline is late by the transit, never early.
    assertDeadline(s, w.deadlineAt!, sentAt);
    assert.equal(s.key, `${w.ctx.workflowId}:look:0`);
    assert.equal(s.tenant, "grpc-carrier");
    assert.equal(s.requestDeadline, new Date(w.deadlineAt!).toISOString());
    assert.match(s.traceparent, new RegExp(`^00-${w.ctx.traceId}-[0-9a-f]{16}-0[01]$`));
  });

  it("gives a call without a workflow deadline the tool's timeout as its gRPC deadline, and no deadline header", async () => {
    const w = make("grpc-open-ended", { tier: "professional" }, null);
    const sent = Date.now();
    const r = await w.run(() => w.ctx.tool("grpc-find", { query: "q-open-ended" }));
    assert.ok(r.ok, JSON.stringify(r));
    const [s] = seenFor("q-open-ended");
    assert.ok(s);
    assertDeadline(s, sent + 30_000, sent);
    assert.equal(s.requestDeadline, "");
  });

  it("cancels a call the server holds past the workflow's deadline: the server sees it cancelled, the result is DEADLINE_EXCEEDED, nothing is left in flight", async () => {
    const w = make("grpc-late", { tier: "free" }, 800); // free: no retries
    const r = await w.run(() => w.ctx.tool("grpc-find", { query: "q-late", delayMs: 10_000 }));
    const returnedAt = Date.now();
    assert.ok(!r.ok && r.code === "DEADLINE_EXCEEDED", JSON.stringify(r));
    // Slack for a busy machine's timers; the server would have held the call for 10 s.
    assert.ok(returnedAt <= w.deadlineAt! + 1_000, `returned ${returnedAt - w.deadlineAt!} ms after the deadline`);
    assert.equal(w.tracking.active.size, 0, "no call left in flight in the runtime");
    const [s] = seenFor("q-late");
    assert.ok(s);
    await until("the server to see the cancel", () => s.cancelledAt !== undefined);
    // ctx.tool cuts an attempt at min(timeoutMs, ½ of the time left), so the cancel normally comes
    // well before the deadline; the slack is for a busy machine's timers.
    assert.ok(s.cancelledAt! <= w.deadlineAt! + 1_000, `the server saw the cancel ${s.cancelledAt! - w.deadlineAt!} ms after the deadline`);
    await until("no call in flight at the server", () => inFlight === 0);
  });

  it("ends a call at its gRPC deadline on the wire even when no signal fires", async () => {
    const def = grpcTool<FindArgs>({ name: "grpc-find-direct", client: lookupClient, method: "Find" });
    const deadlineAt = Date.now() + 300;
    const err = await def
      .run(
        { query: "q-wire-deadline", delayMs: 10_000 },
        {
          tenant: "direct",
          workflowId: "wf_direct",
          deadlineAt,
          signal: new AbortController().signal,
          idempotencyKey: "wf_direct:-:0",
          traceId: "1".repeat(32),
          remainingMs: () => deadlineAt - Date.now(),
          mayCall: () => true,
          answered: () => undefined,
        },
      )
      .then(
        () => assert.fail("the call outlived its deadline"),
        (e: unknown) => e as { code?: string; transient?: boolean; message?: string },
      );
    assert.equal(err.code, "DEADLINE_EXCEEDED");
    assert.equal(err.transient, false);
    assert.ok(Date.now() >= deadlineAt - 20 && Date.now() <= deadlineAt + 1_000, "it ended at the deadline");
    const [s] = seenFor("q-wire-deadline");
    await until("the server to see the call end", () => s?.cancelledAt !== undefined);
    await until("no call in flight at the server", () => inFlight === 0);
  });

  it("cancels the call on the wire when the run is cancelled, and reports ABORTED", async () => {
    const w = make("grpc-cancelled", { tier: "professional" }, 10_000);
    timers.push(setTimeout(() => w.controller.abort("cancelled"), 150));
    const r = await w.run(() => w.ctx.tool("grpc-find", { query: "q-cancelled", delayMs: 10_000 }));
    assert.ok(!r.ok && r.code === "ABORTED" && r.message === "cancelled", JSON.stringify(r));
    assert.equal(w.tracking.active.size, 0);
    const [s] = seenFor("q-cancelled");
    await until("the server to see the cancel", () => s?.cancelledAt !== undefined);
    assert.equal(seenFor("q-cancelled").length, 1, "a cancelled call is not retried");
  });

  it("retries UNAVAILABLE with the same idempotency key, and does not retry INVALID_ARGUMENT", async () => {
    const w = make("grpc-retry", { tier: "professional" }, 10_000); // professional: 1 retry
    const flaky = await w.run(() => w.ctx.tool("grpc-find", { query: "q-unavailable", failCode: "UNAVAILABLE", failTimes: 1 }));
    assert.ok(flaky.ok && flaky.attempts === 2, JSON.stringify(flaky));
    const tries = seenFor("q-unavailable");
    assert.equal(tries.length, 2, "the server saw two attempts");
    assert.equal(attemptsByKey.get(tries[0]!.key), 2, "both under one idempotency key");

    const bad = await w.run(() => w.ctx.tool("grpc-find", { query: "q-secret-payload", failCode: "INVALID_ARGUMENT", failTimes: 5 }));
    assert.ok(!bad.ok && bad.code === "TOOL_ERROR", JSON.stringify(bad));
    assert.match(bad.message, /INVALID_ARGUMENT/);
    assert.doesNotMatch(bad.message, /secret-payload/, "the server's details (an echo of the request) stay out");
    assert.equal(seenFor("q-secret-payload").length, 1, "a permanent error is not retried");
  });

  it("refuses a streaming method as a permanent error, without calling it", async () => {
    const w = make("grpc-streaming", { tier: "professional" }, 5_000);
    const r = await w.run(() => w.ctx.tool("grpc-watch", { query: "q-watch" }));
    assert.ok(!r.ok && r.code === "TOOL_ERROR" && /not a unary method/.test(r.message), JSON.stringify(r));
  });

  it("holds a tenant to its MCTC: with mctc 2, five parallel calls never reach the server more than two at a time", async () => {
    await until("no call in flight at the server", () => inFlight === 0);
    peak = 0;
    const w = make("grpc-mctc", { tier: "professional", mctc: 2 }, 15_000);
    const out = await w.run(() =>
      w.ctx.all(Array.from({ length: 5 }, (_, i) => ({ tool: "grpc-find", args: { query: `q-mctc-${i}`, delayMs: 300 } }))),
    );
    assert.deepEqual(
      out.map((r) => (r.ok ? "ok" : r.code)),
      ["ok", "ok", "ok", "ok", "ok"],
    );
    assert.equal(seen.filter((s) => s.query.startsWith("q-mctc-")).length, 5);
    assert.equal(peak, 2, "the server saw at most (and, with five waiting, exactly) two calls at once");
    assert.equal(await redis.zcard(keys.cell("default").gate("grpc-mctc").held), 0, "no permit left held");
  });
});
