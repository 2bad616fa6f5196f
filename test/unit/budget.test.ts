import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { monthOf, stepBudgetDecision, toolAllowed } from "../../src/runtime/budget.ts";

describe("stepBudgetDecision", () => {
  it("says ok when the step fits comfortably in both budgets", () => {
    assert.equal(stepBudgetDecision(0, 0.01, 0.1, 50), "ok");
    assert.equal(stepBudgetDecision(0.02, 0.06, 0.1, 50), "ok"); // 0.06 of 0.08 left is 75%
  });

  it("says degrade when the estimate would use more than 80% of what remains", () => {
    assert.equal(stepBudgetDecision(0.02, 0.07, 0.1, 50), "degrade"); // 87.5% of 0.08
    assert.equal(stepBudgetDecision(0, 0.09, 0.1, 50), "degrade");
  });

  it("treats spending exactly the remainder as degrade, not refuse, despite float noise", () => {
    // 0.3 − 0.1 is 0.19999999999999998 in floats, less than 0.2; in micro-dollars it is exactly 200,000.
    assert.equal(stepBudgetDecision(0.1, 0.2, 0.3, 50), "degrade");
    assert.equal(stepBudgetDecision(0.07, 0.03, 0.1, 50), "degrade");
  });

  it("refuses a step that would exceed the per-workflow budget", () => {
    assert.equal(stepBudgetDecision(0.05, 0.06, 0.1, 50), "refuse");
    assert.equal(stepBudgetDecision(0.1, 0.000001, 0.1, 50), "refuse");
  });

  it("refuses a step that would exceed what remains of the month, even within the workflow budget", () => {
    assert.equal(stepBudgetDecision(0, 0.4, 2, 0.3), "refuse");
    assert.equal(stepBudgetDecision(0, 0.25, 2, 0.3), "degrade");
    assert.equal(stepBudgetDecision(0, 0.01, 2, -5), "refuse", "an overspent month leaves nothing");
  });

  it("lets a free step through even when nothing remains", () => {
    assert.equal(stepBudgetDecision(0.1, 0, 0.1, 0), "ok");
    assert.equal(stepBudgetDecision(0.5, 0, 0.1, -1), "ok");
  });

  it("rejects amounts that are negative or not numbers instead of deciding on them", () => {
    assert.throws(() => stepBudgetDecision(0, Number.NaN, 0.1, 50), RangeError);
    assert.throws(() => stepBudgetDecision(0, -0.01, 0.1, 50), RangeError);
    assert.throws(() => stepBudgetDecision(-1, 0.01, 0.1, 50), RangeError);
    assert.throws(() => stepBudgetDecision(0, 0.01, 0.1, Number.NaN), RangeError);
  });
});

describe("toolAllowed", () => {
  it("allows every tool when allowedTools is null and nothing is denied", () => {
    assert.equal(toolAllowed("bureau", null, []), true);
  });

  it("allows only the listed tools when allowedTools is a list", () => {
    assert.equal(toolAllowed("bureau", ["bureau", "ocr"], []), true);
    assert.equal(toolAllowed("web.search", ["bureau", "ocr"], []), false);
    assert.equal(toolAllowed("bureau", [], []), false);
  });

  it("lets deniedTools win over both null and an explicit allow", () => {
    assert.equal(toolAllowed("web.search", null, ["web.search"]), false);
    assert.equal(toolAllowed("bureau", ["bureau"], ["bureau"]), false);
  });
});

describe("monthOf", () => {
  it("names the calendar month in UTC, whatever the local time zone", () => {
    assert.equal(monthOf(Date.UTC(2026, 0, 31, 23, 59, 59, 999)), "202601");
    assert.equal(monthOf(Date.UTC(2026, 1, 1)), "202602");
    assert.equal(monthOf(Date.UTC(2026, 11, 31, 23, 59)), "202612");
  });
});
