import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { drillNow, overlaps, overshoots, runsFrom, type RunLine } from "../drill/invariants.ts";

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
    // The same run finishing its work after resuming would overlap a re-run still going.
    const busy = [line("start", "w", 1, 0), line("start", "w", 2, 3000), line("end", "w", 2, 6000), line("end", "w", 1, 5400, "done")];
    assert.deepEqual(
      overlaps(runsFrom(busy, [stop]), [stop], 9000).map((o) => Math.round(o.ms)),
      [400],
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
