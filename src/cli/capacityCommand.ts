import type { Command } from "commander";
import { formatTable } from "./table.ts";
import { clientOf, print, run, withOperatorOptions, type OperatorOptions } from "./operatorOptions.ts";

/**
 * fairlane capacity [--window 24h]: GET /v1/admin/capacity-report, one line per tenant with the
 * evidence. A tenant observed for less than the minimum evidence window (FAIRLANE_CAPACITY_MIN_EVIDENCE)
 * shows "not enough data" in place of a change, and the report says so first.
 */
export function registerCapacityCommand(program: Command): void {
  withOperatorOptions(
    program.command("capacity").description("recommend raising or lowering each tenant's mca and mctc, with the evidence"),
  )
    .option("--window <w>", "how far back: e.g. 1h, 24h, 7d", "24h")
    .action(
      run(async (o: OperatorOptions & { window: string }) => {
        const d = await clientOf(o).call("GET", `/v1/admin/capacity-report?window=${encodeURIComponent(o.window)}`);
        const change = (t: any, r: any) =>
          !t.enoughData
            ? `${r.current} (not enough data)`
            : r.action === "keep"
              ? `keep ${r.current}`
              : `${r.action} ${r.current} → ${r.recommended}`;
        const observed = (x: number) =>
          x >= 3_600_000 ? `${Math.round(x / 360_000) / 10}h` : x >= 60_000 ? `${Math.round(x / 6_000) / 10}m` : `${Math.round(x / 1000)}s`;
        print(o, d, () => {
          const table = formatTable(
            ["TENANT", "MCA", "MCTC", "OBSERVED", "CAP-WAIT", "PEAK RUN", "THROTTLED", "PEAK TOOLS"],
            d.tenants.map((t: any) => [
              t.tenant,
              change(t, t.mca),
              change(t, t.mctc),
              `${observed(t.evidence.observedMs)} / ${d.minEvidence}`,
              `${Math.round(t.evidence.capWaitShare * 1000) / 10}%`,
              t.evidence.peakRunning,
              `${t.evidence.throttled}/${t.evidence.throttled + t.evidence.acquired}`,
              t.evidence.peakToolsInFlight,
            ]),
            [false, false, false, true, true, true, true, true],
          );
          const why = d.tenants
            .filter((t: any) => t.mca.action !== "keep" || t.mctc.action !== "keep")
            .map((t: any) =>
              [
                t.mca.action !== "keep" && `  ${t.tenant} mca: ${t.mca.reason}`,
                t.mctc.action !== "keep" && `  ${t.tenant} mctc: ${t.mctc.reason}`,
              ]
                .filter(Boolean)
                .join("\n"),
            )
            .join("\n");
          const head = `capacity report, window ${d.window} (${d.from} to ${d.to}), minimum evidence ${d.minEvidence}\n${d.note ? `${d.note.replace(/^not enough data/, "NOT ENOUGH DATA")}\n` : ""}`;
          return `${head}\n${table}${why ? `\nwhy:\n${why}\n` : ""}`;
        });
      }),
    );
}
