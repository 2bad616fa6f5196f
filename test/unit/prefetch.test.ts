import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PrefetchController, type DispatchCall, type PrefetchOptions } from "../../src/dispatch/policy/prefetch.ts";

const STEP_MS = 10;
/** A 50 ms window (one adjustment per 5 calls) and no smoothing: the rate bound is the last interval's. */
const OPTS: PrefetchOptions = { max: 1, windowMs: 50, tauMs: 0.001 };

/**
 * `n` windows of 5 calls, one every 10 ms after `t`, as `o` says (by default each finds the queue dry
 * after a full call, in a busy pool: 100 runs end and are refilled, 10/ms, a bound of 500); from 0,
 * a first call at 0 starts the windows. Returns the last call's time.
 */
function windows(c: PrefetchController, n: number, o: Partial<DispatchCall> = {}, t = 0): number {
  const call = (at: number) => c.observe(at, { moved: 100, capacity: 100, used: 100, waiting: 0, full: true, ...o });
  if (t === 0) call(0);
  for (let i = 1; i <= 5 * n; i++) call(t + i * STEP_MS);
  return t + 5 * n * STEP_MS;
}

/**
 * A pool of `capacity` workers and its dispatcher, in steps of the dispatcher's round trip (10 ms):
 * each step `ends` runs end, their workers take what waits in the exec queue, and the dispatcher,
 * given the controller's prefetch, refills up to capacity + prefetch from an endless backlog. Returns,
 * per step, how many workers found nothing to take, and how many workflows were left waiting.
 */
function pool(c: PrefetchController, o: { capacity: number; ends: number; steps: number; jitter?: number }) {
  let waiting = 0;
  let seed = 7;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647; // a fixed sequence
  const idle: number[] = [];
  const left: number[] = [];
  for (let s = 0; s < o.steps; s++) {
    // With jitter j, a round trip sees (1 ± j) × `ends` runs end (the dispatcher's calls are not evenly spaced).
    const ends = Math.round(o.ends * (1 + (o.jitter ?? 0) * (2 * random() - 1)));
    const taken = Math.min(ends, waiting);
    idle.push(ends - taken);
    waiting -= taken;
    left.push(waiting);
    // Held: every running slot (capacity minus the idle workers) and what waits; refill to the limit.
    const held = o.capacity - (ends - taken) + waiting;
    const limit = o.capacity + (c.next().prefetch ?? 0);
    const moved = Math.max(0, limit - held);
    c.observe(s * STEP_MS, { moved, capacity: o.capacity, used: held + moved, waiting: left.at(-1)!, full: true });
    // Idle workers take from the refill at once; the rest waits.
    const fill = Math.min(ends - taken, moved);
    waiting += moved - fill;
  }
  return { idle, left };
}

const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);

describe("prefetch: just enough that workers never wait for the dispatcher (src/dispatch/policy/prefetch.ts)", () => {
  it("grows while the workers run the exec queue dry behind a full pool, until they no longer do", () => {
    const c = new PrefetchController({ max: 1, windowMs: 50, tauMs: 1_000 });
    const { idle, left } = pool(c, { capacity: 100, ends: 30, steps: 400 });
    assert.ok(sum(idle.slice(0, 5)) > 30, "workers waited at first");
    // Settled: it hovers around enough, so workers wait in under 5 % of the round trips' ends...
    assert.ok(sum(idle.slice(-100)) <= 0.05 * 30 * 100, `idle ${sum(idle.slice(-100))} of ${30 * 100}`);
    // ...and what still waits at the next call stays under a round trip's worth of ends.
    assert.ok(Math.max(...left.slice(-100)) < 30, `left waiting ${Math.max(...left.slice(-100))}`);
    assert.ok(c.value() >= 20 && c.value() <= 60, `prefetch ${c.value()}`);
  });

  it("keeps a margin for the calls' jitter, so workers seldom find the queue dry", () => {
    // Shrinking whenever anything was left waiting settles where the queue runs dry at every other
    // call: with ±50 % jitter that left the workers waiting for ~7 % of the ends.
    const c = new PrefetchController({ max: 1, windowMs: 50, tauMs: 1_000 });
    const { idle, left } = pool(c, { capacity: 100, ends: 30, steps: 2_000, jitter: 0.5 });
    const settled = idle.slice(-1_000);
    assert.ok(sum(settled) <= 0.04 * 30 * 1_000, `idle ${sum(settled)} of ${30 * 1_000}`);
    assert.ok(Math.max(...left.slice(-1_000)) <= 60, `left waiting ${Math.max(...left.slice(-1_000))}`);
  });

  it("never prefetches more than the pool ends runs in its window: long runs prefetch nothing", () => {
    // Runs of 1.5 s hold all 6 slots (one tenant's storm, controls loosened): a release every 250 ms.
    // The workers find the queue empty at every call, so the learnt part grows to its cap...
    const c = new PrefetchController({ max: 1, windowMs: 50, tauMs: 1_000 });
    for (let t = 0; t <= 20_000; t += STEP_MS) {
      const ends = t % 250 === 0 ? 1 : 0;
      c.observe(t, { moved: ends, capacity: 6, used: 6, waiting: 0, full: true });
    }
    // ...but 4 releases/s × 50 ms is 0.2 of a workflow: nobody's workflow waits dispatched behind a long run.
    assert.ok(Math.abs(c.releasesPerSecond - 4) < 0.5, `${c.releasesPerSecond}/s`);
    assert.equal(c.value(), 0);
    // Short runs in the same pool end 300/s: 15 may wait, each about 50 ms at most.
    for (let t = 20_010; t <= 30_000; t += STEP_MS) c.observe(t, { moved: 3, capacity: 6, used: 6, waiting: 0, full: true });
    assert.ok(Math.abs(c.releasesPerSecond - 300) < 5, `${c.releasesPerSecond}/s`);
    assert.equal(c.value(), 6, "15 by the rate, but at most max × capacity");
  });

  it("reads the releases from the calls: held after one less held before the next's moves", () => {
    const c = new PrefetchController({ max: 1, windowMs: 100, tauMs: 1 });
    // 100 held; 10 ms later 80 held before the call's 20 moves: 20 released in 10 ms, 2/ms.
    windows(c, 10);
    c.observe(510, { moved: 20, capacity: 100, used: 100, waiting: 0, full: true });
    assert.ok(Math.abs(c.releasesPerSecond - 2_000) < 1, `${c.releasesPerSecond}/s`);
    // Slots taken by another dispatcher in between read as fewer releases, never more.
    c.observe(520, { moved: 0, capacity: 100, used: 110, waiting: 0, full: true });
    assert.ok(c.releasesPerSecond < 1, `${c.releasesPerSecond}/s`);
  });

  it("shrinks by a quarter of the least left waiting in a window beyond a quarter of it; within max × capacity and 0", () => {
    const c = new PrefetchController({ ...OPTS, max: 0.5 });
    let t = windows(c, 50);
    assert.equal(c.value(), 50);
    // The least waiting in the window counts: calls right after a move find the workflows it just moved.
    for (const waiting of [40, 40, 12, 40, 40]) c.observe((t += STEP_MS), { moved: 100, capacity: 100, used: 100, waiting, full: true });
    assert.equal(c.value(), 50, "a quarter of 50 may stay waiting: the calls' jitter");
    t = windows(c, 1, { waiting: 33 }, t);
    assert.equal(c.value(), 45, "20 beyond it: a quarter of them");
    windows(c, 20, { waiting: 200 }, t);
    assert.equal(c.value(), 0);
  });

  it("stays 0 while no call leaves work for want of a slot (a pool that keeps up), or when off", () => {
    const c = new PrefetchController(OPTS);
    windows(c, 50, { full: false });
    assert.equal(c.value(), 0);
    const off = new PrefetchController({ ...OPTS, max: 0 });
    windows(off, 50);
    assert.equal(off.value(), 0, "off");
  });

  it("learns only from a call that follows a full one: the queue found empty after a quiet call is not starvation", () => {
    const c = new PrefetchController(OPTS);
    // Calls alternate: full, finding the queue dry after a quiet call; quiet, finding 5 waiting after a full one.
    let t = windows(c, 0);
    for (let i = 1; i <= 5; i++) {
      const full = i % 2 === 0;
      c.observe((t += STEP_MS), { moved: 100, capacity: 100, used: 100, waiting: full ? 0 : 5, full });
    }
    assert.equal(c.value(), 0);
    t = windows(c, 1, {}, t); // follows a full one and found the queue dry, with work to move
    assert.equal(c.value(), 1);
    // Nothing to move (the queue is dry because the backlog is, while runs keep ending): nothing learnt.
    for (let i = 1; i <= 5; i++) c.observe(t + i * STEP_MS, { moved: 0, capacity: 100, used: 100 - 10 * i, waiting: 0, full: true });
    assert.equal(c.value(), 1);
  });

  it("asks the script to keep the prefetch for explanations only when it changed; off, passes nothing after a 0", () => {
    const on = new PrefetchController(OPTS);
    assert.deepEqual(on.next(), { prefetch: 0, publishPrefetch: true }, "the first call keeps it");
    let t = windows(on, 1);
    assert.deepEqual(on.next(), { prefetch: 1, publishPrefetch: true }, "it grew");
    // That call failed (no reply observed): the next one keeps it again.
    assert.deepEqual(on.next(), { prefetch: 1, publishPrefetch: true });
    t = windows(on, 1, { waiting: 1 }, t);
    assert.deepEqual(on.next(), { prefetch: 1, publishPrefetch: false }, "unchanged");
    windows(on, 1, {}, t);
    assert.equal(on.next().publishPrefetch, true, "it grew again");

    const off = new PrefetchController({ ...OPTS, max: 0 });
    assert.deepEqual(off.next(), { prefetch: 0, publishPrefetch: true }, "clears a value kept while it was on");
    windows(off, 1);
    assert.deepEqual(off.next(), {}, "then nothing: the script skips what only the prefetch reads");
  });
});
