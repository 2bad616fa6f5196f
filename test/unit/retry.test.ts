import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import { FakeClock } from "../../src/lib/clock.ts";
import { DeadlineExceededError } from "../../src/runtime/errors.ts";
import { attemptTimeout, DEFAULT_RETRY, nextRetry, retryPolicyFor, withDeadlineRetry, type RetryPolicy } from "../../src/runtime/retry.ts";
import { TIER_DEFAULTS } from "../../src/tenancy/policy.ts";

/**
 * The deadline-aware retry rule with a FakeClock and a sleep that only moves
 * that clock: nothing here waits in real time. The attempt-timeout timer is
 * driven with node:test's mock timers.
 */

class TransientError extends Error {
  override name = "TransientError";
}
const transient = (err: unknown) => err instanceof TransientError;

function harness(tier: keyof typeof TIER_DEFAULTS, budgetMs = TIER_DEFAULTS[tier].deadline.runBudgetMs) {
  const clock = new FakeClock();
  const slept: { ms: number; remainingBefore: number }[] = [];
  const deadlineAt = clock.now() + budgetMs;
  const sleep = async (ms: number, signal?: AbortSignal) => {
    signal?.throwIfAborted();
    slept.push({ ms, remainingBefore: deadlineAt - clock.now() });
    clock.advance(ms);
  };
  const policy = retryPolicyFor(TIER_DEFAULTS[tier].deadline);
  const opts = { deadlineAt, clock, sleep, policy, toolTimeoutMs: 10_000, isTransient: transient, random: () => 0.5 };
  return { clock, slept, deadlineAt, policy, opts };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

describe("attemptTimeout", () => {
  const p: RetryPolicy = { ...DEFAULT_RETRY, maxRetries: 2 };

  it("refuses an attempt when less than the minimum viable time is left", () => {
    assert.equal(attemptTimeout(249, 10_000, p), null);
    assert.equal(attemptTimeout(0, 10_000, p), null);
    assert.equal(attemptTimeout(-5, 10_000, p), null);
    assert.equal(attemptTimeout(250, 10_000, p), 125);
  });

  it("shrinks the attempt timeout with the remaining budget, never above the tool's own timeout", () => {
    assert.equal(attemptTimeout(300_000, 10_000, p), 10_000);
    assert.equal(attemptTimeout(20_000, 10_000, p), 10_000);
    assert.equal(attemptTimeout(8_000, 10_000, p), 4_000);
    assert.equal(attemptTimeout(1_000, 10_000, p), 500);
  });
});

describe("nextRetry", () => {
  const p: RetryPolicy = { ...DEFAULT_RETRY, maxRetries: 2 };

  it("allows exactly maxRetries retries", () => {
    assert.equal(nextRetry(1, 60_000, p, () => 0.5).retry, true);
    assert.equal(nextRetry(2, 60_000, p, () => 0.5).retry, true);
    assert.deepEqual(
      nextRetry(3, 60_000, p, () => 0.5),
      { retry: false, reason: "NO_RETRIES_LEFT" },
    );
    assert.deepEqual(
      nextRetry(1, 60_000, { ...p, maxRetries: 0 }, () => 0.5),
      { retry: false, reason: "NO_RETRIES_LEFT" },
    );
  });

  it("doubles the backoff cap per attempt and applies full jitter from the supplied random", () => {
    assert.deepEqual(
      nextRetry(1, 60_000, p, () => 0.5),
      { retry: true, backoffMs: 50 },
    );
    assert.deepEqual(
      nextRetry(2, 60_000, p, () => 0.5),
      { retry: true, backoffMs: 100 },
    );
    assert.deepEqual(
      nextRetry(2, 60_000, p, () => 0),
      { retry: true, backoffMs: 0 },
    );
    assert.deepEqual(
      nextRetry(2, 60_000, p, () => 0.999),
      { retry: true, backoffMs: 199 },
    );
  });

  it("never backs off for more than the fraction of the remaining time", () => {
    const wide: RetryPolicy = { ...p, maxRetries: 10, backoffBaseMs: 5_000 };
    for (const remaining of [260, 300, 1_000, 2_777, 10_000, 60_000]) {
      for (let attempt = 1; attempt <= 10; attempt++) {
        const d = nextRetry(attempt, remaining, wide, () => 0.999999);
        if (d.retry) assert.ok(d.backoffMs <= wide.backoffFraction * remaining, `attempt ${attempt}, ${remaining} ms left: ${d.backoffMs}`);
      }
    }
    assert.deepEqual(
      nextRetry(3, 1_000, wide, () => 1),
      { retry: true, backoffMs: 100 },
    );
  });

  it("skips a retry that would leave less than the minimum viable time, with DEADLINE_TOO_CLOSE", () => {
    // 260 ms left: backoff min(50, 26) = 26 would leave 234 ms < 250 ms.
    assert.deepEqual(
      nextRetry(1, 260, p, () => 0.5),
      { retry: false, reason: "DEADLINE_TOO_CLOSE" },
    );
    // With no jitter the backoff is 0 and 260 ms is still enough for one more attempt.
    assert.deepEqual(
      nextRetry(1, 260, p, () => 0),
      { retry: true, backoffMs: 0 },
    );
    assert.deepEqual(
      nextRetry(1, 100, p, () => 0),
      { retry: false, reason: "DEADLINE_TOO_CLOSE" },
    );
  });
});

describe("withDeadlineRetry", () => {
  afterEach(() => mock.timers.reset());

  it("never retries on the free tier", async () => {
    const h = harness("free");
    let calls = 0;
    await assert.rejects(
      withDeadlineRetry(async () => {
        calls++;
        throw new TransientError("bureau 503");
      }, h.opts),
      { name: "TransientError", message: "bureau 503" },
    );
    assert.equal(calls, 1);
    assert.equal(h.slept.length, 0);
  });

  it("retries twice on the enterprise tier, then gives up with the last error", async () => {
    const h = harness("enterprise");
    const attempts: number[] = [];
    await assert.rejects(
      withDeadlineRetry(async (_signal, attempt) => {
        attempts.push(attempt);
        h.clock.advance(1_000);
        throw new TransientError(`failure ${attempt}`);
      }, h.opts),
      { message: "failure 3" },
    );
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(
      h.slept.map((s) => s.ms),
      [50, 100],
    );
  });

  it("returns the result of a retry that succeeds", async () => {
    const h = harness("professional");
    let calls = 0;
    const result = await withDeadlineRetry(async () => {
      if (++calls === 1) throw new TransientError("flaky");
      return "approved";
    }, h.opts);
    assert.equal(result, "approved");
    assert.equal(calls, 2);
  });

  it("makes no attempt when less than the minimum viable time is left", async () => {
    const h = harness("enterprise", 200);
    let calls = 0;
    const err = await withDeadlineRetry(async () => ++calls, h.opts).then(
      () => assert.fail("should not resolve"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeadlineExceededError);
    assert.equal(err.code, "DEADLINE_EXCEEDED");
    assert.equal(err.name, "DeadlineExceededError");
    assert.equal(calls, 0);
  });

  it("bounds each attempt by the attempt timeout, which shrinks as the budget is used", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    const h = harness("enterprise", 1_000);
    const signals: AbortSignal[] = [];
    const run = withDeadlineRetry(
      (signal) =>
        new Promise<never>((_, reject) => {
          signals.push(signal);
          signal.addEventListener("abort", () => reject(signal.reason));
        }),
      { ...h.opts, random: () => 1, isTransient: (e) => e instanceof DOMException && e.name === "TimeoutError" },
    );
    run.catch(() => {});

    // Attempt 1: 1000 ms left → min(10 s, 0.5 × 1000) = 500 ms.
    await flush();
    mock.timers.tick(499);
    assert.equal(signals[0]!.aborted, false);
    mock.timers.tick(1);
    assert.equal(signals[0]!.aborted, true);
    assert.equal((signals[0]!.reason as DOMException).name, "TimeoutError");
    h.clock.advance(500);

    // Backoff min(100, 0.1 × 500) = 50 ms; attempt 2: 450 ms left → 225 ms.
    await flush();
    assert.deepEqual(
      h.slept.map((s) => s.ms),
      [50],
    );
    mock.timers.tick(224);
    assert.equal(signals[1]!.aborted, false);
    mock.timers.tick(1);
    assert.equal(signals[1]!.aborted, true);
    h.clock.advance(225);

    // 225 ms left: below the minimum viable attempt, so no third attempt; the last error is thrown.
    await assert.rejects(run, { name: "TimeoutError" });
    assert.equal(signals.length, 2);
  });

  it("never backs off for more than the fraction of the remaining time", async () => {
    const h = harness("enterprise", 3_000);
    const policy = { ...h.policy, backoffBaseMs: 10_000 };
    await assert.rejects(
      withDeadlineRetry(
        async () => {
          throw new TransientError("down");
        },
        { ...h.opts, policy, random: () => 1 },
      ),
    );
    assert.equal(h.slept.length, 2);
    for (const s of h.slept) assert.ok(s.ms <= policy.backoffFraction * s.remainingBefore, JSON.stringify(s));
  });

  it("skips a retry that would leave less than the minimum viable time", async () => {
    const h = harness("enterprise", 1_000);
    let calls = 0;
    await assert.rejects(
      withDeadlineRetry(async () => {
        calls++;
        h.clock.advance(740); // 260 ms left: a backoff of 26 ms would leave 234 ms
        throw new TransientError("slow failure");
      }, h.opts),
      { message: "slow failure" },
    );
    assert.equal(calls, 1);
    assert.equal(h.slept.length, 0);
  });

  it("does not retry an error that is not transient", async () => {
    const h = harness("enterprise");
    let calls = 0;
    await assert.rejects(
      withDeadlineRetry(async () => {
        calls++;
        throw new Error("400 bad request");
      }, h.opts),
      { message: "400 bad request" },
    );
    assert.equal(calls, 1);
  });

  it("stops retrying when the outer signal fires, passing its reason to the attempt", async () => {
    const h = harness("enterprise");
    const outer = new AbortController();
    let seen: unknown;
    let calls = 0;
    await assert.rejects(
      withDeadlineRetry(
        async (signal) => {
          calls++;
          outer.abort("cancelled");
          seen = signal.reason;
          throw new TransientError("interrupted");
        },
        { ...h.opts, signal: outer.signal },
      ),
      (e) => e === "cancelled",
    );
    assert.equal(calls, 1);
    assert.equal(seen, "cancelled");
    assert.equal(h.slept.length, 0);
  });

  it("stops during a backoff when the outer signal fires, and never starts when it already has", async () => {
    const h = harness("enterprise");
    const outer = new AbortController();
    let calls = 0;
    const sleep = async (ms: number, signal?: AbortSignal) => {
      outer.abort("preempted");
      h.clock.advance(ms);
      signal?.throwIfAborted();
    };
    await assert.rejects(
      withDeadlineRetry(
        async () => {
          calls++;
          throw new TransientError("flaky");
        },
        { ...h.opts, sleep, signal: outer.signal },
      ),
      (e) => e === "preempted",
    );
    assert.equal(calls, 1);

    await assert.rejects(
      withDeadlineRetry(async () => ++calls, { ...h.opts, signal: outer.signal }),
      (e) => e === "preempted",
    );
    assert.equal(calls, 1);
  });
});
