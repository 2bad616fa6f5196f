import type { Command } from "commander";
import { formatTable } from "./table.ts";
import { clientOf, needYes, print, run, withOperatorOptions, type OperatorOptions } from "./operatorOptions.ts";

/**
 * fairlane parked list [--tenant t] [--dependency d]     GET /v1/admin/parked
 * fairlane parked requeue <id> | --tenant t               POST /v1/admin/parked/:id/requeue, or .../tenants/:t/parked/requeue
 * fairlane parked fail <id> | --tenant t --yes [--reason] POST /v1/admin/parked/:id/fail, or .../tenants/:t/parked/fail
 */
export function registerParkedCommands(program: Command): void {
  const parked = program.command("parked").description("workflows parked while a dependency is unhealthy");

  withOperatorOptions(parked.command("list").description("list parked workflows, oldest first"))
    .option("--tenant <tenant>", "only this tenant's")
    .option("--dependency <dep>", "only those waiting for this dependency")
    .option("--limit <n>", "at most this many", "100")
    .action(
      run(async (o: OperatorOptions & { tenant?: string; dependency?: string; limit: string }) => {
        const q = new URLSearchParams({ limit: o.limit });
        if (o.tenant) q.set("tenant", o.tenant);
        if (o.dependency) q.set("dependency", o.dependency);
        const d = await clientOf(o).call("GET", `/v1/admin/parked?${q}`);
        print(o, d, () =>
          d.parked.length
            ? formatTable(
                ["ID", "TENANT", "CLASS", "TYPE", "DEPENDENCY", "PARKED AT", "DEADLINE"],
                d.parked.map((p: any) => [p.id, p.tenant, p.class, p.type, p.dependency, p.parkedAt ?? "–", p.deadlineAt ?? "–"]),
              )
            : "no parked workflows\n",
        );
      }),
    );

  for (const action of ["requeue", "fail"] as const) {
    withOperatorOptions(
      parked
        .command(action)
        .description(action === "requeue" ? "put parked workflows back at the head of their queue now" : "end parked workflows failed")
        .argument("[id]", "one workflow id"),
    )
      .option("--tenant <tenant>", "every parked workflow of this tenant")
      .option("--reason <text>", "why (recorded in the workflow's error)")
      .option("--yes", "confirm (required to fail)")
      .action(
        run(async (id: string | undefined, o: OperatorOptions & { tenant?: string; reason?: string; yes?: boolean }) => {
          if (!id === !o.tenant) {
            process.stderr.write("fairlane: give one workflow id or --tenant\n");
            process.exitCode = 2;
            return;
          }
          if (action === "fail" && !needYes(o, `this fails ${id ?? `every parked workflow of ${o.tenant}`}`)) return;
          const body = o.reason ? { reason: o.reason } : {};
          const path = id
            ? `/v1/admin/parked/${encodeURIComponent(id)}/${action}`
            : `/v1/admin/tenants/${encodeURIComponent(o.tenant!)}/parked/${action}`;
          const d = await clientOf(o).call("POST", path, body);
          print(o, d, () =>
            id
              ? `${id}: ${d.outcome}\n`
              : `${o.tenant}: ${d.requeued ?? d.failed} ${action === "requeue" ? "requeued" : "failed"} (${d.skipped} skipped)\n`,
          );
        }),
      );
  }
}
