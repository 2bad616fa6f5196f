import type { Command } from "commander";
import { formatPairs, formatTable } from "./table.ts";
import {
  clientOf,
  ms,
  needYes,
  nonNegNumber,
  positiveInt,
  print,
  run,
  withOperatorOptions,
  type OperatorOptions,
} from "./operatorOptions.ts";

/**
 * fairlane tenants                      every tenant's live usage (GET /v1/admin/usage)
 * fairlane tenant <id>                  one tenant: usage and policy (GET /v1/admin/usage/:tenant)
 * fairlane set <id> --mca 20 ...        change its policy live (PATCH /v1/admin/tenants/:tenant)
 * fairlane pause|resume <id>            (POST /v1/admin/tenants/:tenant/pause|resume)
 * fairlane drain <id> [--class B,C] --yes   cancel its queued workflows (POST .../drain { classes } or { all: true })
 * fairlane erase <id> --before <time> --yes  erase its workflows that ended before then (DELETE .../data?before=)
 * fairlane audit <id> [--workflow wf] [--since t] [--cursor id] [--limit n]   its audit trail, oldest first (GET .../audit)
 */
const state = (t: any) =>
  [t.atCap.any ? "AT CAP" : "", t.paused ? "PAUSED" : "", t.burst.state === "open" ? "BURST" : ""].filter(Boolean).join(",") || "ok";

export function tenantRows(tenants: any[]): string {
  return formatTable(
    ["TENANT", "STATE", "RUN/MCA", "A/CAP", "A·B·C", "TOOLS/MCTC", "GATE-Q", "THR/MIN", "QUEUED", "PARKED", "P99"],
    tenants.map((t) => [
      t.tenant,
      state(t),
      `${t.running.B + t.running.C}/${t.mca}`,
      `${t.running.A}/${t.mcaUrgent}`,
      `${t.running.A}·${t.running.B}·${t.running.C}`,
      `${t.tools.inFlight}/${t.tools.mctc}`,
      t.tools.waiting,
      t.throttledPerMin,
      t.queued.total,
      t.parked,
      ms(t.latency.p99),
    ]),
  );
}

export function registerTenantCommands(program: Command): void {
  registerTenantsList(program);
  registerTenantShow(program);
  registerSet(program);
  registerPauseResume(program);
  registerDrain(program);
  registerErase(program);
  registerAudit(program);
}

/** fairlane tenants */
function registerTenantsList(program: Command): void {
  withOperatorOptions(program.command("tenants").description("list tenants with live usage"))
    .option("--sort <key>", "tenant | running | mcaUse | tools | toolUse | throttled | queued | parked | p99", "running")
    .option("--at-cap", "only tenants at a cap")
    .option("--filter <text>", "tenant ids containing this")
    .action(
      run(async (o: OperatorOptions & { sort: string; atCap?: boolean; filter?: string }) => {
        const q = new URLSearchParams({ sort: o.sort });
        if (o.atCap) q.set("atCap", "1");
        if (o.filter) q.set("q", o.filter);
        const d = await clientOf(o).call("GET", `/v1/admin/usage?${q}`);
        print(o, d, () => {
          const p = d.platform;
          const head = `pool ${p.used}/${p.capacity} slots · Class A ${p.reserveA.usedA} running (reserve ${p.reserveA.slots}) · fairness ${p.fairness.index ?? "–"} · ${p.totals.running} running, ${p.totals.queued} queued, ${p.totals.parked} parked, ${p.totals.atCap} at cap\n`;
          const deps = p.dependencies.length
            ? `dependencies: ${p.dependencies.map((x: any) => `${x.dependency} ${x.state}`).join(", ")}\n`
            : "";
          return `${head + deps}\n${tenantRows(d.tenants)}`;
        });
      }),
    );
}

/** fairlane tenant <id> */
function registerTenantShow(program: Command): void {
  withOperatorOptions(program.command("tenant").description("show one tenant's live usage and policy").argument("<tenant>")).action(
    run(async (tenant: string, o: OperatorOptions) => {
      const d = await clientOf(o).call("GET", `/v1/admin/usage/${encodeURIComponent(tenant)}`);
      const { history: _h, ...rest } = d;
      print(o, rest, () => {
        const t = d.tenant;
        const p = d.policy;
        return formatPairs([
          ["tenant", tenant],
          ["state", t ? state(t) : "–"],
          ["tier / weight", `${p.tier} / ${p.weight}`],
          ["running B+C / mca", t ? `${t.running.B + t.running.C} / ${p.mca} (burst ${p.burst.mca}, ${t.burst.state})` : "–"],
          ["running A / mcaUrgent", t ? `${t.running.A} / ${p.mcaUrgent}` : "–"],
          ["tools in flight / mctc", t ? `${t.tools.inFlight} / ${p.mctc} (batch ${p.mctcBatch})` : "–"],
          ["gate queue · avg wait", t ? `${t.tools.waiting} · ${ms(t.tools.avgWaitMs)}` : "–"],
          ["THROTTLED / min", t ? t.throttledPerMin : "–"],
          ["queued A · B · C", t ? `${t.queued.A} · ${t.queued.B} · ${t.queued.C}` : "–"],
          ["parked", t ? t.parked : "–"],
          [
            "enqueue→start p50/p95/p99",
            t ? `${ms(t.latency.p50)} / ${ms(t.latency.p95)} / ${ms(t.latency.p99)} (${t.latency.samples} starts)` : "–",
          ],
          ["budget per workflow / month", `$${p.budget.perWorkflowUsd} / $${p.budget.monthlyUsd}`],
          ["paused", String(p.paused)],
          ["queues", d.queues.join(", ")],
        ]);
      });
    }),
  );
}

/** fairlane set <id> --mca 20 ... */
function registerSet(program: Command): void {
  withOperatorOptions(program.command("set").description("change a tenant's policy live (only the fields given)").argument("<tenant>"))
    .option("--mca <n>", "max running Class B + C", positiveInt)
    .option("--burst-mca <n>", "burst ceiling", positiveInt)
    .option("--mca-urgent <n>", "max running Class A", positiveInt)
    .option("--mctc <n>", "max concurrent tool calls", positiveInt)
    .option("--mctc-batch <n>", "tool-call ceiling for Class C", positiveInt)
    .option("--weight <n>", "weighted fair share", nonNegNumber)
    .option("--max-queue-depth <n>", "queued workflows before 429", positiveInt)
    .option("--max-queue-bytes <n>", "queued payload bytes before 429", positiveInt)
    .option("--per-workflow-usd <usd>", "cost budget per workflow", nonNegNumber)
    .option("--monthly-usd <usd>", "cost budget per month", nonNegNumber)
    .action(
      run(async (tenant: string, o: OperatorOptions & Record<string, number | undefined>) => {
        const patch: Record<string, unknown> = {};
        for (const [opt, field] of [
          ["mca", "mca"],
          ["mcaUrgent", "mcaUrgent"],
          ["mctc", "mctc"],
          ["mctcBatch", "mctcBatch"],
          ["weight", "weight"],
          ["maxQueueDepth", "maxQueueDepth"],
          ["maxQueueBytes", "maxQueueBytes"],
        ] as const)
          if (o[opt] !== undefined) patch[field] = o[opt];
        if (o.burstMca !== undefined) patch.burst = { mca: o.burstMca };
        const budget: Record<string, number> = {};
        if (o.perWorkflowUsd !== undefined) budget.perWorkflowUsd = o.perWorkflowUsd;
        if (o.monthlyUsd !== undefined) budget.monthlyUsd = o.monthlyUsd;
        if (Object.keys(budget).length) patch.budget = budget;
        if (!Object.keys(patch).length) {
          process.stderr.write("fairlane: nothing to change: give at least one of --mca, --mctc, --per-workflow-usd, ...\n");
          process.exitCode = 2;
          return;
        }
        const d = await clientOf(o).call("PATCH", `/v1/admin/tenants/${encodeURIComponent(tenant)}`, patch);
        const p = d.policy;
        print(
          o,
          d,
          () =>
            `${tenant}: mca ${p.mca} (burst ${p.burst.mca}), mcaUrgent ${p.mcaUrgent}, mctc ${p.mctc} (batch ${p.mctcBatch}), weight ${p.weight}, budget $${p.budget.perWorkflowUsd}/workflow $${p.budget.monthlyUsd}/month\n`,
        );
      }),
    );
}

/** fairlane pause|resume <id> */
function registerPauseResume(program: Command): void {
  for (const action of ["pause", "resume"] as const) {
    withOperatorOptions(
      program
        .command(action)
        .description(`${action} a tenant (its queued work ${action === "pause" ? "stays queued" : "flows again"})`)
        .argument("<tenant>"),
    ).action(
      run(async (tenant: string, o: OperatorOptions) => {
        const d = await clientOf(o).call("POST", `/v1/admin/tenants/${encodeURIComponent(tenant)}/${action}`, {});
        print(o, d, () => `${tenant}: ${d.paused ? "paused" : "resumed"}\n`);
      }),
    );
  }
}

/** fairlane drain <id> [--class B,C] --yes */
function registerDrain(program: Command): void {
  withOperatorOptions(
    program
      .command("drain")
      .description("cancel every queued workflow of a tenant (running and parked work is untouched)")
      .argument("<tenant>"),
  )
    .option("--class <classes>", "only these classes, e.g. C or B,C")
    .option("--yes", "confirm")
    .action(
      run(async (tenant: string, o: OperatorOptions & { class?: string; yes?: boolean }) => {
        if (!needYes(o, `this cancels every queued workflow of ${tenant}`)) return;
        // Said outright: the API drains nothing on an empty body.
        const body = o.class ? { classes: o.class.split(",").map((c) => c.trim()) } : { all: true };
        const d = await clientOf(o).call("POST", `/v1/admin/tenants/${encodeURIComponent(tenant)}/drain`, body);
        print(o, d, () => `${tenant}: ${d.cancelled} queued workflows cancelled (${d.skipped} no longer queued)\n`);
      }),
    );
}

/** fairlane erase <id> --before <time> --yes */
function registerErase(program: Command): void {
  withOperatorOptions(
    program
      .command("erase")
      .description("erase every key of a tenant's workflows that ended before a time (queued, running and parked work is kept)")
      .argument("<tenant>"),
  )
    .requiredOption("--before <time>", "ISO 8601 or epoch ms, not in the future")
    .option("--yes", "confirm")
    .action(
      run(async (tenant: string, o: OperatorOptions & { before: string; yes?: boolean }) => {
        if (!needYes(o, `this erases the records, results and step results of ${tenant}'s workflows that ended before ${o.before}`)) return;
        const q = new URLSearchParams({ before: o.before });
        const d = await clientOf(o).call("DELETE", `/v1/admin/tenants/${encodeURIComponent(tenant)}/data?${q}`);
        const k = d.kept;
        print(
          o,
          d,
          () =>
            `${tenant}: ${d.erased} ended workflows erased (${d.alreadyGone} already expired); kept, not ended: ` +
            `${k.queued} queued, ${k.running} running, ${k.parked} parked; ${k.endedLater} ended since\n`,
        );
      }),
    );
}

/** fairlane audit <id> [--workflow wf] [--since t] [--cursor id] [--limit n] */
function registerAudit(program: Command): void {
  withOperatorOptions(program.command("audit").description("a tenant's audit trail, oldest first").argument("<tenant>"))
    .option("--workflow <id>", "only this workflow's transitions")
    .option("--since <time>", "ISO 8601 or epoch ms")
    .option("--cursor <id>", "only entries after this one (the `more:` line of the previous page)")
    .option("--limit <n>", "entries, 1-1000", positiveInt, 100)
    .action(
      run(async (tenant: string, o: OperatorOptions & { workflow?: string; since?: string; cursor?: string; limit: number }) => {
        const q = new URLSearchParams({ limit: String(o.limit) });
        for (const k of ["workflow", "since", "cursor"] as const) if (o[k]) q.set(k, o[k]);
        const d = await clientOf(o).call("GET", `/v1/admin/tenants/${encodeURIComponent(tenant)}/audit?${q}`);
        print(o, d, () => {
          if (!d.entries.length) return `${tenant}: no audit entries\n`;
          const rows = d.entries.map((e: any) => [e.at, e.workflow ?? "-", e.event, e.by, e.why]);
          const more = d.nextCursor ? `more: --cursor ${d.nextCursor}\n` : "";
          return formatTable(["AT", "WORKFLOW", "EVENT", "BY", "WHY"], rows) + more;
        });
      }),
    );
}
