import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { acquirePermit, recordGateThrottle, releasePermit, renewPermits, type GateLimits } from "../../queues/lua/permits.ts";
import type { Clock } from "../lib/clock.ts";
import { waitBound } from "./gateRule.ts";

export interface Permit {
  cell: string;
  tenant: string;
  id: string;
  batch: boolean;
  acquiredAt: number;
}

export type GateResult =
  | { ok: true; permit: Permit; waitedMs: number }
  | { ok: false; code: "THROTTLED"; reason: "queue_full" | "wait_timeout"; retryAfterMs: number; waitedMs: number }
  | { ok: false; code: "DEADLINE_EXCEEDED"; waitedMs: number }
  | { ok: false; code: "ABORTED"; waitedMs: number };

export interface GateRequest {
  cell: string;
  tenant: string;
  batch: boolean;
  limits: GateLimits;
  deadlineAt: number | null;
  waitTimeoutMs: number;
  signal?: AbortSignal;
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
 *   try      acquirePermit: acquired, queued (FIFO), or full → THROTTLED
 *   wait     until a release is announced for the tenant (pub/sub on the
 *            cell's gate channel; the local waiter queued longest retries:
 *            every process wakes its own, so the queue's head is always
 *            among them), or a poll interval passes — pollMs near the head of
 *            the queue, longer further back, since a permit cannot come
 *            sooner there — or the wait bound (timeout or deadline) is hit
 *   give up  abandon the queue place; THROTTLED (timeout) or
 *            DEADLINE_EXCEEDED (the deadline came first)
 * Permits held by this process are renewed every renewMs; a process that
 * dies stops renewing and its permits lapse after leaseMs.
 */
export class ToolGate {
  private readonly held = new Map<string, Permit>();
  /** Sleeping waiters per `<cell>|<tenant>`, with when each first asked (FIFO order). */
  private readonly waiters = new Map<string, { done: () => void; since: number }[]>();
  private readonly stats = new Map<string, TenantGateStats>();
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
    this.subscriber.on("message", (channel: string, tenant: string) => {
      const cell = cells.find((c) => this.keys.cell(c).gateChannel === channel);
      if (cell) this.wake(`${cell}|${tenant}`);
    });
    await this.subscriber.subscribe(...cells.map((c) => this.keys.cell(c).gateChannel));
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
    const cell = this.keys.cell(r.cell);
    const id = randomBytes(9).toString("base64url");
    const start = this.clock.now();
    const bound = waitBound(start, r.deadlineAt, r.waitTimeoutMs);
    const stats = this.tenantStats(r.tenant);
    const waited = () => this.clock.now() - start;
    for (;;) {
      const now = this.clock.now();
      if (r.signal?.aborted) {
        await releasePermit(this.redis, cell, r.tenant, id);
        return { ok: false, code: "ABORTED", waitedMs: waited() };
      }
      if (now >= bound.until) {
        // Leave the queue; a timeout is counted for the dashboard where a full queue is (in Redis).
        await Promise.all([releasePermit(this.redis, cell, r.tenant, id), bound.byDeadline ? undefined : recordGateThrottle(this.redis, cell, r.tenant, now)]);
        stats.waitMsTotal += waited();
        if (bound.byDeadline) {
          stats.deadlineExceeded++;
          return { ok: false, code: "DEADLINE_EXCEEDED", waitedMs: waited() };
        }
        stats.throttled++;
        return { ok: false, code: "THROTTLED", reason: "wait_timeout", retryAfterMs: Math.round(stats.holdMsAvg), waitedMs: waited() };
      }
      const out = await acquirePermit(this.redis, cell, r.tenant, {
        id,
        batch: r.batch,
        now,
        leaseUntil: now + this.opts.leaseMs,
        waitUntil: bound.until,
        waitStartedAt: start,
        limits: r.limits,
      });
      if (out.kind === "acquired") {
        const permit: Permit = { cell: r.cell, tenant: r.tenant, id, batch: r.batch, acquiredAt: this.clock.now() };
        this.held.set(id, permit);
        stats.acquired++;
        stats.inFlight++;
        stats.waitMsTotal += waited();
        return { ok: true, permit, waitedMs: waited() };
      }
      if (out.kind === "full") {
        stats.throttled++;
        return { ok: false, code: "THROTTLED", reason: "queue_full", retryAfterMs: Math.round(stats.holdMsAvg), waitedMs: waited() };
      }
      // Polling is the fallback for a lost wake-up. Far back in the queue a permit cannot come soon, so
      // poll less there: 500 waiters all polling every 200 ms would cost 2,500 scripts a second.
      const poll = this.opts.pollMs * Math.min(10, 1 + Math.floor(out.position / 16));
      await this.sleepUntilWoken(`${r.cell}|${r.tenant}`, Math.min(poll, bound.until - this.clock.now()), start, r.signal);
    }
  }

  async release(p: Permit): Promise<void> {
    if (!this.held.delete(p.id)) return;
    const s = this.tenantStats(p.tenant);
    s.inFlight--;
    s.holdMsAvg = 0.9 * s.holdMsAvg + 0.1 * (this.clock.now() - p.acquiredAt);
    await releasePermit(this.redis, this.keys.cell(p.cell), p.tenant, p.id);
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
    for (const p of this.held.values()) byCell.set(p.cell, [...(byCell.get(p.cell) ?? []), p]);
    for (const [cell, permits] of byCell) await renewPermits(this.redis, this.keys.cell(cell), permits, this.clock.now() + this.opts.leaseMs);
  }

  private sleepUntilWoken(key: string, ms: number, since: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      this.waiters.set(key, list);
      const entry = {
        since,
        done: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", entry.done);
          const i = list.indexOf(entry);
          if (i >= 0) list.splice(i, 1);
          if (!list.length) this.waiters.delete(key);
          resolve();
        },
      };
      const timer = setTimeout(entry.done, Math.max(0, ms));
      signal?.addEventListener("abort", entry.done, { once: true });
      list.push(entry);
    });
  }

  /** A permit freed: the local waiter that has waited longest (the earliest in the FIFO queue) retries. */
  private wake(key: string): void {
    const list = this.waiters.get(key);
    if (!list?.length) return;
    let first = list[0]!;
    for (const w of list) if (w.since < first.since) first = w;
    first.done();
  }
}
