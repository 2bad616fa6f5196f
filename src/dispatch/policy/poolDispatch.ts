import { CLASSES, type WorkflowClass } from "../../../queues/keys.ts";
import { aEligible, bcEligible, orgEligible, type DispatchCaps, type OrgCaps } from "./caps.ts";
import { chooseClass, execPlace, readyMember, type Lease, type ModelOrg, type ModelTenant, type PoolState } from "./dispatchRule.ts";
import type { ShareOptions } from "./shares.ts";
import { chargeFor, type Entry, enterTogether, heldMs, serve, settle, type WfqClass, type WfqTenant } from "./wfq.ts";

/**
 * The dispatch rule for one pool as an in-memory dispatcher (the rule itself: dispatchRule.ts). It
 * keeps the same state the dispatch script keeps in Redis (ready sets of flows and of each org's
 * tenants, dirty flows, cooldown timers, virtual times) and changes it in the same steps, so the two
 * make the same decisions: the differential test drives both with the same generated events. The
 * simulator (`npm run simulate`) and the unit tests run it with a fake clock.
 */
const perClass = <T>(make: () => T): Record<WorkflowClass, T> => ({ A: make(), B: make(), C: make() });

export class PoolDispatch {
  readonly pool: PoolState;
  readonly tenants = new Map<string, ModelTenant>();
  readonly orgs = new Map<string, ModelOrg>();
  /** Per class: flow (a tenant without an org, or "@<org>") -> score (its virtual time). */
  readonly ready: Record<WorkflowClass, Map<string, number>> = perClass(() => new Map());
  readonly classes: Record<WorkflowClass, WfqClass> = perClass(() => ({}));
  readonly dirty = new Set<string>();
  readonly timers = new Map<string, number>();
  seq = 0;

  constructor(
    capacity: number,
    private readonly shares: ShareOptions,
  ) {
    this.pool = { capacity, used: 0, usedA: 0, usedC: 0 };
  }

  /** A new tenant, or new caps for one (an operator's change): recomputed at the next dispatch. */
  setCaps(name: string, caps: Omit<DispatchCaps, "burstStart">): void {
    const t = this.tenants.get(name);
    if (t) t.caps = { ...caps, burstStart: t.caps.burstStart };
    else
      this.tenants.set(name, {
        caps: { ...caps },
        queued: { A: 0, B: 0, C: 0 },
        runningA: 0,
        runningBC: 0,
        held: 0,
        lastServed: 0,
        wfq: perClass(() => ({})),
        orgWfq: new Map(),
        inOrg: "",
      });
    this.dirty.add(name);
  }

  /** A new org, or new caps for one: recomputed at the next dispatch. */
  setOrg(name: string, caps: OrgCaps): void {
    const o = this.orgs.get(name);
    if (o) o.caps = { ...caps };
    else
      this.orgs.set(name, {
        caps: { ...caps },
        runningA: 0,
        runningBC: 0,
        lastServed: 0,
        wfq: perClass(() => ({})),
        ready: perClass(() => new Map()),
        classes: perClass(() => ({})),
      });
    this.dirty.add(`@${name}`);
  }

  /** Work admitted: a queue that was empty makes its tenant dirty (admission's "became backlogged"). */
  enqueue(name: string, cls: WorkflowClass, n = 1): void {
    const t = this.tenants.get(name)!;
    if (t.queued[cls] === 0 && n > 0) this.dirty.add(name);
    t.queued[cls] += n;
  }

  /** Up to maxMoves dispatches at `now`, in the order the script makes them, `prefetch` slots beyond the capacity. */
  dispatch(now: number, maxMoves: number, prefetch = 0): Lease[] {
    this.pool.prefetch = prefetch;
    // As the script (dispatch-18.lua): tenants, then their orgs once, each group entering its sets together.
    const dirty = [...this.dirty];
    this.dirty.clear();
    const batch: Batch = { orgs: new Set(dirty.filter((n) => n.startsWith("@")).map((n) => n.slice(1))), entries: [] };
    for (const name of dirty) if (!name.startsWith("@")) this.refresh(name, now, batch);
    enterTogether(batch.entries.splice(0));
    for (const org of batch.orgs) this.refreshOrg(org, now, batch);
    enterTogether(batch.entries.splice(0));
    const due = [...this.timers].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    for (const [name] of due.slice(0, 100)) {
      this.timers.delete(name);
      this.refresh(name, now);
    }
    const out: Lease[] = [];
    for (let steps = 0; out.length < maxMoves && steps < maxMoves * 4; steps++) {
      const cls = chooseClass(this.pool, this.shares, (c) => this.ready[c].size > 0);
      if (!cls) break;
      const [flow, v] = this.head(this.ready[cls]);
      const orgName = flow.startsWith("@") ? flow.slice(1) : undefined;
      const org = orgName === undefined ? undefined : this.orgs.get(orgName);
      const [name, iv] = !org ? [flow, v] : org.ready[cls].size ? this.head(org.ready[cls]) : [undefined, undefined];
      const t = name === undefined ? undefined : this.tenants.get(name);
      let ok = false;
      let startsBurst = false;
      if (t && !t.caps.paused && (t.caps.org ?? "") === (orgName ?? "")) {
        if (cls === "A") ok = aEligible(t.caps, t.runningA);
        else ({ eligible: ok, startsBurst } = bcEligible(t.caps, t.runningBC, now));
      }
      const orgOk = !ok || !org || orgEligible(org.caps, org.runningA, org.runningBC, cls);
      if (!ok || !orgOk || t!.queued[cls] <= 0) {
        // As the script: the tenant leaves its org's set, unless the org itself is at its cap.
        if (org && name !== undefined && orgOk) org.ready[cls].delete(name);
        else this.ready[cls].delete(flow);
        this.refresh(org && name !== undefined && orgOk ? name : flow, now);
        continue;
      }
      const lease = this.move(name!, t!, cls, org ? iv! : v, startsBurst, now, orgName, v);
      const movedA = out.some((l) => l.cls === "A");
      const atCap = !bcEligible(t!.caps, t!.runningBC, now).eligible || (!!org && !orgEligible(org.caps, org.runningA, org.runningBC, "B"));
      lease.head = execPlace(cls, prefetch, movedA, atCap) === "head";
      out.push(lease);
    }
    return out;
  }

  /** A run's slot is released at `now` (finished, requeued, parked or reconciled). */
  release(lease: Lease, now: number): void {
    const t = this.tenants.get(lease.tenant)!;
    const cls = lease.cls;
    this.pool.used--;
    t.held--;
    if (cls === "A") this.pool.usedA--;
    else if (cls === "C") this.pool.usedC--;
    const held = heldMs(lease.dispatchedAt, now);
    const org = lease.org === undefined ? undefined : this.orgs.get(lease.org);
    const sets = this.setsOf(lease.org ?? "");
    if (this.releaseLevel(t, lease.tenant, cls, held, lease.charge, this.wfqOf(t, lease.org, cls), this.classOf(lease.org, cls), sets))
      this.dirty.add(lease.tenant);
    if (org && this.releaseLevel(org, `@${lease.org}`, cls, held, lease.orgCharge ?? 0, org.wfq[cls], this.classes[cls], this.ready))
      this.dirty.add(`@${lease.org}`);
  }

  /** One level of a release (releaseSlot.lua's settleLevel, as settled): count, settle, rescore; true when it may be eligible again. */
  private releaseLevel(
    x: { runningA: number; runningBC: number; caps: { weight: number; mca: number; mcaUrgent: number } },
    name: string,
    cls: WorkflowClass,
    held: number,
    charge: number,
    state: WfqTenant,
    klass: WfqClass,
    sets: Record<WorkflowClass, Map<string, number>>,
  ): boolean {
    const may = cls === "A" ? --x.runningA >= x.caps.mcaUrgent - 1 : --x.runningBC >= x.caps.mca - 1;
    const s = settle(state, klass, charge, held, x.caps.weight);
    Object.assign(state, { v: s.v, est: s.est, inflight: s.inflight });
    klass.est = s.classEst;
    if (sets[cls].has(name)) sets[cls].set(name, s.v);
    return may;
  }

  private wfqOf(t: ModelTenant, org: string | undefined, cls: WorkflowClass): WfqTenant {
    if (!org) return t.wfq[cls];
    let w = t.orgWfq.get(org);
    if (!w) t.orgWfq.set(org, (w = perClass(() => ({}))));
    return w[cls];
  }

  private classOf(org: string | undefined, cls: WorkflowClass): WfqClass {
    return org ? this.orgs.get(org)!.classes[cls] : this.classes[cls];
  }

  /** The ready sets a tenant of `org` ("" none) is in. */
  private setsOf(org: string): Record<WorkflowClass, Map<string, number>> {
    return org ? this.orgs.get(org)!.ready : this.ready;
  }

  private lastServed(name: string): number {
    return name.startsWith("@") ? this.orgs.get(name.slice(1))!.lastServed : this.tenants.get(name)!.lastServed;
  }

  private head(set: Map<string, number>): [string, number] {
    let best: [string, number, string] | undefined;
    for (const [name, score] of set) {
      const m = readyMember(this.lastServed(name), name);
      if (!best || score < best[1] || (score === best[1] && m < best[2])) best = [name, score, m];
    }
    return [best![0], best![1]];
  }

  private move(
    name: string,
    t: ModelTenant,
    cls: WorkflowClass,
    v: number,
    startsBurst: boolean,
    now: number,
    orgName: string | undefined,
    ov: number,
  ): Lease {
    t.queued[cls]--;
    const seq = ++this.seq;
    const state = this.wfqOf(t, orgName, cls);
    const klass = this.classOf(orgName, cls);
    const charge = chargeFor(state, klass);
    const org = orgName === undefined ? undefined : this.orgs.get(orgName)!;
    const orgCharge = org ? chargeFor(org.wfq[cls], this.classes[cls]) : undefined;
    this.pool.used++;
    t.held++;
    if (cls === "A") {
      this.pool.usedA++;
      t.runningA++;
      if (org) org.runningA++;
    } else {
      t.runningBC++;
      if (org) org.runningBC++;
      if (startsBurst) t.caps.burstStart = now;
      if (cls === "C") this.pool.usedC++;
    }
    const served = serve(state, v, charge, t.caps.weight);
    klass.now = served.now;
    Object.assign(state, { v: served.v, inflight: served.inflight });
    t.lastServed = seq;
    const bc = bcEligible(t.caps, t.runningBC, now);
    if (bc.retryAt !== undefined) this.timers.set(name, bc.retryAt);
    reseat(this.setsOf(orgName ?? ""), name, cls, served.v, t.queued[cls] > 0, {
      A: aEligible(t.caps, t.runningA),
      B: bc.eligible,
      C: bc.eligible,
    });
    if (org) {
      const os = serve(org.wfq[cls], ov, orgCharge!, org.caps.weight);
      this.classes[cls].now = os.now;
      Object.assign(org.wfq[cls], { v: os.v, inflight: os.inflight });
      org.lastServed = seq;
      const e = (c: WorkflowClass) => orgEligible(org.caps, org.runningA, org.runningBC, c);
      reseat(this.ready, `@${orgName}`, cls, os.v, org.ready[cls].size > 0, { A: e("A"), B: e("B"), C: e("C") });
    }
    return { tenant: name, cls, dispatchedAt: now, charge, seq, startsBurst, ...(org ? { org: orgName, orgCharge } : {}) };
  }

  /**
   * Recomputes a flow's membership in every ready set; entering one starts it at max(v, frontier). With a
   * `batch`, its entries wait to enter together and its old and new org are noted to be placed after it.
   */
  private refresh(name: string, now: number, batch?: Batch): void {
    if (name.startsWith("@")) {
      this.refreshOrg(name.slice(1), now);
      return;
    }
    const t = this.tenants.get(name);
    if (!t) return;
    const org = t.caps.org ?? "";
    if (t.inOrg !== org) {
      const was = t.inOrg;
      for (const cls of CLASSES) this.setsOf(was)[cls].delete(name);
      t.inOrg = org;
      if (was) this.placeOrg(was, now, batch);
    }
    const paused = t.caps.paused;
    const bc = bcEligible(t.caps, t.runningBC, now);
    if (bc.retryAt !== undefined && !paused) this.timers.set(name, bc.retryAt);
    const eligible = { A: !paused && aEligible(t.caps, t.runningA), B: !paused && bc.eligible, C: !paused && bc.eligible };
    const sets = this.setsOf(org);
    for (const cls of CLASSES) {
      if (t.queued[cls] > 0 && eligible[cls]) {
        if (sets[cls].has(name)) continue;
        this.enter(batch, sets[cls], name, this.wfqOf(t, org || undefined, cls), this.classOf(org || undefined, cls), t.caps.weight);
      } else sets[cls].delete(name);
    }
    if (org) this.placeOrg(org, now, batch);
  }

  private placeOrg(org: string, now: number, batch?: Batch): void {
    if (batch) batch.orgs.add(org);
    else this.refreshOrg(org, now);
  }

  /** A flow enters `set` at max(v, frontier): now, or with a batch, together with the batch's others. */
  private enter(batch: Batch | undefined, set: Map<string, number>, name: string, state: WfqTenant, klass: WfqClass, weight: number) {
    const entry = { set, name, state, klass, weight, lowest: () => (set.size ? this.head(set)[1] : undefined) };
    if (batch) batch.entries.push(entry);
    else enterTogether([entry]);
  }

  /** An org's place in the pool's ready sets: where one of its tenants is ready and it is under its cap. */
  private refreshOrg(name: string, _now: number, batch?: Batch): void {
    const o = this.orgs.get(name);
    if (!o) return;
    const flow = `@${name}`;
    for (const cls of CLASSES) {
      if (orgEligible(o.caps, o.runningA, o.runningBC, cls) && o.ready[cls].size > 0) {
        if (this.ready[cls].has(flow)) continue;
        this.enter(batch, this.ready[cls], flow, o.wfq[cls], this.classes[cls], o.caps.weight);
      } else this.ready[cls].delete(flow);
    }
  }
}

/** Refreshes under way: the orgs to place after their tenants, and the flows waiting to enter a ready set. */
interface Batch {
  orgs: Set<string>;
  entries: Entry[];
}

/** A flow served in `cls` keeps its place (and score) in the other classes' sets; in `cls` it has `nv` while backlogged. */
function reseat(
  sets: Record<WorkflowClass, Map<string, number>>,
  name: string,
  cls: WorkflowClass,
  nv: number,
  backlogged: boolean,
  eligible: Record<WorkflowClass, boolean>,
): void {
  for (const x of CLASSES) {
    const old = sets[x].get(name);
    sets[x].delete(name);
    const backlog = x === cls ? backlogged : old !== undefined;
    if (backlog && eligible[x]) sets[x].set(name, x === cls ? nv : old!);
  }
}
