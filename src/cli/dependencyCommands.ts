import type { Command } from "commander";
import { formatTable } from "./table.ts";
import { clientOf, print, run, withOperatorOptions, type OperatorOptions } from "./operatorOptions.ts";

/**
 * fairlane dependency list                 GET /v1/admin/dependencies
 * fairlane dependency down|up|clear <dep>  PUT /v1/admin/dependencies/:dep {state: "down" | "healthy" | null}
 * An operator's mark wins over the health probes until it is cleared.
 */
export function registerDependencyCommands(program: Command): void {
  const dep = program.command("dependency").description("dependency health and operator marks");

  withOperatorOptions(dep.command("list").description("every dependency's health and parked count")).action(
    run(async (o: OperatorOptions) => {
      const d = await clientOf(o).call("GET", "/v1/admin/dependencies");
      print(o, d, () =>
        formatTable(
          ["DEPENDENCY", "STATE", "SOURCE", "SINCE", "PARKED"],
          d.dependencies.map((x: any) => [
            x.dependency,
            x.health?.state ?? "missing",
            x.health?.source ?? "–",
            x.health ? new Date(x.health.since).toISOString() : "–",
            x.parked,
          ]),
        ),
      );
    }),
  );

  for (const [action, state] of [
    ["down", "down"],
    ["up", "healthy"],
    ["clear", null],
  ] as const) {
    withOperatorOptions(
      dep
        .command(action)
        .description(
          action === "clear"
            ? "remove the operator's mark (probes decide again)"
            : `mark it ${state} by hand (wins over probes until cleared)`,
        )
        .argument("<dependency>"),
    ).action(
      run(async (name: string, o: OperatorOptions) => {
        const d = await clientOf(o).call("PUT", `/v1/admin/dependencies/${encodeURIComponent(name)}`, { state });
        print(o, d, () => `${name}: ${action === "clear" ? "mark cleared" : `marked ${state}`}; now ${d.health?.state ?? "missing"}\n`);
      }),
    );
  }
}
