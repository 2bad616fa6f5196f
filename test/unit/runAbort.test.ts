import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import { RunAbort } from "../../src/exec/runAbort.ts";

/**
 * A run's abort (src/exec/runAbort.ts): its controller and deadline timer are made when its signal is
 * first read. The deadline timer is driven with node:test's mock timers: nothing here waits.
 */
describe("RunAbort", () => {
  afterEach(() => mock.timers.reset());

  it("aborted before its signal is read, makes the signal already aborted with the first reason", () => {
    const a = new RunAbort(() => null);
    assert.equal(a.aborted, false);
    assert.equal(a.reason, undefined);
    a.abort("preempted");
    a.abort("cancelled");
    assert.equal(a.aborted, true);
    assert.equal(a.reason, "preempted");
    assert.equal(a.signal.aborted, true);
    assert.equal(a.signal.reason, "preempted");
  });

  it("aborts a signal already read, once, and hands listeners the reason", () => {
    const a = new RunAbort(() => null);
    const seen: unknown[] = [];
    a.signal.addEventListener("abort", () => seen.push(a.signal.reason));
    assert.equal(a.signal, a.signal, "one signal per run");
    a.abort("park");
    a.abort("shutdown");
    assert.deepEqual(seen, ["park"]);
    assert.equal(a.reason, "park");
  });

  it("arms the deadline only once the signal is read, and aborts it at the deadline", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    let asked = 0;
    const a = new RunAbort(() => (asked++, 1_000));
    mock.timers.tick(5_000);
    assert.equal(asked, 0, "no signal read: no timer, and no question asked");
    assert.equal(a.aborted, false, "the run's end sees a passed deadline by the clock instead");
    const signal = a.signal;
    assert.equal(asked, 1);
    mock.timers.tick(999);
    assert.equal(signal.aborted, false);
    mock.timers.tick(1);
    assert.equal(signal.aborted, true);
    assert.equal(a.reason, "deadline");
  });

  it("a deadline already passed when the signal is read aborts it on the next timer turn", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    const a = new RunAbort(() => -50);
    const signal = a.signal;
    assert.equal(signal.aborted, false);
    mock.timers.tick(0);
    assert.equal(a.reason, "deadline");
  });

  it("another reason, or the run's end, stops the deadline timer; a signal read after the end gets none", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    const cancelled = new RunAbort(() => 100);
    void cancelled.signal;
    cancelled.abort("cancelled");
    mock.timers.tick(200);
    assert.equal(cancelled.reason, "cancelled");

    const ended = new RunAbort(() => 100);
    void ended.signal;
    ended.close();
    mock.timers.tick(200);
    assert.equal(ended.aborted, false);

    let asked = 0;
    const late = new RunAbort(() => (asked++, 100));
    late.close();
    assert.equal(late.signal.aborted, false);
    mock.timers.tick(200);
    assert.equal(asked, 0);
    assert.equal(late.aborted, false);
  });
});
