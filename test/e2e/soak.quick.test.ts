import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

/**
 * The load soak (npm run soak) for 20 seconds: real processes, a steady mixed
 * load with idempotency replays and cancellations (5% here, so that some are
 * cancelled while still queued). Asserts the verdict's key and lifecycle
 * fields only; timings and memory trends need the full run (docs/soak).
 */
interface Verdict {
  noLeakedKeys: boolean;
  allEnded: boolean;
  idempotent: boolean;
  noRefusals: boolean;
}

function soak(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // The soak exits 1 on any violation; its JSON line is what this test reads either way.
    execFile(
      process.execPath,
      ["--import", "tsx", "test/soak/run.ts", ...args],
      { maxBuffer: 20 * 2 ** 20, timeout: 110_000 },
      (err, stdout, stderr) => {
        if (err && !stdout.trim().endsWith("}")) reject(new Error(`${err.message}\n${stderr.slice(-3000)}`));
        else resolve(stdout);
      },
    );
  });
}

describe("load soak", () => {
  it("leaves no per-workflow key without a TTL after draining, and every accepted workflow ends", { timeout: 120_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "fl-soak-test-"));
    try {
      const stdout = await soak(["--seconds", "20", "--cancel", "0.05", "--json", "--out", out]);
      const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
        verdict: Verdict;
        load: { accepted: number; keyed: number };
        keys: { leaks: { pattern: string; count: number; examples: string[] }[] };
        workflows: { open: number; drained: boolean };
      };
      assert.ok(r.load.accepted > 50, `a steady load was admitted (${r.load.accepted})`);
      assert.equal(r.verdict.noRefusals, true, "nothing was refused well below saturation");
      assert.equal(r.workflows.drained, true, "the queues drained");
      assert.equal(r.verdict.allEnded, true, `every accepted workflow ended (${r.workflows.open} did not)`);
      assert.equal(r.verdict.idempotent, true, "every idempotency replay answered the first workflow");
      assert.deepEqual(r.keys.leaks, [], "no per-workflow key without a TTL is left");
      assert.equal(r.verdict.noLeakedKeys, true);
      assert.ok(existsSync(join(out, "results.json")) && existsSync(join(out, "report.md")));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
