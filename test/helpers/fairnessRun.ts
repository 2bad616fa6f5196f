import { setTimeout as sleep } from "node:timers/promises";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { deployment, type Deployment } from "./deployment.ts";
import type { Observation } from "./observer.ts";

/**
 * Fairness of the real system, measured by the observer. The window is the
 * time every tenant had backlog and the start-up skew was gone: from `from`
 * (all tenants admitted, plus one job) to the moment the first tenant started
 * its last workflow.
 */
export function backloggedWindow(o: Observation, from: number): { from: number; to: number; startsInWindow: Record<string, number> } {
  const starts = o.events.filter((e) => e.kind === "start" && e.at >= from);
  const lastStart = new Map<string, number>();
  for (const e of starts) lastStart.set(e.tenant, e.seq);
  const cutoff = Math.min(...lastStart.values());
  const inWindow = starts.filter((e) => e.seq <= cutoff);
  const startsInWindow: Record<string, number> = {};
  for (const e of inWindow) startsInWindow[e.tenant] = (startsInWindow[e.tenant] ?? 0) + 1;
  return { from, to: inWindow.at(-1)!.at, startsInWindow };
}

/**
 * Slot-time per tenant from the workflows' records, exactly: each run held its slot from its
 * dispatch (`dispatchedAt`) to its finish (`finishedAt`), the interval the rule charges, counted
 * where it overlaps [from, to]. Only the two timestamps are read, none of the rule's own state
 * (virtual times, charges); sampleExec measures the same from BullMQ's lists, to within its ±4.5%.
 */
async function slotTimeFromRecords(d: Deployment, tenantOf: Map<string, string>, from: number, to: number) {
  const pipe = d.p.redis.pipeline();
  for (const id of tenantOf.keys()) pipe.hmget(d.p.keys.cell("default").workflow(id), "dispatchedAt", "finishedAt");
  const replies = (await pipe.exec())!;
  const held: Record<string, number> = {};
  [...tenantOf.values()].forEach((tenant, i) => {
    const [dispatchedAt, finishedAt] = (replies[i]![1] as (string | null)[]).map(Number);
    const overlap = Math.min(finishedAt!, to) - Math.max(dispatchedAt!, from);
    if (overlap > 0) held[tenant] = (held[tenant] ?? 0) + overlap;
  });
  return held;
}

/**
 * Samples what holds exec slots (BullMQ's own exec wait + active lists), per
 * tenant, every 10 ms. A slot is held from dispatch (the run enters the wait
 * list) to its release, which comes between the handler's end (the observer's
 * own log) and BullMQ taking the run out of the active list a round trip
 * later; nothing outside Fairlane sees the release itself. So a run whose
 * handler has ended and that is still active counts half: counted whole, a
 * tenant of 10 ms runs measured 4.5% more than it held; not counted, about as
 * much less.
 */
function sampleExec(d: Deployment, tenantOf: Map<string, string>) {
  const cell = d.p.keys.cell("default");
  const held: Record<string, number> = {};
  const ended = new Set<string>();
  let logRead = 0;
  let samples = 0;
  let on = true;
  const done = (async () => {
    while (on) {
      const [[, active], [, wait], [, log]] = (await d.p.redis
        .multi()
        .lrange(cell.queueKey("exec.default", "active"), 0, -1)
        .lrange(cell.queueKey("exec.default", "wait"), 0, -1)
        .lrange(`${d.obs}:log`, logRead, -1)
        .exec()) as [[null, string[]], [null, string[]], [null, string[]]];
      logRead += log.length;
      for (const line of log) {
        const [, kind, id] = line.split("|");
        if (kind === "end") ended.add(id!);
      }
      for (const id of [...active, ...wait]) {
        const t = tenantOf.get(id);
        if (t) held[t] = (held[t] ?? 0) + (ended.has(id) ? 0.5 : 1);
      }
      samples++;
      await sleep(10);
    }
  })();
  return async () => {
    on = false;
    await done;
    return { held, samples };
  };
}

export async function run(
  tenants: Record<string, PolicySpec>,
  jobs: Record<string, { n: number; ms: number }>,
  concurrency: number,
  /** Sample what holds exec slots from this long after admission until a tenant runs dry. */
  sampleAfterMs?: number,
  /** Before the roles start (orgs, say). */
  setup?: (d: Deployment) => Promise<void>,
) {
  const d = await deployment({ ...tenants, warmup: { tier: "professional" } });
  try {
    await setup?.(d);
    d.start("exec", { FAIRLANE_CONCURRENCY: String(concurrency) });
    d.start("dispatcher");
    await d.waitCapacity(concurrency);
    // A pool that has never run anything charges a first run nothing (the rule's
    // estimate is unknown): the tenant admitted first would grab every slot while
    // the others are still being admitted, and pay it back in the window. A few
    // runs first, as in any pool that has been up for a while.
    const minJob = Math.min(...Object.values(jobs).map((j) => j.ms));
    const warm = await d.admit(
      "warmup",
      Array.from({ length: concurrency * 2 }, () => ({ type: "observed", class: "B", payload: { obs: d.obs, durationMs: minJob } })),
    );
    await d.waitEnded(new Map(warm.map((id) => [id, "warmup"])), 30_000);
    const ids = new Map<string, string>();
    for (const [t, j] of Object.entries(jobs)) {
      const items = Array.from({ length: j.n }, () => ({ type: "observed", class: "B", payload: { obs: d.obs, durationMs: j.ms } }));
      for (const id of await d.admit(t, items)) ids.set(id, t);
    }
    const admittedAt = Date.now();
    const maxJob = Math.max(...Object.values(jobs).map((j) => j.ms));
    let stop: ReturnType<typeof sampleExec> | undefined;
    const window = { from: 0, to: 0 };
    if (sampleAfterMs !== undefined) {
      await sleep(sampleAfterMs);
      window.from = Date.now();
      stop = sampleExec(d, ids);
    }
    // Sampling ends when the first tenant runs out of backlog.
    const drained = async () => {
      for (;;) {
        const depths = await Promise.all(
          Object.keys(jobs).map((t) => d.p.redis.llen(d.p.keys.cell("default").queueKey(`ingress.${t}.B`, "wait"))),
        );
        if (depths.some((x) => x === 0)) return;
        await sleep(10);
      }
    };
    let held: Awaited<ReturnType<Awaited<ReturnType<typeof sampleExec>>>> | undefined;
    if (stop) {
      await drained();
      window.to = Date.now();
      held = await stop();
    }
    await d.waitEnded(ids, 120_000);
    const charged = stop ? await slotTimeFromRecords(d, ids, window.from, window.to) : undefined;
    return { o: await d.observation(), from: admittedAt + maxJob, held, charged };
  } finally {
    await d.close();
  }
}
