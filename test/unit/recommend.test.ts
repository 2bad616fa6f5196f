import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { recommend, type RecommendOptions } from "../../src/usage/recommend.ts";
import { parseDuration } from "../../src/usage/capacityReport.ts";
import { emptyEvidence, type Evidence } from "../../src/usage/usageRollup.ts";

/**
 * The capacity recommendation's evidence rules, pure: time is the sampler's
 * tick times the samples (a fake clock of 1 s ticks), nothing touches Redis.
 */
const DAY = 86_400_000;
const opts: RecommendOptions = { minEvidenceMs: DAY, sampleMs: 1_000 };
const seconds = (s: number): Pick<Evidence, "samples"> => ({ samples: s });

describe("capacity recommendation needs a minimum window of evidence", () => {
  it("on 90 s of data it says 'not enough data', recommends nothing and says what it knows", () => {
    // The reported case: 90 s after start, a tenant with mca 150 peaking at 5 running was told to go to 7.
    const e = { ...emptyEvidence(), ...seconds(90), peakRunning: 5, peakToolsInFlight: 0, acquired: 0, mca: 150, mctc: 50 };
    const r = recommend("meridian", e, { mca: 150, mctc: 50 }, opts);
    assert.equal(r.enoughData, false);
    assert.deepEqual([r.mca.action, r.mca.recommended, r.mctc.action, r.mctc.recommended], ["keep", 150, "keep", 50]);
    assert.match(r.mca.reason, /^not enough data: observed 1\.5 min \(90 samples\), need 1 d; so far peak running 5 of mca 150/);
    assert.match(r.mctc.reason, /peak tool calls in flight 0 of mctc 50/);
    assert.equal(r.evidence.observedMs, 90_000);
  });

  it("even a tenant waiting at its cap in every sample gets no raise until the window is met", () => {
    const e = { ...emptyEvidence(), samples: 3_600, capWait: 3_600, peakRunning: 10, throttled: 500, acquired: 500 };
    const r = recommend("busy", e, { mca: 10, mctc: 20 }, opts);
    assert.equal(r.enoughData, false);
    assert.equal(r.mca.action, "keep");
    assert.match(r.mca.reason, /observed 1 h .* need 1 d; .*work waiting in 100 % of samples/);
    assert.match(r.mctc.reason, /500 of 1000 THROTTLED/);
  });

  it("the window is configurable: the same evidence is enough with a 1-hour minimum", () => {
    const e = { ...emptyEvidence(), samples: 3_600, capWait: 3_600, peakRunning: 10 };
    const r = recommend("busy", e, { mca: 10, mctc: 20 }, { ...opts, minEvidenceMs: 3_600_000 });
    assert.equal(r.enoughData, true);
    assert.deepEqual([r.mca.action, r.mca.recommended], ["raise", 15]);
  });

  it("a slower sampler tick counts each sample for longer", () => {
    const e = { ...emptyEvidence(), samples: 8_640, peakRunning: 1, peakToolsInFlight: 1 };
    assert.equal(recommend("t", e, { mca: 50, mctc: 50 }, opts).enoughData, false, "8,640 samples at 1 s: 2.4 h");
    assert.equal(recommend("t", e, { mca: 50, mctc: 50 }, { ...opts, sampleMs: 10_000 }).enoughData, true, "at 10 s: 24 h");
  });
});

describe("capacity recommendation with enough data", () => {
  const day = { samples: DAY / 1_000 };

  it("raises a cap that is often hit and lowers one never approached", () => {
    const e = { ...emptyEvidence(), ...day, capWait: 60_480, peakRunning: 10, acquired: 900, throttled: 100, peakToolsInFlight: 50 };
    const r = recommend("t", e, { mca: 10, mctc: 50 }, opts);
    assert.deepEqual([r.mca.action, r.mca.recommended, r.mctc.action, r.mctc.recommended], ["raise", 15, "raise", 75]);
    const quiet = recommend(
      "q",
      { ...emptyEvidence(), ...day, peakRunning: 2, peakToolsInFlight: 3, acquired: 50, starts: 40 },
      { mca: 50, mctc: 200 },
      opts,
    );
    assert.deepEqual([quiet.mca.action, quiet.mca.recommended, quiet.mctc.action, quiet.mctc.recommended], ["lower", 3, "lower", 4]);
    assert.match(quiet.mca.reason, /peak running 2 never reached half of mca 50 in 1 d observed/);
  });

  it("never recommends a value below the observed peak use", () => {
    for (const peak of [1, 2, 3, 4, 5, 7, 10, 33, 99]) {
      const r = recommend(
        "t",
        { ...emptyEvidence(), ...day, peakRunning: peak, peakToolsInFlight: peak, acquired: 1_000 },
        { mca: 1_000, mctc: 1_000 },
        opts,
      );
      assert.equal(r.mca.action, "lower");
      assert.ok(
        r.mca.recommended >= peak && r.mctc.recommended >= peak,
        `peak ${peak}: mca ${r.mca.recommended}, mctc ${r.mctc.recommended}`,
      );
    }
  });

  it("does not cut a tenant that ran nothing to 1: no use is no evidence", () => {
    const r = recommend("idle", { ...emptyEvidence(), ...day }, { mca: 150, mctc: 50 }, opts);
    assert.equal(r.enoughData, true);
    assert.deepEqual([r.mca.action, r.mca.recommended, r.mctc.action, r.mctc.recommended], ["keep", 150, "keep", 50]);
    assert.match(r.mca.reason, /nothing ran in 1 d observed/);
    assert.match(r.mctc.reason, /no tool call in flight/);
  });
});

describe("evidence durations", () => {
  it("parses a number and a unit s, m, h or d", () => {
    assert.equal(parseDuration("24h"), DAY);
    assert.equal(parseDuration("90s"), 90_000);
    assert.equal(parseDuration("0m"), 0);
    for (const bad of ["", "24", "1w", "1.5h", "-1h"]) assert.equal(parseDuration(bad), undefined, bad);
  });
});
