import { Command } from "commander";
import { formatTable } from "./table.ts";
import { clientOf, print, run, withOperatorOptions, type OperatorOptions } from "./operatorOptions.ts";

/** fairlane capacity [--window 24h]: GET /v1/admin/capacity-report, one line per tenant with the evidence. */
export function registerCapacityCommand(program: Command): void {
  withOperatorOptions(program.command("capacity").description("recommend raising or lowering each tenant's mca and mctc, with the evidence"))
    .option("--window <w>", "how far back: e.g. 1h, 24h, 7d", "24h")
    .action(
      run(async (o: OperatorOptions & { window: string }) => {
        const d = await clientOf(o).call("GET", `/v1/admin/capacity-report?window=${encodeURIComponent(o.window)}`);
        const change = (r: any) => (r.action === "keep" ? `keep ${r.current}` : `${r.action} ${r.current} → ${r.recommended}`);
        print(o, d, () => {
          const table = formatTable(
            ["TENANT", "MCA", "MCTC", "CAP-WAIT", "PEAK RUN", "THROTTLED", "PEAK TOOLS", "SAMPLES"],
            d.tenants.map((t: any) => [
              t.tenant,
              change(t.mca),
              change(t.mctc),
              `${Math.round(t.evidence.capWaitShare * 1000) / 10}%`,
              t.evidence.peakRunning,
              `${t.evidence.throttled}/${t.evidence.throttled + t.evidence.acquired}`,
              t.evidence.peakToolsInFlight,
              t.evidence.samples,
            ]),
          );
          const why = d.tenants
            .filter((t: any) => t.mca.action !== "keep" || t.mctc.action !== "keep")
            .map((t: any) => [t.mca.action !== "keep" && `  ${t.tenant} mca: ${t.mca.reason}`, t.mctc.action !== "keep" && `  ${t.tenant} mctc: ${t.mctc.reason}`].filter(Boolean).join("\n"))
            .join("\n");
          return `capacity report, window ${d.window} (${d.from} to ${d.to})\n\n${table}${why ? `\nwhy:\n${why}\n` : ""}`;
        });
      }),
    );
}
