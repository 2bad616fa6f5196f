import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  FairlaneApiError,
  FairlaneClient,
  FairlaneWaitError,
  nextPollMs,
  type ClientClock,
  type ResponseLike,
  type WorkflowState,
} from "../../packages/client/src/index.ts";

/**
 * The client's `wait` on a fake clock and a scripted API: every pause is recorded
 * and only moves the fake time, so nothing here sleeps.
 */
interface Answer {
  status?: number;
  state?: WorkflowState;
  retryAfter?: string;
}

function scripted(answers: Answer[], opts: { onSleep?: (ms: number, sleeps: number[]) => void } = {}) {
  let now = 1_000_000;
  const sleeps: number[] = [];
  const looks: number[] = [];
  const clock: ClientClock = {
    now: () => now,
    async sleep(ms, signal) {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      now += ms;
      opts.onSleep?.(ms, sleeps);
      if (signal?.aborted) throw signal.reason;
    },
  };
  let i = 0;
  const fetch = async (): Promise<ResponseLike> => {
    looks.push(now);
    const a = answers[Math.min(i++, answers.length - 1)]!;
    const status = a.status ?? 200;
    const body =
      status === 200
        ? { id: "wf_1", state: a.state ?? "queued" }
        : { error: { code: status === 429 ? "RATE_LIMITED" : "NOT_FOUND", message: "no" } };
    return {
      ok: status < 400,
      status,
      statusText: "",
      headers: { get: (name: string) => (name === "retry-after" ? (a.retryAfter ?? null) : null) },
      text: async () => JSON.stringify(body),
    };
  };
  const client = new FairlaneClient({ baseUrl: "http://fairlane.test", apiKey: "k", fetch, clock });
  return { client, sleeps, looks, elapsed: () => now - 1_000_000 };
}

describe("client wait", () => {
  it("backs off from pollMs, doubling up to 2 s, and resolves with the workflow once it has ended", async () => {
    const running: Answer[] = Array.from({ length: 6 }, () => ({ state: "running" }));
    const s = scripted([...running, { state: "completed" }]);
    const wf = await s.client.wait("wf_1");
    assert.equal(wf.state, "completed");
    assert.deepEqual(s.sleeps, [250, 500, 1000, 2000, 2000, 2000]);
  });

  it("resolves on failed and cancelled too, without a pause when the first look finds it ended", async () => {
    for (const state of ["failed", "cancelled"] as const) {
      const s = scripted([{ state }]);
      assert.equal((await s.client.wait("wf_1")).state, state);
      assert.deepEqual(s.sleeps, []);
    }
  });

  it("a pollMs above 2 s is kept as the pause", () => {
    assert.equal(nextPollMs(5_000, 5_000), 5_000);
    assert.equal(nextPollMs(250, 250), 500);
    assert.equal(nextPollMs(1_500, 250), 2_000);
  });

  it("waits a 429's Retry-After before looking again, then goes on backing off", async () => {
    const s = scripted([{ state: "queued" }, { status: 429, retryAfter: "3" }, { state: "running" }, { state: "completed" }]);
    assert.equal((await s.client.wait("wf_1", { pollMs: 100 })).state, "completed");
    assert.deepEqual(s.sleeps, [100, 3000, 400]);
  });

  it("a 429 without Retry-After waits 1 s; a Retry-After shorter than the pause does not shorten it", async () => {
    const s = scripted(
      [{ status: 429 }, { state: "queued" }, { state: "queued" }, { status: 429, retryAfter: "0" }, { state: "completed" }],
      {},
    );
    await s.client.wait("wf_1", { pollMs: 200 });
    assert.deepEqual(s.sleeps, [1000, 400, 800, 1600]);
  });

  it("times out with FairlaneWaitError, its last pause cut to the deadline and one last look there", async () => {
    const s = scripted([{ state: "queued" }]);
    await assert.rejects(s.client.wait("wf_1", { timeoutMs: 5_000 }), (err) => {
      assert.ok(err instanceof FairlaneWaitError);
      assert.equal(err.reason, "timeout");
      assert.equal(err.lastState, "queued");
      assert.equal(err.waitedMs, 5_000);
      assert.match(err.message, /wf_1 did not end within 5000 ms \(last seen queued\)/);
      return true;
    });
    assert.deepEqual(s.sleeps, [250, 500, 1000, 2000, 1250]);
    assert.equal(s.looks.at(-1), 1_000_000 + 5_000);
    assert.equal(s.elapsed(), 5_000);
  });

  it("the default timeout is 5 minutes", async () => {
    const s = scripted([{ state: "running" }]);
    await assert.rejects(s.client.wait("wf_1"), (err) => err instanceof FairlaneWaitError && err.waitedMs === 300_000);
  });

  it("an abort ends the wait at once, mid-pause, with FairlaneWaitError aborted", async () => {
    const c = new AbortController();
    const s = scripted([{ state: "running" }], { onSleep: (_ms, sleeps) => sleeps.length === 2 && c.abort(new Error("shutting down")) });
    await assert.rejects(s.client.wait("wf_1", { signal: c.signal }), (err) => {
      assert.ok(err instanceof FairlaneWaitError);
      assert.equal(err.reason, "aborted");
      assert.equal(err.lastState, "running");
      return true;
    });
    assert.equal(s.looks.length, 2);
  });

  it("an already aborted signal rejects without looking", async () => {
    const s = scripted([{ state: "completed" }]);
    await assert.rejects(
      s.client.wait("wf_1", { signal: AbortSignal.abort() }),
      (err) => err instanceof FairlaneWaitError && err.reason === "aborted" && err.lastState === undefined,
    );
    assert.equal(s.looks.length, 0);
  });

  it("any other API error (404) is thrown at once, not waited out", async () => {
    const s = scripted([{ state: "queued" }, { status: 404 }]);
    await assert.rejects(s.client.wait("wf_1"), (err) => err instanceof FairlaneApiError && err.status === 404 && err.code === "NOT_FOUND");
    assert.deepEqual(s.sleeps, [250]);
  });
});
