import { type Command, InvalidArgumentError, Option } from "commander";
import { FairlaneWaitError, type ListQuery, type Workflow, type WorkflowPage } from "../client/index.ts";
import { formatPairs, formatTable } from "./table.ts";
import { duration, ms, positiveInt, print, run, withOperatorOptions } from "./operatorOptions.ts";
import { workflowSource, type WorkflowOptions } from "./workflowSource.ts";

/**
 * fairlane workflows list [--tenant t] [--state s] [--class c] [--type x] [--since 1h] [--limit n] [--all]
 * fairlane workflows get <id>
 * fairlane workflows cancel <id>
 * fairlane workflows wait <id> [--timeout 5m]
 * With a tenant API key (--api-key, FAIRLANE_API_KEY) the producer routes; with the admin
 * token the admin routes (list needs --tenant). `wait` exits by how the workflow ended:
 */
export const WAIT_EXIT = { completed: 0, failed: 3, cancelled: 4, timeout: 5 } as const;

const STATES = ["queued", "running", "parked", "review", "completed", "failed", "cancelled"];

function withCredentials(c: Command): Command {
  return withOperatorOptions(c).option(
    "--api-key <key>",
    "a tenant API key (env FAIRLANE_API_KEY): that tenant's workflows, through the producer API",
  );
}

/** An ISO time, epoch ms, or how long ago: "90m" -> the time 90 minutes before now. */
const since = (v: string) => {
  if (/^\d+(s|m|h|d)$/.test(v)) return new Date(Date.now() - duration(v)).toISOString();
  if (/^\d+$/.test(v) || !Number.isNaN(Date.parse(v))) return v;
  throw new InvalidArgumentError('must be an ISO time, epoch ms, or how long ago ("90m", "24h")');
};

const at = (iso: string | null) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–");
const took = (w: Workflow) => (w.startedAt && w.finishedAt ? ms(Date.parse(w.finishedAt) - Date.parse(w.startedAt)) : "–");
const note = (w: Workflow) =>
  w.error ? `${w.error.code}: ${w.error.message}` : (w.waitingReason ?? (w.cancelRequested ? "cancel requested" : ""));

export function workflowRows(workflows: Workflow[]): string {
  return formatTable(
    ["ID", "TYPE", "CLASS", "STATE", "ENQUEUED", "TOOK", "ERROR / WAITING"],
    workflows.map((w) => [w.id, w.type, w.class, w.state, at(w.enqueuedAt), took(w), note(w)]),
    [false, false, false, false, false, true, false],
  );
}

export function workflowPairs(w: Workflow & { waitingCode?: string; parkReason?: string; parkedSince?: string }): string {
  const pairs: [string, string | number][] = [
    ["id", w.id],
    ["tenant", w.tenant],
    ["type / class", `${w.type} / ${w.class}`],
    ["state", w.state + (w.cancelRequested ? " (cancel requested)" : "")],
    ["enqueued", at(w.enqueuedAt)],
    ["started", at(w.startedAt)],
    ["finished", `${at(w.finishedAt)}${w.finishedAt ? ` (took ${took(w)})` : ""}`],
    ["deadline", at(w.deadlineAt)],
    ["attempts", w.attempts],
  ];
  if (w.waitingReason) pairs.push(["waiting", `${w.waitingCode ? `${w.waitingCode}: ` : ""}${w.waitingReason}`]);
  if (w.parkedSince) pairs.push(["parked since", at(w.parkedSince)]);
  if (w.error) pairs.push(["error", `${w.error.code}: ${w.error.message}`]);
  if (w.result !== null && w.result !== undefined) {
    const json = JSON.stringify(w.result);
    pairs.push(["result", json.length > 200 ? `${json.slice(0, 200)}… (--json for all)` : json]);
  }
  return formatPairs(pairs);
}

export function registerWorkflowCommands(program: Command): void {
  const wf = program
    .command("workflows")
    .description("a tenant's workflows: list, get, cancel, wait (tenant API key, or the admin token with --tenant)");
  listCommand(wf);
  getCommand(wf);
  cancelCommand(wf);
  waitCommand(wf);
}

/** `workflows list`: newest first, filtered, one page or --all. */
function listCommand(wf: Command): void {
  withCredentials(wf.command("list").description("list workflows, newest first"))
    .option("--tenant <tenant>", "whose (with the admin token)")
    .addOption(new Option("--state <state>", "only in this state").choices(STATES))
    .addOption(new Option("--class <class>", "only this class").choices(["A", "B", "C"]))
    .option("--type <type>", "only this workflow type")
    .option("--since <time>", 'enqueued at or after: ISO time, epoch ms, or how long ago ("90m", "24h")', since)
    .option("--limit <n>", "workflows per page (1-200)", positiveInt, 50)
    .option("--cursor <cursor>", "the next page (nextCursor of the previous one)")
    .option("--all", "every page")
    .action(
      run(async (o: WorkflowOptions & Omit<ListQuery, "limit"> & { limit: number; all?: boolean }) => {
        const src = workflowSource(o);
        const query: ListQuery = { state: o.state, class: o.class, type: o.type, since: o.since, limit: o.limit, cursor: o.cursor };
        let page: WorkflowPage = await src.list(query);
        if (o.all) {
          const workflows = [...page.workflows];
          while (page.nextCursor) {
            page = await src.list({ ...query, cursor: page.nextCursor });
            workflows.push(...page.workflows);
          }
          page = { workflows, nextCursor: null };
        }
        print(o, page, () => {
          const more = page.nextCursor ? `more: --cursor ${page.nextCursor} (or --all)\n` : "";
          return (page.workflows.length ? workflowRows(page.workflows) : "no workflows\n") + more;
        });
      }),
    );
}

/** `workflows get`: one workflow, and why it waits. */
function getCommand(wf: Command): void {
  withCredentials(wf.command("get").description("one workflow: state, times, error or result, and why it waits").argument("<id>")).action(
    run(async (id: string, o: WorkflowOptions) => {
      const w = await workflowSource(o).get(id);
      print(o, w, () => workflowPairs(w));
    }),
  );
}

/** `workflows cancel`: a queued one at once, a running one at its next check. */
function cancelCommand(wf: Command): void {
  withCredentials(
    wf.command("cancel").description("cancel a queued workflow, or ask a running one to stop (tenant API key)").argument("<id>"),
  ).action(
    run(async (id: string, o: WorkflowOptions) => {
      const w = await workflowSource(o).cancel(id);
      print(
        o,
        w,
        () => `${id}: ${w.state === "cancelled" ? "cancelled" : `cancel requested (it is ${w.state}; it stops at its next check)`}\n`,
      );
    }),
  );
}

/** `workflows wait`: until it ends; the exit code says how (WAIT_EXIT). */
function waitCommand(wf: Command): void {
  withCredentials(
    wf
      .command("wait")
      .description(
        `wait until a workflow ends; exit ${WAIT_EXIT.completed} completed, ${WAIT_EXIT.failed} failed, ${WAIT_EXIT.cancelled} cancelled, ${WAIT_EXIT.timeout} still not ended at --timeout`,
      )
      .argument("<id>"),
  )
    .option("--timeout <duration>", 'give up after this long: "30s", "5m", "1h"', duration, 5 * 60_000)
    .action(
      run(async (id: string, o: WorkflowOptions & { timeout: number }) => {
        let w: Workflow;
        try {
          w = await workflowSource(o).wait(id, { timeoutMs: o.timeout });
        } catch (err) {
          if (!(err instanceof FairlaneWaitError)) throw err;
          if (o.json)
            process.stdout.write(
              `${JSON.stringify({ id, state: err.lastState ?? null, error: { code: "WAIT_TIMEOUT", message: err.message } }, null, 2)}\n`,
            );
          process.stderr.write(
            `fairlane: ${id}: WAIT_TIMEOUT: still ${err.lastState ?? "unseen"} after ${ms(err.waitedMs)} (the workflow goes on)\n`,
          );
          process.exitCode = WAIT_EXIT.timeout;
          return;
        }
        print(o, w, () => (w.state === "completed" ? `${id}: completed (took ${took(w)})\n` : ""));
        if (w.state !== "completed")
          process.stderr.write(`fairlane: ${id}: ${w.state}${w.error ? ` ${w.error.code}: ${w.error.message}` : ""}\n`);
        process.exitCode = WAIT_EXIT[w.state as keyof typeof WAIT_EXIT] ?? 1;
      }),
    );
}
