import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getEventListeners } from "node:events";
import { childSignal, onAbort, untilAborted } from "../../src/lib/abortable.ts";

describe("untilAborted", () => {
  it("rejects with the signal's reason as soon as it aborts, while the promise is still pending", async () => {
    const c = new AbortController();
    let settle!: (v: string) => void;
    const waiting = untilAborted(new Promise<string>((r) => (settle = r)), c.signal);
    c.abort("stalled");
    await assert.rejects(waiting, (e) => e === "stalled");
    settle("late"); // the underlying call still completes; nobody waits for it
  });

  it("passes a result or an error through when the signal never aborts, and rejects at once if already aborted", async () => {
    const c = new AbortController();
    assert.equal(await untilAborted(Promise.resolve(7), c.signal), 7);
    await assert.rejects(untilAborted(Promise.reject(new Error("boom")), c.signal), /boom/);
    c.abort("lost");
    await assert.rejects(untilAborted(Promise.resolve(1), c.signal), (e) => e === "lost");
  });

  it("gives a signal one abort listener however many awaits watch it, and drops the settled ones", async () => {
    const c = new AbortController();
    const settled = await Promise.all(Array.from({ length: 50 }, (_, i) => untilAborted(Promise.resolve(i), c.signal)));
    assert.equal(settled.length, 50);
    let resolveLate!: (v: number) => void;
    const pending = [
      untilAborted(new Promise<number>((r) => (resolveLate = r)), c.signal),
      untilAborted(new Promise(() => undefined), c.signal),
    ];
    assert.equal(getEventListeners(c.signal, "abort").length, 1, "one listener on the signal itself");
    const seen: string[] = [];
    const stop = onAbort(c.signal, () => seen.push("stopped watcher"));
    onAbort(c.signal, () => seen.push("watcher"));
    stop();
    resolveLate(1);
    assert.equal(await pending[0], 1);
    c.abort("cancelled");
    await assert.rejects(pending[1]!, (e) => e === "cancelled");
    assert.deepEqual(seen, ["watcher"], "a settled await and a stopped watcher are not called");
    const late: string[] = [];
    onAbort(c.signal, () => late.push("at once"));
    assert.deepEqual(late, ["at once"], "watching an aborted signal calls at once");
  });
});

describe("childSignal", () => {
  it("aborts with its parent's reason, or on its own without touching the parent", () => {
    const parent = new AbortController();
    const a = childSignal(parent.signal);
    const b = childSignal(parent.signal);
    b.abort("sibling failed");
    assert.equal(b.signal.reason, "sibling failed");
    assert.equal(parent.signal.aborted, false);
    assert.equal(a.signal.aborted, false);
    parent.abort("preempted");
    assert.equal(a.signal.reason, "preempted");
    assert.equal(b.signal.reason, "sibling failed", "the first reason stays");
  });

  it("stops following its parent once released", () => {
    const parent = new AbortController();
    const done = childSignal(parent.signal);
    done.release();
    parent.abort("deadline");
    assert.equal(done.signal.aborted, false);
    assert.equal(childSignal(parent.signal).signal.reason, "deadline", "made under an aborted parent: aborted at once");
  });
});
