import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { drillNow, overlaps, overshoots, RESUME_GRACE_MS, runOns, runsFrom, type RunLine } from "../drill/invariants.ts";

const line = (kind: "start" | "end", id: string, pid: number, at: number, how?: string, cls: "A" | "B" | "C" = "B"): RunLine => ({
  kind,
  id,
  tenant: "t",
  cls,
  pool: "p",
  pid,
  at,
  how,
});

describe("drill invariants (the observer's arithmetic)", () => {
  it("reads one clock in every process: another process's reading falls between two of this one's", () => {
    const before = drillNow();
    const child = Number(
      execFileSync(
        process.execPath,
        ["--import", "tsx", "-e", 'import("./test/drill/invariants.ts").then((m) => process.stdout.write(String(m.drillNow())))'],
        { encoding: "utf8" },
      ),
    );
    const after = drillNow();
    assert.ok(before <= child && child <= after, `${before} <= ${child} <= ${after}`);
  });

  it("closes a killed process's open run at the kill and sees no overlap with its re-run after", () => {
    const runs = runsFrom(
      [line("start", "w", 1, 0), line("start", "w", 2, 150), line("end", "w", 2, 300)],
      [{ kind: "kill9-exec", pid: 1, at: 100 }],
    );
    assert.deepEqual(
      runs.map((r) => [r.pid, r.end, r.how]),
      [
        [1, 100, "killed"],
        [2, 300, "done"],
      ],
    );
    assert.deepEqual(overlaps(runs, [], 1000), []);
  });

  it("flags two runs of one workflow executing at once", () => {
    const runs = runsFrom([line("start", "w", 1, 0), line("start", "w", 2, 50), line("end", "w", 1, 100), line("end", "w", 2, 200)], []);
    assert.deepEqual(
      overlaps(runs, [], 1000).map((o) => o.ms),
      [50],
    );
  });

  it("does not count a frozen process's frozen time as execution, nor a run it stopped on resuming", () => {
    const stop = { kind: "sigstop-exec", pid: 1, at: 100, until: 5000 };
    const lines = [line("start", "w", 1, 0), line("start", "w", 2, 3000), line("end", "w", 2, 3500), line("end", "w", 1, 5002, "stalled")];
    assert.deepEqual(overlaps(runsFrom(lines, [stop]), [stop], 9000), []);
    // A callback that fell due in the freeze ran before the watchdog's tick: the run ended "done" just after SIGCONT.
    const due = [line("start", "w", 1, 0), line("start", "w", 2, 3000), line("end", "w", 2, 6000), line("end", "w", 1, 5000.4, "done")];
    assert.deepEqual(overlaps(runsFrom(due, [stop]), [stop], 9000), []);
    assert.deepEqual(
      runOns(runsFrom(due, [stop]), [stop]).map((ms) => ms.toFixed(1)),
      ["0.4"],
    );
    // Its end line can come before the drill reads its clock after sending SIGCONT.
    const early = [line("start", "w", 1, 0), line("end", "w", 1, 4999.8, "done")];
    assert.deepEqual(runOns(runsFrom(early, [stop]), [stop]), [0]);
    // The same run doing its work for longer than the first timer pass after resuming overlaps a re-run still going.
    const busy = [line("start", "w", 1, 0), line("start", "w", 2, 3000), line("end", "w", 2, 7000), line("end", "w", 1, 6200, "done")];
    assert.deepEqual(
      overlaps(runsFrom(busy, [stop]), [stop], 9000).map((o) => Math.round(o.ms)),
      [1200],
    );
    assert.deepEqual(runOns(runsFrom(busy, [stop]), [stop]), []);
  });

  it("counts a frozen run against its tenant's cap until the freeze, and after SIGCONT only if it goes on past the first pass", () => {
    // The CI failure of 2026-12-04: cap 3, three runs started elsewhere in the freeze, the frozen one ended just after SIGCONT.
    const caps = { tenants: { t: { bc: 3, a: 1 } }, pools: { p: { slots: 10, maxC: 10 } } };
    const stop = { kind: "sigstop-exec", pid: 1, at: 100, until: 7100 };
    const others = ["x", "y", "z"].flatMap((id, i) => [line("start", id, 2, 6800 + i), line("end", id, 2, 7500)]);
    const frozen = (end: number) => runsFrom([line("start", "w", 1, 0), ...others, line("end", "w", 1, end, "done")], [stop]);
    assert.deepEqual(overshoots(frozen(7100.4), [stop], caps, 9000), []);
    assert.deepEqual(
      overshoots(frozen(7100 + RESUME_GRACE_MS + 50), [stop], caps, 9000).map((o) => [o.what, o.seen, o.at]),
      [["tenant t B+C", 4, 7100]],
    );
  });

  it("finds a tenant over its cap at the moment it happens, and lets a slot hand over at the same instant", () => {
    const caps = { tenants: { t: { bc: 1, a: 1 } }, pools: { p: { slots: 5, maxC: 5 } } };
    const handover = runsFrom(
      [line("start", "a", 1, 0), line("end", "a", 1, 100), line("start", "b", 1, 100), line("end", "b", 1, 200)],
      [],
    );
    assert.deepEqual(overshoots(handover, [], caps, 1000), []);
    const over = runsFrom([line("start", "a", 1, 0), line("start", "b", 2, 50), line("end", "a", 1, 100), line("end", "b", 2, 200)], []);
    assert.deepEqual(
      overshoots(over, [], caps, 1000).map((o) => [o.what, o.seen, o.at]),
      [["tenant t B+C", 2, 50]],
    );
  });
});
