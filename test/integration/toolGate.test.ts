import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { acquirePermit } from "../../queues/lua/permits.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { ToolGate } from "../../src/runtime/toolGate.ts";
import { startTestGate } from "../helpers/gate.ts";

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
    assert.ok(served.every((s) => s.ok), "the queued callers got the freed permits, in order");
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
    assert.equal((await acquirePermit(redis, cell, "dead", { ...a, id: "holder", now: clock.now(), leaseUntil: clock.now() + 15_000 })).kind, "acquired");
    // The holder's process dies: nobody renews. Before the lease ends the permit is still taken...
    clock.advance(10_000);
    const before = await acquirePermit(redis, cell, "dead", { ...a, id: "next", now: clock.now(), leaseUntil: clock.now() + 15_000, waitUntil: clock.now() + 60_000 });
    assert.equal(before.kind, "queued");
    // ...after it, the next caller gets it.
    clock.advance(5_001);
    const afterLapse = await acquirePermit(redis, cell, "dead", { ...a, id: "next", now: clock.now(), leaseUntil: clock.now() + 15_000, waitUntil: clock.now() + 60_000 });
    assert.equal(afterLapse.kind, "acquired");
  });

  it("one tenant's full gate never slows another tenant's calls", async () => {
    const hog = [await gate.acquire(req("hog")), await gate.acquire(req("hog"))];
    const other = await gate.acquire(req("quiet", { waitTimeoutMs: 50 }));
    assert.equal(other.ok, true);
    for (const h of [...hog, other]) if (h.ok) await gate.release(h.permit);
  });
});
