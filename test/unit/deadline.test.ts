import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deadlineAtAdmission, deadlineAtDispatch } from "../../src/admission/deadline.ts";
import { FakeClock } from "../../src/lib/clock.ts";

describe("deadline at admission", () => {
  const clock = new FakeClock();
  const now = clock.now();

  it("gives Class A and B the tier budget from admission", () => {
    assert.equal(deadlineAtAdmission("A", now, 30_000, undefined), now + 30_000);
    assert.equal(deadlineAtAdmission("B", now, 120_000, undefined), now + 120_000);
  });

  it("never extends a deadline past the tier budget, and keeps an earlier producer deadline", () => {
    assert.equal(deadlineAtAdmission("B", now, 30_000, now + 3_600_000), now + 30_000);
    assert.equal(deadlineAtAdmission("A", now, 30_000, now + 5_000), now + 5_000);
  });

  it("starts Class C's budget at dispatch unless the producer gave a deadline", () => {
    assert.equal(deadlineAtAdmission("C", now, 30_000, undefined), null);
    assert.equal(deadlineAtAdmission("C", now, 30_000, now + 3_600_000), now + 3_600_000);
    clock.advance(600_000);
    assert.equal(deadlineAtDispatch(null, clock.now(), 30_000), clock.now() + 30_000);
    assert.equal(deadlineAtDispatch(now + 610_000, clock.now(), 30_000), now + 610_000, "only ever shrinks");
  });
});
