import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

/**
 * The fault drill (npm run drill), small and with a fixed seed: one iteration
 * of the production layout under a mixed storm, every fault kind once — kill -9
 * of an exec worker, a dispatcher, a recovery worker and an api; SIGSTOP of an
 * exec worker past its lock; Redis stopped with SIGTERM and killed with -9; a
 * downstream outage — and the invariants checked from the workflows' own files.
 */
describe("fault drill", () => {
  it("loses nothing, runs nothing twice at once, exceeds no cap and leaves every counter at zero under every fault kind", {
    timeout: 300_000,
  }, async () => {
    const run = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "test/drill/run.ts", "--iterations", "1", "--seed", "7", "--quick", "--json"],
      { maxBuffer: 10 * 2 ** 20 },
    ).catch((err: { stdout: string; stderr: string; code: number }) => err);
    const last = run.stdout.trim().split("\n").at(-1)!;
    const r = JSON.parse(last) as {
      workflows: number;
      violations: string[];
      faults: Record<string, { injected: number; survived: number }>;
    };
    assert.deepEqual(r.violations, [], run.stdout);
    assert.ok(r.workflows > 100, `${r.workflows} workflows acknowledged`);
    for (const [kind, row] of Object.entries(r.faults)) assert.equal(row.survived, row.injected, kind);
    assert.equal(
      Object.values(r.faults).reduce((s, x) => s + x.injected, 0),
      8,
      "every fault kind injected",
    );
  });
});
