import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { untilAborted } from "../../src/lib/abortable.ts";

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
});
