import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  HYSTERESIS,
  initialTracker,
  mayCall,
  nextHealth,
  passiveVerdict,
  type HealthTracker,
  type ProbeOutcome,
} from "../../src/backpressure/healthRule.ts";
import { FakeClock } from "../../src/lib/clock.ts";

/** Health hysteresis and passive verdicts, pure: a FakeClock moves by hand, nothing sleeps. */

const ok: ProbeOutcome = { ok: true, latencyMs: 12, detail: "status 200" };
const fail: ProbeOutcome = { ok: false, latencyMs: 2_000, detail: "timeout after 2000 ms" };

/** Feeds outcomes one probe interval (5 s) apart and returns every intermediate tracker. */
function run(clock: FakeClock, t: HealthTracker, outcomes: ProbeOutcome[]): HealthTracker[] {
  const seen: HealthTracker[] = [];
  for (const o of outcomes) {
    clock.advance(5_000);
    t = nextHealth(t, o, clock.now());
    seen.push(t);
  }
  return seen;
}

const healthyAt = (since: number): HealthTracker => ({ state: "healthy", since, okStreak: 5, failStreak: 0 });
const degradedAt = (since: number): HealthTracker => ({ state: "degraded", since, okStreak: 0, failStreak: 0 });

describe("health hysteresis (fake clock)", () => {
  it("starts a new dependency unknown and takes its first probe's answer as it is, without hysteresis", () => {
    const t = initialTracker(1_000);
    assert.deepEqual(t, { state: "unknown", since: 1_000, okStreak: 0, failStreak: 0 });
    assert.deepEqual(HYSTERESIS, { degradeAfter: 1, downAfter: 3, recoverAfter: 2 });
    assert.deepEqual(
      nextHealth(t, ok, 1_200),
      { state: "healthy", since: 1_200, okStreak: 1, failStreak: 0 },
      "one good probe at boot is enough",
    );
    assert.deepEqual(nextHealth(t, fail, 1_200), { state: "degraded", since: 1_200, okStreak: 0, failStreak: 1 });
    assert.equal(
      nextHealth(t, fail, 1_200, { degradeAfter: 1, downAfter: 1, recoverAfter: 2 }).state,
      "down",
      "down at once when one failure is down",
    );
  });

  it("calls a healthy or unknown dependency and parks on degraded, down or a missing signal", () => {
    assert.deepEqual((["healthy", "unknown", "degraded", "down", undefined] as const).map(mayCall), [true, true, false, false, false]);
  });

  it("never reaches healthy again after the first failure while probes flap ok, fail, ok, fail", () => {
    const clock = new FakeClock();
    const flapping = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? ok : fail));
    const [first, ...rest] = run(clock, initialTracker(clock.now()), flapping);
    assert.equal(first!.state, "healthy", "the first answer, taken as it is");
    assert.ok(
      rest.every((t) => t.state === "degraded"),
      rest.map((t) => t.state).join(","),
    );
  });

  it("degrades a healthy dependency on the first failure and marks it down after three in a row", () => {
    const clock = new FakeClock();
    const states = run(clock, healthyAt(clock.now()), [fail, fail, fail]).map((t) => t.state);
    assert.deepEqual(states, ["degraded", "degraded", "down"]);
  });

  it("goes down after three failures in a row from the initial unknown state too", () => {
    const clock = new FakeClock();
    const seen = run(clock, initialTracker(clock.now()), [fail, fail, fail]);
    assert.deepEqual(
      seen.map((t) => t.state),
      ["degraded", "degraded", "down"],
    );
    assert.equal(seen[2]!.failStreak, 3);
  });

  it("does not count failures that a success interrupted toward down", () => {
    const clock = new FakeClock();
    const seen = run(clock, healthyAt(clock.now()), [fail, fail, ok, fail, fail]);
    assert.ok(
      seen.every((t) => t.state !== "down"),
      seen.map((t) => t.state).join(","),
    );
  });

  it("needs two successes in a row to recover from down, and a failure between them starts over", () => {
    const clock = new FakeClock();
    const down = run(clock, initialTracker(clock.now()), [fail, fail, fail]).at(-1)!;
    assert.equal(down.state, "down");
    const seen = run(clock, down, [ok, fail, ok, ok]);
    assert.deepEqual(
      seen.map((t) => t.state),
      ["down", "down", "down", "healthy"],
    );
    assert.equal(seen[3]!.since, clock.now(), "since is when it became healthy");
    assert.equal(seen[3]!.okStreak, 2);
    assert.equal(seen[3]!.failStreak, 0);
  });

  it("keeps since while the state does not change and moves it exactly when it does", () => {
    const clock = new FakeClock();
    const start = clock.now();
    const [first, second, third, fourth] = run(clock, degradedAt(start), [fail, fail, fail, fail]);
    assert.equal(first!.since, start, "still degraded: since is the start");
    assert.equal(second!.since, start);
    assert.equal(third!.state, "down");
    assert.equal(third!.since, start + 15_000, "down since the third failure");
    assert.equal(fourth!.since, start + 15_000, "still down: since stays");

    const healthy = healthyAt(start);
    const stillHealthy = nextHealth(healthy, ok, start + 60_000);
    assert.equal(stillHealthy.since, start);
    assert.equal(stillHealthy.state, "healthy");
  });

  it("does not change the tracker it is given", () => {
    const t = initialTracker(0);
    const copy = { ...t };
    nextHealth(t, fail, 10);
    assert.deepEqual(t, copy);
  });

  it("follows other hysteresis settings when given", () => {
    const clock = new FakeClock();
    const h = { degradeAfter: 2, downAfter: 4, recoverAfter: 3 };
    let t = healthyAt(clock.now());
    t = nextHealth(t, fail, clock.now(), h);
    assert.equal(t.state, "healthy", "one failure is tolerated with degradeAfter 2");
    t = nextHealth(t, fail, clock.now(), h);
    assert.equal(t.state, "degraded");
    t = nextHealth(nextHealth(t, ok, 1, h), ok, 2, h);
    assert.equal(t.state, "degraded", "two successes are not enough with recoverAfter 3");
    assert.equal(nextHealth(t, ok, 3, h).state, "healthy");
  });
});

describe("passive health verdict (fake clock)", () => {
  const call = (at: number, okCall: boolean, overloaded = false) => ({ at, ok: okCall, overloaded });

  it("says degraded when 3 of 5 calls in the window failed", () => {
    const clock = new FakeClock();
    const now = clock.now();
    const events = [
      call(now - 9_000, true),
      call(now - 8_000, false),
      call(now - 5_000, true),
      call(now - 2_000, false),
      call(now - 1, false),
    ];
    assert.equal(passiveVerdict(events, now), "degraded");
  });

  it("ignores errors that fell out of the window", () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const events = [call(t0, false), call(t0 + 100, false), call(t0 + 200, false), call(t0 + 9_000, true), call(t0 + 9_500, true)];
    assert.equal(passiveVerdict(events, clock.now() + 9_600), "degraded", "inside the window: 3 of 5 failed");
    clock.advance(12_000);
    const later = [...events, call(clock.now() - 1_000, true), call(clock.now() - 500, true), call(clock.now() - 100, true)];
    assert.equal(passiveVerdict(later, clock.now()), null, "the three errors are more than 10 s old");
  });

  it("says degraded on a single overloaded answer", () => {
    const now = new FakeClock().now();
    assert.equal(passiveVerdict([call(now - 100, false, true)], now), "degraded");
    assert.equal(passiveVerdict([call(now - 20_000, false, true), call(now - 100, true)], now), null, "an old overload has expired");
  });

  it("says nothing on too few calls, however many of them failed", () => {
    const now = new FakeClock().now();
    const four = [call(now - 4, false), call(now - 3, false), call(now - 2, false), call(now - 1, false)];
    assert.equal(passiveVerdict(four, now), null);
    assert.equal(passiveVerdict([], now), null);
  });

  it("says nothing when errors stay under the error rate", () => {
    const now = new FakeClock().now();
    const events = [call(now - 5, true), call(now - 4, false), call(now - 3, true), call(now - 2, false), call(now - 1, true)];
    assert.equal(passiveVerdict(events, now), null, "2 of 5 is under 50%");
  });
});
