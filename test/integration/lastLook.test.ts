import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { Agent, type Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from "undici";
import type { Keys } from "../../queues/keys.ts";
import { HealthCache } from "../../src/backpressure/healthCache.ts";
import { HealthStore } from "../../src/backpressure/healthStore.ts";
import { PassiveHealth } from "../../src/backpressure/passiveHealth.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { createContext } from "../../src/runtime/context.ts";
import { httpTool } from "../../src/runtime/httpTool.ts";
import type { ToolGate } from "../../src/runtime/toolGate.ts";
import { resolvePolicy, runtimePolicy } from "../../src/tenancy/policy.ts";
import { contextDeps, startTestGate } from "../helpers/gate.ts";

/**
 * An HTTP tool call's last look and first sight, on a real HTTP server on loopback and undici's own
 * connection queue: a call permitted while its dependency seemed healthy, still waiting for a socket when
 * this process saw the dependency answer 503, is not sent; and the 503 marks the dependency degraded in
 * Redis before the failed answer's body has even arrived. The server's own log is the observer.
 */
describe("HTTP tool calls: the last look before the write", () => {
  let redis: Redis;
  let keys: Keys;
  let gate: ToolGate;
  let close: () => Promise<void>;
  let server: Server;
  let base: string;
  let previous: Dispatcher;
  const received: string[] = [];
  let failing: ServerResponse | undefined;

  before(async () => {
    ({ redis, keys, gate, close } = await startTestGate());
    server = createServer((req, res) => {
      received.push(req.url ?? "");
      req.resume();
      if (req.url === "/fail")
        failing = res; // answered by the test, when it chooses
      else res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // One connection to the server: a second request waits in undici's queue for the first to finish.
    previous = getGlobalDispatcher();
    setGlobalDispatcher(new Agent({ connections: 1 }));
  });
  after(async () => {
    setGlobalDispatcher(previous);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await close();
  });

  httpTool<{ path: string }>({ name: "ll-http", dependency: "ll-dep", url: (a) => `${base}/${a.path}` });

  function make(id: string, health: HealthCache, passive: PassiveHealth, parked: string[]) {
    const r = resolvePolicy({ tier: "professional" });
    assert.ok(r.ok);
    const cell = keys.cell("default");
    const controller = new AbortController();
    return createContext(
      { ...contextDeps(redis, gate, keys), health, onOutcome: (c, dep, ok, overloaded) => passive.record(c, dep, ok, overloaded) },
      {
        cellName: "default",
        cell,
        workflowId: id,
        tenant: "ll-tenant",
        cls: "B",
        type: "t",
        payload: {},
        deadlineAt: Date.now() + 20_000,
        traceId: "0".repeat(32),
        attempt: 1,
        policy: runtimePolicy(r.policy),
        signal: controller.signal,
        park: (dep) => {
          parked.push(`${id}:${dep}`);
          controller.abort("park");
        },
        review: () => controller.abort("review"),
      },
    );
  }

  it("does not send a permitted call that was still waiting for its socket when the 503 came, and marks the dependency at the 503's headers", async () => {
    const store = new HealthStore(redis, keys, ["default"], systemClock);
    // This process believes the dependency healthy, freshly (it would not read Redis again for a minute).
    const health = new HealthCache(store, () => Date.now(), 60_000);
    health.set("default", "ll-dep", true);
    const passive = new PassiveHealth(store, health, systemClock);
    const parked: string[] = [];
    const first = make("wf_ll_first", health, passive, parked);
    const second = make("wf_ll_second", health, passive, parked);
    const until = (cond: () => boolean) =>
      (async () => {
        for (const end = Date.now() + 5_000; !cond(); await sleep(5)) if (Date.now() > end) throw new Error("timed out");
      })();

    // The first call holds the one connection, its answer not begun.
    const a = first.run(() => first.ctx.tool("ll-http", { path: "fail" }));
    await until(() => failing !== undefined);
    // The second passes every look before the write (the dependency still healthy), takes its permit and is
    // handed to undici, which queues it for the connection (undici's own event says when).
    let queued = false;
    const created = (m: unknown) => {
      if ((m as { request: { path?: string } }).request.path === "/ok") queued = true;
    };
    subscribe("undici:request:create", created);
    const b = second.run(() => second.ctx.tool("ll-http", { path: "ok" }));
    await until(() => queued);
    unsubscribe("undici:request:create", created);

    // Now the 503: its status line and headers, the body held until Redis has the dependency degraded (at most 2 s).
    failing!.writeHead(503, { "content-type": "text/plain" });
    failing!.flushHeaders();
    let markedBeforeBody = false;
    for (const end = Date.now() + 2_000; !markedBeforeBody && Date.now() < end; await sleep(10))
      markedBeforeBody = (await redis.hget(keys.cell("default").health("ll-dep"), "state")) === "degraded";
    failing!.end("overloaded");
    const [ra, rb] = await Promise.all([a, b]);

    assert.ok(markedBeforeBody, "Redis had the dependency degraded before the 503's body was sent");
    assert.deepEqual(received, ["/fail"], "the server never received the second call");
    assert.ok(!ra.ok && ra.code === "PARKED", JSON.stringify(ra));
    assert.ok(!rb.ok && rb.code === "PARKED", JSON.stringify(rb));
    assert.deepEqual(parked.sort(), ["wf_ll_first:ll-dep", "wf_ll_second:ll-dep"], "both workflows park on it");
    assert.equal(await redis.zcard(keys.cell("default").gate("ll-tenant").held), 0, "no permit held");
  });
});
