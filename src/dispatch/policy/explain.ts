import { CLASSES, type WorkflowClass } from "../../../queues/keys.ts";
import { aEligible, bcEligible, burstWindow, type DispatchCaps } from "./caps.ts";
import { chooseClass, dispatchLimit } from "./dispatchRule.ts";
import { poolShares, type ShareOptions } from "./shares.ts";

/**
 * Why a tenant's queued work is not starting, pure: the dispatch rule
 * (dispatch-18.lua, dispatchRule.ts) asked in reverse. Given the state the
 * script decides on — the tenant's caps as synced into `tp:<t>`, its slots
 * held (`run:<t>`), each allowed pool's capacity and use — each class with
 * queued work gets the constraint that holds it, checked in the script's own
 * order:
 *   not_synced         no `tp:<t>`: the dispatcher has not synced the tenant (the script skips it)
 *   paused             caps.paused (the script never makes it ready)
 *   no_worker          no allowed pool has a live exec worker (capacity 0 everywhere)
 *   tenant_urgent_cap  Class A: aEligible fails (running A at mcaUrgent)
 *   tenant_mca         Class B/C: bcEligible fails (at mca, burst used or cooling down, or at burst.mca)
 *   org_urgent_cap     a tenant of an org, Class A: its org's tenants run the org's mcaUrgent (explainOrg.ts)
 *   org_mca            a tenant of an org, Class B/C: its org's tenants run the org's mca
 *   pool_full          chooseClass gives this class nothing: no slot free, or only the Class A reserve
 *   class_c_share      Class C: chooseClass gives nothing because Class C holds its maximum share
 *   turn               eligible: it waits its fair turn (tenants or orgs ahead in the ready set, its org's
 *                      other tenants ahead in the org's, another class first)
 * A pool decision is chooseClass itself, asked with only this class ready: a
 * tenant allowed several pools is held only if held in every one, and is
 * reported by the pool closest to starting it.
 * Per workflow, two facts of its own come first (explainWorkflow):
 *   dependency_down    its type declares a dependency that is down: the script parks it instead of starting it
 *   deadline_soon      its deadline passes within `soonMs` while held (or passed: expiry fails it next)
 * Rate limits and budgets hold nothing here: rate limits apply per tool call
 * inside a running workflow, and a spent monthly budget refuses admission.
 */
export {
  REASON_CODES,
  type DownDependency,
  type Holder,
  type OrgState,
  type PoolView,
  type Reason,
  type ReasonCode,
  type TenantState,
} from "./explainTypes.ts";
import type { DownDependency, PoolView, Reason, ReasonCode, TenantState } from "./explainTypes.ts";
import { orgReason, orgTurn } from "./explainOrg.ts";

export { orgCapsFromHash } from "./explainOrg.ts";

const at = (ms: number) => new Date(ms).toISOString();
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `tp:<t>` as tenantCaps.lua reads it (written by src/dispatch/tenantSync.ts); null when missing. */
export function capsFromHash(h: Record<string, string>): DispatchCaps | null {
  if (h.mca === undefined) return null;
  const start = h.burstStart === undefined ? NaN : Number(h.burstStart);
  return {
    weight: Number(h.weight),
    mca: Number(h.mca),
    burstMca: Number(h.burstMca),
    burstMs: Number(h.burstMs),
    cooldownMs: Number(h.cooldownMs),
    mcaUrgent: Number(h.mcaUrgent),
    paused: h.paused === "1",
    pools: (h.pools ?? "").split(",").filter(Boolean),
    ...(Number.isFinite(start) ? { burstStart: start } : {}),
    ...(h.org ? { org: h.org } : {}),
  };
}

/** The sum of live exec workers' concurrency, capped as the script caps it (0 = no cap). */
export function poolCapacity(concurrencies: number[], capacityCap: number): number {
  const sum = concurrencies.reduce((s, c) => s + (Number.isFinite(c) ? c : 0), 0);
  return capacityCap > 0 && sum > capacityCap ? capacityCap : sum;
}

/**
 * The sum of the live workers' batch limits, as the dispatch script sums them: each at most its
 * concurrency, a worker without one (or without a number) counting its concurrency.
 */
export function poolBatchCapacity(live: string[], conc: Record<string, string>, batch: Record<string, string>): number {
  const num = (v: string | undefined, or: number) => (v && Number.isFinite(Number(v)) ? Number(v) : or); // Lua's tonumber
  return live.reduce((sum, w) => {
    const c = num(conc[w], 0);
    return sum + Math.min(c, num(batch[w], c));
  }, 0);
}

/** What holds the tenant's queued Class `cls` work; null when it has none queued. */
export function explainClass(s: TenantState, cls: WorkflowClass): Reason | null {
  if (s.queued[cls] <= 0) return null;
  const c = s.caps;
  if (!c)
    return {
      code: "not_synced",
      class: cls,
      message: "the dispatcher has not synced this tenant's policy into its cell yet (is a dispatcher running for the cell?)",
    };
  if (c.paused) return { code: "paused", class: cls, message: "the tenant is paused: nothing of it is dispatched until it is resumed" };
  const live = s.pools.filter((p) => p.capacity > 0);
  if (!live.length) {
    const names = c.pools.join(", ");
    return {
      code: "no_worker",
      class: cls,
      pools: c.pools,
      message: `no live exec worker in the pools this tenant may run in (${names}); it stays queued until one starts`,
    };
  }
  if (cls === "A") {
    if (!aEligible(c, s.running.A))
      return {
        code: "tenant_urgent_cap",
        class: cls,
        running: s.running.A,
        mcaUrgent: c.mcaUrgent,
        message: `tenant at its mcaUrgent: ${s.running.A}/${c.mcaUrgent} Class A running`,
      };
  } else {
    const d = bcEligible(c, s.running.BC, s.now);
    if (!d.eligible) return mcaReason(c, s.running.BC, s.now, cls, d.retryAt);
  }
  const org = orgReason(s, cls);
  if (org) return org;
  const perPool = live.map((p) => poolReason(p, s.shares, cls, s.org?.org));
  return perPool.find((r) => r.code === "turn") ?? perPool[0]!;
}

function mcaReason(c: DispatchCaps, running: number, now: number, cls: WorkflowClass, retryAt: number | undefined): Reason {
  const burst = burstWindow(c, now);
  const base = { code: "tenant_mca" as const, class: cls, running, mca: c.mca, burstMca: c.burstMca, burst };
  if (retryAt !== undefined)
    return {
      ...base,
      cooldownUntil: retryAt,
      message: `tenant at its mca: ${running}/${c.mca} Class B/C running; burst used, cooldown until ${at(retryAt)}`,
    };
  if (burst.state !== "none" && running >= c.burstMca)
    return {
      ...base,
      message: `tenant at its burst cap: ${running}/${c.burstMca} Class B/C running (mca ${c.mca}${burst.state === "open" ? `, burst window open until ${at(burst.until!)}` : ""})`,
    };
  return {
    ...base,
    message: `tenant at its mca: ${running}/${c.mca} Class B/C running${burst.state === "none" ? " (its policy has no burst)" : ""}`,
  };
}

/** The pool's answer for this class, by chooseClass with only this class ready. */
function poolReason(p: PoolView, shares: ShareOptions, cls: WorkflowClass, org: string | undefined): Reason {
  const { reserveA, maxC } = poolShares(p.capacity, shares, p.batchCapacity);
  const nums = { class: cls, pool: p.pool, capacity: p.capacity, used: p.used, usedA: p.usedA, reserveA };
  if (chooseClass(p, shares, (x) => x === cls) === cls) return turnReason(p, shares, cls, nums, org);
  const limit = dispatchLimit(p);
  const slots = `${p.used}/${p.capacity}${limit > p.capacity ? ` (+${limit - p.capacity} prefetch)` : ""} slots in use`;
  if (limit - p.used <= 0) {
    const yielding = cls === "A" && p.usedC > 0 ? "; running Class C workflows are asked to yield to it" : "";
    return { code: "pool_full", ...nums, message: `pool ${p.pool} full: ${slots}${yielding}` };
  }
  if (cls !== "A" && limit - reserveA - (p.used - p.usedA) <= 0) {
    const free = limit - p.used;
    return {
      code: "pool_full",
      ...nums,
      message: `pool ${p.pool} full for Class B/C: ${slots}, the ${plural(free, "free slot")} ${free === 1 ? "is" : "are"} the Class A reserve (${reserveA})`,
    };
  }
  const holders = p.holdersC ?? [];
  const who = holders.length ? `; held by ${holders.map((h) => `${h.tenant} (${h.slots})`).join(", ")}` : "";
  return {
    code: "class_c_share",
    ...nums,
    usedC: p.usedC,
    maxC,
    holders,
    message: `Class C share ${p.usedC}/${maxC} of pool ${p.pool}${lagged(p, shares, maxC)}${who}`,
  };
}

/** When the workers' batch limits, not the share, set Class C's maximum: say so, and how they move. */
function lagged(p: PoolView, shares: ShareOptions, maxC: number): string {
  const byShare = poolShares(p.capacity, shares).maxC;
  return maxC < byShare
    ? `, lowered from ${byShare} by the exec workers' batch limits (they fall while their event loops run late and grow a step every half second while Class C uses them)`
    : "";
}

/** Eligible in pool `p`: what goes first (flows ahead of it or of its org `org`, its org's tenants, another class). */
function turnReason(
  p: PoolView,
  shares: ShareOptions,
  cls: WorkflowClass,
  nums: Omit<Reason, "code" | "message">,
  org: string | undefined,
): Reason {
  const ahead = p.ready?.[cls]?.ahead ?? null;
  const inOrg = org ? orgTurn(p, cls, org) : null;
  const first: string[] = inOrg ? [...inOrg.parts] : [];
  if (ahead && !inOrg) first.push(`${plural(ahead, "tenant or org", "tenants or orgs")} ahead of it in Class ${cls}`);
  const { minC } = poolShares(p.capacity, shares, p.batchCapacity);
  const others = (x: WorkflowClass) => (p.ready?.[x]?.size ?? 0) > 0;
  if (cls === "B" && others("C") && p.usedC < minC) first.push("Class C's guaranteed share goes first");
  if (cls === "C" && others("B") && p.usedC >= minC) first.push("Class B goes first");
  if (cls !== "A" && others("A")) first.push("Class A goes first");
  const message = first.length
    ? `eligible; waiting its fair turn in pool ${p.pool}: ${first.join(", ")} (${p.used}/${p.capacity} slots in use)`
    : `eligible; starts at the dispatcher's next pass in pool ${p.pool} (${p.used}/${p.capacity} slots in use)`;
  return { code: "turn", ...nums, ahead, ...(inOrg ? { org, aheadInOrg: inOrg.aheadInOrg } : {}), message };
}

/** Every class's hold, and the tenant's reasons: each class's, then the given per-head and parked facts. */
export function explainTenantState(
  s: TenantState,
  extra: Reason[] = [],
): { held: Record<WorkflowClass, Reason | null>; reasons: Reason[] } {
  const held = Object.fromEntries(CLASSES.map((c) => [c, explainClass(s, c)])) as Record<WorkflowClass, Reason | null>;
  const reasons = [...CLASSES.map((c) => held[c]).filter((r): r is Reason => r !== null), ...extra];
  return { held, reasons };
}

/** The one reason to show for a tenant (the dashboard's state column): the first hold that is not its turn. */
export function headlineReason(held: Record<WorkflowClass, Reason | null>): Reason | null {
  const all = CLASSES.map((c) => held[c]).filter((r): r is Reason => r !== null);
  return all.find((r) => r.code !== "turn") ?? all[0] ?? null;
}

/** A queued workflow whose type declares a dependency that is down: the script parks it when taken. */
export function dependencyReason(d: DownDependency, cls?: WorkflowClass): Reason {
  const since = d.since !== null ? ` since ${at(d.since)}` : "";
  const by = d.source === "operator" ? " (operator mark)" : "";
  return {
    code: "dependency_down",
    ...(cls ? { class: cls } : {}),
    dependency: d.dependency,
    since: d.since,
    source: d.source,
    heldBack: true,
    message: `held back: dependency ${d.dependency} is down${since}${by}; the dispatcher parks it instead of starting it, and recovery requeues it once ${d.dependency} is healthy`,
  };
}

/** A tenant's parked workflows of one dependency; `heldBack` (how many the dispatcher parked before they started) when known. */
export function parkedReason(
  dep: string,
  parked: number,
  heldBack: number | undefined,
  health: DownDependency | null,
  state: string,
): Reason {
  const now = health?.since != null ? ` (${state} since ${at(health.since)})` : ` (${state})`;
  return {
    code: "dependency_down",
    dependency: dep,
    since: health?.since ?? null,
    source: health?.source ?? null,
    parked,
    heldBack: (heldBack ?? 0) > 0,
    message: `${plural(parked, "workflow")} parked on dependency ${dep}${now}${heldBack === undefined ? "" : `, ${heldBack} held back at dispatch`}; recovery requeues them once it is healthy`,
  };
}

/** One parked workflow: its park reason from its record, since when. */
export function parkedWorkflowReason(dep: string, reason: string | null, parkedAt: number | null, state: string): Reason {
  const since = parkedAt !== null ? ` since ${at(parkedAt)}` : "";
  return {
    code: "dependency_down",
    dependency: dep,
    since: parkedAt,
    heldBack: (reason ?? "").startsWith("held back at dispatch"),
    message: `parked${since}: ${reason ?? `dependency ${dep} was not healthy`}; ${dep} is ${state} now, and recovery requeues it once ${dep} has been healthy for its stabilisation window`,
  };
}

/**
 * One queued workflow: paused first, then its own down dependency, then its
 * class's hold; a deadline passing within `soonMs` wraps whatever holds it.
 */
export function explainWorkflow(
  classReason: Reason,
  w: { deadlineAt: number | null; down: DownDependency | null },
  now: number,
  soonMs: number,
): Reason {
  let r = classReason;
  if (w.down && r.code !== "paused" && r.code !== "not_synced") r = dependencyReason(w.down, classReason.class);
  if (w.deadlineAt !== null && w.deadlineAt - now <= soonMs) {
    const inMs = w.deadlineAt - now;
    const when =
      inMs <= 0
        ? `passed at ${at(w.deadlineAt)}: it fails DEADLINE_EXCEEDED at the next expiry pass, never started`
        : `passes in ${Math.ceil(inMs / 1000)} s (${at(w.deadlineAt)}) unless it starts`;
    return {
      code: "deadline_soon",
      ...(r.class ? { class: r.class } : {}),
      deadlineAt: w.deadlineAt,
      inMs,
      cause: r,
      message: `deadline ${when}; ${r.message}`,
    };
  }
  return r;
}

/** Queued workflows per reason code (the gauge): each class's queued count under its hold. */
export function countByReason(
  queued: Record<WorkflowClass, number>,
  held: Record<WorkflowClass, Reason | null>,
): Partial<Record<ReasonCode, number>> {
  const out: Partial<Record<ReasonCode, number>> = {};
  for (const c of CLASSES) {
    const r = held[c];
    if (r && queued[c] > 0) out[r.code] = (out[r.code] ?? 0) + queued[c];
  }
  return out;
}
