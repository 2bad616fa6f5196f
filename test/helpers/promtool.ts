import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

/**
 * Prometheus' own parser and linter (`promtool check metrics`, Debian package
 * `prometheus`), or undefined when it is not installed.
 */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } | undefined {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return r.error ? undefined : { status: r.status, output: r.stdout + r.stderr };
}

/**
 * promtool exits 1 on a parse error and 3 on lint findings. The only findings
 * allowed are prom-client's own default gauges named *_total.
 */
export function assertPromtoolClean(status: number | null, output: string): void {
  assert.notEqual(status, 1, `promtool could not parse the output:\n${output}`);
  const findings = output
    .split("\n")
    .filter(
      (l) =>
        l.trim() &&
        !l.endsWith(":") &&
        !/^fairlane_process_nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(l.trim()),
    );
  assert.deepEqual(findings, [], "promtool lint findings on Fairlane's metrics");
  assert.ok(status === 0 || status === 3, `promtool exit ${status}`);
}
