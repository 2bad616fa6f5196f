import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import {
  acquirePermit,
  recordGateThrottle,
  releasePermit,
  releaseSpending,
  renewPermits,
  wokenIds,
  type GateLimits,
  type SpendArgs,
} from "../../queues/lua/permits.ts";
import { untilAborted } from "../lib/abortable.ts";
import type { Clock } from "../lib/clock.ts";
import { waitBound } from "./gateRule.ts";

export interface Permit {
  cell: string;
  tenant: string;
  id: string;
  batch: boolean;
  acquiredAt: number;
  /** The limits it was acquired under: its release decides with them whom the freed permit lets in. */
  limits: GateLimits;
}

export type GateResult =
  | { ok: true; permit: Permit; waitedMs: number }
  | { ok: false; code: "THROTTLED"; reason: "queue_full" | "wait_timeout"; retryAfterMs: number; waitedMs: number }
  | { ok: false; code: "DEADLINE_EXCEEDED"; waitedMs: number }
  | { ok: false; code: "ABORTED"; waitedMs: number }
  | { ok: false; code: "UNHEALTHY"; dependency: string; waitedMs: number };

export interface GateRequest {
  cell: string;
  tenant: string;
  batch: boolean;
  limits: GateLimits;
  deadlineAt: number | null;
  waitTimeoutMs: number;
  signal?: AbortSignal;
  /** The dependency the call goes to: while it is marked degraded or down, in any process, no permit (UNHEALTHY). */
  dependency?: string;
}

export interface TenantGateStats {
  acquired: number;
  throttled: number;
  deadlineExceeded: number;
  waitMsTotal: number;
  inFlight: number;
  /** Moving average of how long a permit is held: the retryAfterMs estimate. */
  holdMsAvg: number;
}

/**
 * The tool gate of one process: a client of the tenant's distributed
 * semaphore in Redis. States of one call:
 *   try      acquirePermit (one script call): acquired, queued (FIFO),
 *            full → THROTTLED, or the call's dependency is marked degraded
 *            or down (by any process: the look is atomic with the permit) →
 *            UNHEALTHY
 *   wait     until this waiter is named on the cell's gate channel (a release,
 *            an abandoned wait or a lapsed lease let it in: the script names
 *            exactly the waiters that may take a permit, so nobody else
 *            retries), or a poll interval passes — the fallback for a lost
 *            message: pollMs near the head of the queue, longer further back,
 *            since a permit cannot come sooner there — or the wait bound
 *            (timeout or deadline) is hit
 *   give up  abandon the queue place; THROTTLED (timeout) or
 *            DEADLINE_EXCEEDED (the deadline came first)
 * An uncontended call costs one round trip to acquire and one to release (which
 * also adds the call's cost to the month's spend), and publishes nothing. Ids
 * are this gate's random prefix and a counter: unique across processes without
 * drawing random bytes per call.
 * Permits held by this process are renewed every renewMs; a process that
 * dies stops renewing and its permits lapse after leaseMs.
 */
export class ToolGate {
  private readonly held = new Map<string, Permit>();
  /** This process's calls in `acquire`, by id: what a wake-up on the gate channel finds. */
  private readonly waits = new Map<string, Wait>();
  private readonly stats = new Map<string, TenantGateStats>();
  private readonly idPrefix = `${randomBytes(9).toString("base64url")}.`;
  private idSeq = 0;
  private renewTimer: NodeJS.Timeout | undefined;
  private cells: string[] = ["default"];

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly keys: Keys,
    private readonly clock: Clock,
    private readonly opts: { leaseMs: number; renewMs: number; pollMs: number } = { leaseMs: 15_000, renewMs: 5_000, pollMs: 200 },
  ) {}

  async start(cells: string[]): Promise<void> {
    this.cells = cells;
    const channels = new Set(cells.map((c) => this.keys.cell(c).gateChannel));
    this.subscriber.on("message", (channel: string, message: string) => {
      if (channels.has(channel)) for (const id of wokenIds(message)) this.wake(id);
    });
    await this.subscriber.subscribe(...channels);
    this.renewTimer = setInterval(() => void this.renew().catch(() => undefined), this.opts.renewMs);
    this.renewTimer.unref();
  }

  stop(): void {
    clearInterval(this.renewTimer);
  }

  tenantStats(tenant: string): TenantGateStats {
    let s = this.stats.get(tenant);
    if (!s) this.stats.set(tenant, (s = { acquired: 0, throttled: 0, deadlineExceeded: 0, waitMsTotal: 0, inFlight: 0, holdMsAvg: 100 }));
    return s;
  }

  async acquire(r: GateRequest): Promise<GateResult> {
    const id = this.idPrefix + (++this.idSeq).toString(36);
    const wait: Wait = { woken: false, wake: undefined };
    this.waits.set(id, wait);
    try {
      return await this.attempt(r, id, wait);
    } finally {
      this.waits.delete(id);
    }
  }

  private async attempt(r: GateRequest, id: string, wait: Wait): Promise<GateResult> {
    const cell = this.keys.cell(r.cell);
    const start = this.clock.now();
    const bound = waitBound(start, r.deadlineAt, r.waitTimeoutMs);
    const stats = this.tenantStats(r.tenant);
    const waited = () => this.clock.now() - start;
    // Only a call that queued has a place to give up (a release of an id Redis never saw changes nothing).
    let queued = false;
    const leave = () =>
      queued ? releasePermit(this.redis, cell, r.tenant, { id, batch: r.batch, now: this.clock.now(), limits: r.limits }) : undefined;
    for (;;) {
      const now = this.clock.now();
      if (r.signal?.aborted) {
        // Stopped: give the queue place back without waiting for Redis (it may be away).
        void Promise.resolve(leave()).catch(() => undefined);
        return { ok: false, code: "ABORTED", waitedMs: waited() };
      }
      if (now >= bound.until) {
        // Leave the queue; a timeout is counted for the dashboard where a full queue is (in Redis).
        await Promise.all([leave(), bound.byDeadline ? undefined : recordGateThrottle(this.redis, cell, r.tenant, now)]);
        stats.waitMsTotal += waited();
        if (bound.byDeadline) {
          stats.deadlineExceeded++;
          return { ok: false, code: "DEADLINE_EXCEEDED", waitedMs: waited() };
        }
        stats.throttled++;
        return { ok: false, code: "THROTTLED", reason: "wait_timeout", retryAfterMs: Math.round(stats.holdMsAvg), waitedMs: waited() };
      }
      // A wake-up that arrives while this attempt is in flight means: retry at once if it does not succeed.
      wait.woken = false;
      const pending = acquirePermit(this.redis, cell, r.tenant, {
        id,
        batch: r.batch,
        now,
        leaseUntil: now + this.opts.leaseMs,
        waitUntil: bound.until,
        waitStartedAt: start,
        limits: r.limits,
        ...(r.dependency ? { dependency: r.dependency } : {}),
      });
      const out = await untilAborted(pending, r.signal).catch((err: unknown) => {
        if (!r.signal?.aborted) throw err;
        // Stopped while Redis had not answered (it may be away): give back whatever the call gets when it does.
        void pending
          .then((o) =>
            o.kind === "full"
              ? undefined
              : releasePermit(this.redis, cell, r.tenant, { id, batch: r.batch, now: this.clock.now(), limits: r.limits }),
          )
          .catch(() => undefined);
        return undefined;
      });
      if (!out) return { ok: false, code: "ABORTED", waitedMs: waited() };
      if (out.kind === "acquired") {
        const permit: Permit = { cell: r.cell, tenant: r.tenant, id, batch: r.batch, acquiredAt: this.clock.now(), limits: r.limits };
        this.held.set(id, permit);
        stats.acquired++;
        stats.inFlight++;
        stats.waitMsTotal += waited();
        return { ok: true, permit, waitedMs: waited() };
      }
      if (out.kind === "unhealthy") {
        await leave();
        return { ok: false, code: "UNHEALTHY", dependency: r.dependency!, waitedMs: waited() };
      }
      if (out.kind === "full") {
        stats.throttled++;
        return { ok: false, code: "THROTTLED", reason: "queue_full", retryAfterMs: Math.round(stats.holdMsAvg), waitedMs: waited() };
      }
      queued = true;
      // Polling is the fallback for a lost wake-up. Far back in the queue a permit cannot come soon, so
      // poll less there: 500 waiters all polling every 200 ms would cost 2,500 scripts a second.
      const poll = this.opts.pollMs * Math.min(10, 1 + Math.floor(out.position / 16));
      await this.sleepUntilWoken(wait, Math.min(poll, bound.until - this.clock.now()), r.signal);
    }
  }

  /**
   * Gives the permit back, once. With `spend` (the call's cost), the cost is added to the month totals in
   * the same round trip, even for a permit already given back; their new totals are the answer then.
   */
  async release(p: Permit, spend?: SpendArgs): Promise<[number, number] | undefined> {
    const now = this.clock.now();
    if (this.held.delete(p.id)) {
      const s = this.tenantStats(p.tenant);
      s.inFlight--;
      s.holdMsAvg = 0.9 * s.holdMsAvg + 0.1 * (now - p.acquiredAt);
    } else if (!spend) return undefined;
    const cell = this.keys.cell(p.cell);
    const r = { id: p.id, batch: p.batch, now, limits: p.limits };
    if (!spend) return void (await releasePermit(this.redis, cell, p.tenant, r));
    return (await releaseSpending(this.redis, cell, p.tenant, r, spend)).totals;
  }

  /** Waiting tool calls per tenant this process has served, read from Redis (for the queue-depth gauge). */
  async queueDepths(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const tenant of this.stats.keys()) {
      let n = 0;
      for (const c of this.cells) {
        const g = this.keys.cell(c).gate(tenant);
        n += (await this.redis.zcard(g.wait)) + (await this.redis.zcard(g.waitC));
      }
      out.set(tenant, n);
    }
    return out;
  }

  get heldCount(): number {
    return this.held.size;
  }

  private async renew(): Promise<void> {
    const byCell = new Map<string, Permit[]>();
    for (const p of this.held.values()) {
      const list = byCell.get(p.cell);
      if (list) list.push(p);
      else byCell.set(p.cell, [p]);
    }
    for (const [cell, permits] of byCell)
      await renewPermits(this.redis, this.keys.cell(cell), permits, this.clock.now() + this.opts.leaseMs);
  }

  private sleepUntilWoken(wait: Wait, ms: number, signal?: AbortSignal): Promise<void> {
    if (wait.woken || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        wait.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
      wait.wake = done;
    });
  }

  /** A script named this waiter as one that may take a permit now: it retries (at once if it is mid-attempt). */
  private wake(id: string): void {
    const w = this.waits.get(id);
    if (!w) return;
    if (w.wake) w.wake();
    else w.woken = true;
  }
}

/** One call's wait: `wake` while it sleeps; `woken` when a wake-up came while it was not asleep. */
interface Wait {
  woken: boolean;
  wake: (() => void) | undefined;
}
