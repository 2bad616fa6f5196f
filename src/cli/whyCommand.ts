import type { Command } from "commander";
import { clientOf, print, run, withOperatorOptions, type OperatorOptions } from "./operatorOptions.ts";

/**
 * fairlane why <tenant | workflow-id>: what holds it, in one glance (admin token).
 *   a workflow id (wf_ and 20 characters)  GET /v1/admin/workflows/:id: its state, and for a
 *                                          queued or parked one the constraint it waits on
 *   anything else, a tenant                GET /v1/admin/tenants/:tenant/explain: per class
 *                                          queued, running and what holds it, then any other reason
 * The first line is the answer; the lines under it are the evidence.
 */
export const WORKFLOW_ID = /^wf_[A-Za-z0-9_-]{20}$/;

interface Reason {
  code: string;
  message: string;
  class?: string;
}

interface ClassExplain {
  queued: number;
  running: number;
  held: Reason | null;
}

interface TenantExplain {
  tenant: string;
  cell: string;
  at: string;
  classes: Record<"A" | "B" | "C", ClassExplain>;
  reasons: Reason[];
}

interface WorkflowRead {
  id: string;
  tenant: string;
  type: string;
  class: string;
  state: string;
  enqueuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  attempts: number;
  error: { code: string; message: string } | null;
  cancelRequested?: boolean;
  waitingReason?: string;
  waitingCode?: string;
  parkReason?: string;
  parkedSince?: string;
}

/** 350 -> "350ms", 252_000 -> "4m 12s", 7_380_000 -> "2h 3m". */
export function span(x: number): string {
  if (x < 1000) return `${Math.round(x)}ms`;
  const s = Math.floor(x / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

const since = (iso: string | null | undefined, now: number) => (iso ? `${span(Math.max(0, now - Date.parse(iso)))} ago` : "–");
const CLASSES = ["A", "B", "C"] as const;

/** The tenant answer, pure: a headline, one line per class, then reasons not tied to a held class. */
export function explainText(d: TenantExplain, now = Date.now()): string {
  const queued = CLASSES.reduce((s, c) => s + d.classes[c].queued, 0);
  const running = CLASSES.reduce((s, c) => s + d.classes[c].running, 0);
  const held = CLASSES.filter((c) => d.classes[c].queued > 0 && d.classes[c].held);
  const headline = !queued
    ? `${d.tenant}: nothing queued (${running} running)`
    : held.length
      ? `${d.tenant}: ${queued} queued, HELD by ${[...new Set(held.map((c) => d.classes[c].held!.code))].map((code) => `${code} (class ${held.filter((c) => d.classes[c].held!.code === code).join(", ")})`).join(", ")}`
      : `${d.tenant}: ${queued} queued, nothing holds it: it starts as its turn comes`;
  const w = Math.max(...CLASSES.map((c) => `${d.classes[c].queued} queued, ${d.classes[c].running} running`.length));
  const lines = CLASSES.map((c) => {
    const k = d.classes[c];
    const counts = `${k.queued} queued, ${k.running} running`.padEnd(w);
    return `  ${c}  ${counts}  ${k.held ? `${k.held.code}: ${k.held.message}` : k.queued ? "not held" : "–"}`;
  });
  const shown = new Set(CLASSES.map((c) => d.classes[c].held && `${d.classes[c].held!.code}|${d.classes[c].held!.message}`));
  const other = d.reasons
    .filter((r) => !shown.has(`${r.code}|${r.message}`))
    .map((r) => `  ${r.code}${r.class ? ` (class ${r.class})` : ""}: ${r.message}`);
  return `${headline}\n${lines.join("\n")}\n${other.length ? `also:\n${other.join("\n")}\n` : ""}cell ${d.cell}, as of ${d.at} (${since(d.at, now)})\n`;
}

/** The workflow answer, pure. */
export function workflowWhyText(w: WorkflowRead, now = Date.now()): string {
  const who = `${w.id} (${w.tenant}, class ${w.class}, ${w.type})`;
  const hold = w.waitingReason ? `\n  ${w.waitingCode ? `${w.waitingCode}: ` : ""}${w.waitingReason}` : "";
  switch (w.state) {
    case "queued":
      return `${who}: QUEUED for ${since(w.enqueuedAt, now).replace(/ ago$/, "")}, ${w.waitingReason ? "held by" : "nothing holds it: it starts as its turn comes"}${hold}\n`;
    case "parked":
      return `${who}: PARKED${w.parkedSince ? ` since ${since(w.parkedSince, now)}` : ""}${hold}${w.parkReason && !w.waitingReason?.includes(w.parkReason) ? `\n  parked because: ${w.parkReason}` : ""}\n`;
    case "running":
      return `${who}: RUNNING, started ${since(w.startedAt, now)} (attempt ${w.attempts})${w.cancelRequested ? ", cancel requested" : ""}: nothing holds it\n`;
    case "completed":
      return `${who}: COMPLETED ${since(w.finishedAt, now)}: nothing holds it\n`;
    default:
      return `${who}: ${w.state.toUpperCase()} ${since(w.finishedAt, now)}${w.error ? `\n  ${w.error.code}: ${w.error.message}` : ""}\n`;
  }
}

export function registerWhyCommand(program: Command): void {
  withOperatorOptions(
    program
      .command("why")
      .description("what holds a tenant's queued work, or one workflow (admin token)")
      .argument("<tenant|workflow-id>", "a tenant id, or a workflow id (wf_...)"),
  ).action(
    run(async (target: string, o: OperatorOptions) => {
      const admin = clientOf(o);
      if (WORKFLOW_ID.test(target)) {
        const w = await admin.call<WorkflowRead>("GET", `/v1/admin/workflows/${encodeURIComponent(target)}`);
        print(o, w, () => workflowWhyText(w));
      } else {
        const d = await admin.call<TenantExplain>("GET", `/v1/admin/tenants/${encodeURIComponent(target)}/explain`);
        print(o, d, () => explainText(d));
      }
    }),
  );
}
