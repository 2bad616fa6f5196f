import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { acquirePermit } from "../../queues/lua/permits.ts";
import { FakeClock, systemClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { ToolGate } from "../../src/runtime/toolGate.ts";
import { startTestGate } from "../helpers/gate.ts";
import { testRedisUrl } from "../helpers/redis.ts";

const LIMITS = { mctc: 2, mctcBatch: 1, depth: 2 };

describe("tool gate (MCTC) against a real Redis", () => {
  let redis: Redis;
  let keys: Keys;
  let gate: ToolGate;
  let close: () => Promise<void>;
  before(async () => {
    ({ redis, keys, gate, close } = await startTestGate());
  });
  after(() => close());
  const req = (tenant: string, o: Partial<Parameters<ToolGate["acquire"]>[0]> = {}) => ({
    cell: "default",
    tenant,
    batch: false,
    limits: LIMITS,
    deadlineAt: null,
    waitTimeoutMs: 2_000,
    ...o,
  });

  it("answers THROTTLED at once when the wait queue is full", async () => {
    const held = [await gate.acquire(req("full")), await gate.acquire(req("full"))];
    assert.ok(held.every((h) => h.ok));
    const waiting = [gate.acquire(req("full", { waitTimeoutMs: 1_000 })), gate.acquire(req("full", { waitTimeoutMs: 1_000 }))];
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const third = await gate.acquire(req("full"));
    assert.equal(third.ok, false);
    assert.ok(!third.ok && third.code === "THROTTLED" && third.reason === "queue_full");
    assert.ok(Date.now() - t0 < 1_000, "immediate, not after the 2 s wait timeout");
    for (const h of held) if (h.ok) await gate.release(h.permit);
    const served = await Promise.all(waiting);
    assert.ok(
      served.every((s) => s.ok),
      "the queued callers got the freed permits, in order",
    );
    for (const s of served) if (s.ok) await gate.release(s.permit);
  });

  it("answers THROTTLED with retryAfterMs after the wait timeout, and leaves the queue", async () => {
    const held = [await gate.acquire(req("slow")), await gate.acquire(req("slow"))];
    const r = await gate.acquire(req("slow", { waitTimeoutMs: 150 }));
    assert.ok(!r.ok && r.code === "THROTTLED" && r.reason === "wait_timeout" && r.retryAfterMs > 0);
    assert.equal(await redis.zcard(keys.cell("default").gate("slow").wait), 0);
    for (const h of held) if (h.ok) await gate.release(h.permit);
  });

  it("answers DEADLINE_EXCEEDED when the deadline comes before the wait timeout, without calling", async () => {
    const held = [await gate.acquire(req("late")), await gate.acquire(req("late"))];
    const r = await gate.acquire(req("late", { waitTimeoutMs: 5_000, deadlineAt: Date.now() + 120 }));
    assert.ok(!r.ok && r.code === "DEADLINE_EXCEEDED");
    for (const h of held) if (h.ok) await gate.release(h.permit);
  });

  it("keeps Class C callers to mctcBatch", async () => {
    const c1 = await gate.acquire(req("batch", { batch: true }));
    const c2 = await gate.acquire(req("batch", { batch: true, waitTimeoutMs: 100 }));
    const ab = await gate.acquire(req("batch"));
    assert.equal(c1.ok, true);
    assert.ok(!c2.ok && c2.code === "THROTTLED", "second batch call waits for the batch permit");
    assert.equal(ab.ok, true, "an A/B call still gets the other permit");
    for (const h of [c1, ab]) if (h.ok) await gate.release(h.permit);
  });

  it("reclaims a dead holder's permit when its lease lapses", async () => {
    const clock = new FakeClock(1_000_000);
    const cell = keys.cell("default");
    const a = { batch: false, waitUntil: 0, limits: { mctc: 1, mctcBatch: 1, depth: 5 } };
    assert.equal(
      (await acquirePermit(redis, cell, "dead", { ...a, id: "holder", now: clock.now(), leaseUntil: clock.now() + 15_000 })).kind,
      "acquired",
    );
    // The holder's process dies: nobody renews. Before the lease ends the permit is still taken...
    clock.advance(10_000);
    const before = await acquirePermit(redis, cell, "dead", {
      ...a,
      id: "next",
      now: clock.now(),
      leaseUntil: clock.now() + 15_000,
      waitUntil: clock.now() + 60_000,
    });
    assert.equal(before.kind, "queued");
    // ...after it, the next caller gets it.
    clock.advance(5_001);
    const afterLapse = await acquirePermit(redis, cell, "dead", {
      ...a,
      id: "next",
      now: clock.now(),
      leaseUntil: clock.now() + 15_000,
      waitUntil: clock.now() + 60_000,
    });
    assert.equal(afterLapse.kind, "acquired");
  });

  it("one tenant's full gate never slows another tenant's calls", async () => {
    const hog = [await gate.acquire(req("hog")), await gate.acquire(req("hog"))];
    const other = await gate.acquire(req("quiet", { waitTimeoutMs: 50 }));
    assert.equal(other.ok, true);
    for (const h of [...hog, other]) if (h.ok) await gate.release(h.permit);
  });

  /** Another exec process on the same keys whose script calls are counted, polling too rarely to matter: only wake-ups move its waiters. */
  async function countedProcess(): Promise<{ gate: ToolGate; sent: string[]; close(): Promise<void> }> {
    const r = connect(await testRedisUrl());
    const sub = connect(await testRedisUrl());
    const sent: string[] = [];
    const send = r.sendCommand.bind(r);
    r.sendCommand = ((cmd: { name: string }, ...rest: unknown[]) => {
      sent.push(cmd.name);
      return (send as (...a: unknown[]) => unknown)(cmd, ...rest);
    }) as typeof r.sendCommand;
    const g = new ToolGate(r, sub, keys, systemClock, { leaseMs: 15_000, renewMs: 5_000, pollMs: 60_000 });
    await g.start(["default"]);
    await r.ping();
    sent.length = 0; // the connection's own set-up (CLIENT SETINFO, the ready check)
    return {
      gate: g,
      sent,
      async close() {
        g.stop();
        await sub.quit();
        await r.quit();
      },
    };
  }

  it("an uncontended call costs one script call to acquire and one to release, and publishes nothing", async () => {
    const p = await countedProcess();
    const listener = connect(await testRedisUrl());
    const heard: string[] = [];
    listener.on("message", (_c: string, m: string) => heard.push(m));
    await listener.subscribe(keys.cell("default").gateChannel);
    try {
      for (const batch of [false, true]) {
        const warm = await p.gate.acquire(req("uncontended", { batch })); // the first call of a script may load it (EVALSHA, then EVAL)
        if (warm.ok) await p.gate.release(warm.permit);
        p.sent.length = 0;
        const r = await p.gate.acquire(req("uncontended", { batch }));
        assert.ok(r.ok);
        assert.deepEqual(p.sent, ["evalsha"], "acquire: one round trip");
        await p.gate.release(r.permit);
        assert.deepEqual(p.sent, ["evalsha", "evalsha"], "release: one round trip");
      }
      await redis.publish(keys.cell("default").gateChannel, "end");
      while (!heard.includes("end")) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(heard, ["end"], "no wake-up published when nobody waits");
    } finally {
      await listener.quit();
      await p.close();
    }
  });

  it("a freed permit wakes the waiter queued first, in whichever process, and no one else", async () => {
    const [p1, p2] = [await countedProcess(), await countedProcess()];
    try {
      const one = { ...LIMITS, mctc: 1, depth: 5 };
      const holder = await p1.gate.acquire(req("wake", { limits: one, waitTimeoutMs: 30_000 }));
      assert.ok(holder.ok);
      const first = p2.gate.acquire(req("wake", { limits: one, waitTimeoutMs: 30_000 }));
      while (!(await redis.zcard(keys.cell("default").gate("wake").wait))) await new Promise((r) => setTimeout(r, 5));
      const second = p1.gate.acquire(req("wake", { limits: one, waitTimeoutMs: 30_000 }));
      while ((await redis.zcard(keys.cell("default").gate("wake").wait)) < 2) await new Promise((r) => setTimeout(r, 5));
      p1.sent.length = 0;
      p2.sent.length = 0;
      await p1.gate.release(holder.permit);
      const got = await first;
      assert.ok(got.ok, "the head of the queue, in the other process, got it (its poll is a minute away: the wake-up did it)");
      assert.deepEqual(p2.sent, ["evalsha"], "the woken waiter retried once and succeeded");
      assert.deepEqual(p1.sent, ["evalsha"], "the release only: the later waiter in the releasing process was not woken");
      await p2.gate.release(got.permit);
      const next = await second;
      assert.ok(next.ok, "then the next in line");
      await p1.gate.release(next.permit);
    } finally {
      await p1.close();
      await p2.close();
    }
  });

  it("gives every call its own id without drawing random bytes per call", async () => {
    const p = await countedProcess();
    try {
      const ids = new Set<string>();
      for (const g of [gate, p.gate])
        for (let i = 0; i < 50; i++) {
          const r = await g.acquire(req(`ids${i % 2}`, { limits: { ...LIMITS, mctc: 100 } }));
          assert.ok(r.ok);
          ids.add(r.permit.id);
          await g.release(r.permit);
        }
      assert.equal(ids.size, 100, "unique within a process and across processes");
    } finally {
      await p.close();
    }
  });

  it("an aborted call that never queued leaves nothing to release", async () => {
    const p = await countedProcess();
    try {
      const r = await p.gate.acquire(req("aborted", { signal: AbortSignal.abort() }));
      assert.ok(!r.ok && r.code === "ABORTED");
      assert.deepEqual(p.sent, [], "no round trip at all");
    } finally {
      await p.close();
    }
  });
});
