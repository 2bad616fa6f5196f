import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PrefetchController, type DispatchCall } from "../../src/dispatch/policy/prefetch.ts";

const call = (o: Partial<DispatchCall>): DispatchCall => ({ moved: 10, capacity: 100, waiting: 0, full: true, ...o });

/**
 * A pool of `capacity` workers and its dispatcher, in steps of the dispatcher's round trip: each step
 * `ends` runs end, their workers take what waits in the exec queue, and the dispatcher, given the
 * controller's prefetch, refills up to capacity + prefetch from an endless backlog. Returns, per
 * step, how many workers found nothing to take, and how many workflows were left waiting.
 */
function pool(c: PrefetchController, o: { capacity: number; ends: number; steps: number }) {
  let waiting = 0;
  const idle: number[] = [];
  const left: number[] = [];
  for (let s = 0; s < o.steps; s++) {
    const taken = Math.min(o.ends, waiting);
    idle.push(o.ends - taken);
    waiting -= taken;
    left.push(waiting);
    // Held: every running slot (capacity minus the idle workers) and what waits; refill to the limit.
    const held = o.capacity - (o.ends - taken) + waiting;
    const moved = Math.max(0, o.capacity + c.value() - held);
    c.observe({ moved, capacity: o.capacity, waiting: left.at(-1)!, full: true });
    // Idle workers take from the refill at once; the rest waits.
    const fill = Math.min(o.ends - taken, moved);
    waiting += moved - fill;
  }
  return { idle, left };
}

describe("prefetch: just enough that workers never wait for the dispatcher (src/dispatch/policy/prefetch.ts)", () => {
  it("grows while the workers run the exec queue dry behind a full pool, until they no longer do", () => {
    const c = new PrefetchController({ max: 1 });
    const { idle, left } = pool(c, { capacity: 100, ends: 30, steps: 200 });
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    assert.ok(sum(idle.slice(0, 5)) > 30, "workers waited at first");
    // Settled: it hovers around enough, so workers wait in under 5 % of the round trips' ends...
    assert.ok(sum(idle.slice(-100)) <= 0.05 * 30 * 100, `idle ${sum(idle.slice(-100))} of ${30 * 100}`);
    // ...and what still waits at the next call stays under a round trip's worth of ends.
    assert.ok(Math.max(...left.slice(-100)) < 30, `left waiting ${Math.max(...left.slice(-100))}`);
    assert.ok(c.value() >= 20 && c.value() <= 60, `prefetch ${c.value()}`);
  });

  it("shrinks by a quarter of what was still waiting, and never passes max × capacity or goes below 0", () => {
    const c = new PrefetchController({ max: 0.5 });
    for (let i = 0; i < 50; i++) c.observe(call({}));
    assert.equal(c.value(), 50);
    c.observe(call({ waiting: 20 }));
    assert.equal(c.value(), 45);
    for (let i = 0; i < 10; i++) c.observe(call({ waiting: 200 }));
    assert.equal(c.value(), 0);
  });

  it("stays 0 while no call leaves work for want of a slot (a pool that keeps up), or when off", () => {
    const c = new PrefetchController({ max: 1 });
    for (let i = 0; i < 50; i++) c.observe(call({ full: false }));
    assert.equal(c.value(), 0);
    for (const off of [new PrefetchController({ max: 0 }), new PrefetchController()]) {
      for (let i = 0; i < 50; i++) off.observe(call({}));
      assert.equal(off.value(), 0, "off, and off by default");
    }
  });

  it("learns only from a call that follows a full one: the queue found empty after a quiet call is not starvation", () => {
    const c = new PrefetchController({ max: 1 });
    c.observe(call({ full: false }));
    c.observe(call({ full: true })); // follows a call that was not full: no change
    assert.equal(c.value(), 0);
    c.observe(call({ full: true })); // follows a full one and found the queue empty, with work to move
    assert.equal(c.value(), 1);
    c.observe(call({ moved: 0 })); // nothing to move: nothing learnt
    assert.equal(c.value(), 1);
  });
});
