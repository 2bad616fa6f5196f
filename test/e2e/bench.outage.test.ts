import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

/**
 * The benchmark harness itself (npm run bench), on its smallest scenario: the
 * backpressure drill, controls off vs on, real processes. Checks the output
 * contract (--json: the last line is one JSON object), the report files, and
 * the claim the scenario exists for: parking sends far fewer calls to a failed
 * dependency than naive retries, and loses nothing; and that the call probe in the
 * calling processes sees the retries naive callers start after a failure.
 */
describe("benchmark harness", () => {
  it("runs the backpressure drill, prints the JSON contract last and writes results.json and report.md", { timeout: 240_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "fl-bench-test-"));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ["--import", "tsx", "test/bench/run.ts", "--quick", "--only", "outage", "--json", "--out", out],
        {
          maxBuffer: 10 * 2 ** 20,
        },
      );
      const last = stdout.trim().split("\n").at(-1)!;
      const c = JSON.parse(last) as {
        outage: {
          amplificationOn: number;
          amplificationOff: number;
          completedOn: number;
          probesOn: number;
          startedAfterObservedPerWorkflowOff: number;
        };
      };
      assert.ok(
        c.outage.amplificationOff > 5 * Math.max(1, c.outage.amplificationOn),
        `naive retries ${c.outage.amplificationOff} vs parking ${c.outage.amplificationOn} calls per workflow`,
      );
      assert.equal(c.outage.completedOn, 40, "every parked workflow completed after recovery");
      assert.ok(c.outage.probesOn > 0, "health probes are counted apart");
      // The callers' side of the wire (test/bench/lib/callProbe.ts) sees what naive retries send after a failure.
      assert.ok(
        c.outage.startedAfterObservedPerWorkflowOff > 5,
        `plain's calls started after the first failure a caller saw: ${c.outage.startedAfterObservedPerWorkflowOff} per workflow`,
      );
      const saved = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { contract: unknown };
      assert.deepEqual(saved.contract, c);
      assert.match(readFileSync(join(out, "report.md"), "utf8"), /## 4\. Backpressure drill/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
