/**
 * The simulated database's connection pool (simulator.ts): `capacity` connections, callers beyond
 * them waiting in line up to queueTimeoutMs. It counts into the Downstream's current stats (read
 * through `stats`, which a reset replaces), globally and per tenant.
 */
import type { ServerResponse } from "node:http";
import { tenantStats, type OwnStats } from "./downstreamStats.ts";

export class ConnectionPool {
  /** Callers waiting for a connection, oldest first; each is told whether it got one. */
  private readonly waiters: ((granted: boolean) => void)[] = [];

  constructor(
    private readonly capacity: number,
    private readonly queueTimeoutMs: number,
    private readonly stats: () => OwnStats,
  ) {}

  /**
   * Takes a pool connection for `tenant` (enter): at once if one is free, else
   * after waiting in line up to queueTimeoutMs (false: none came, or the caller
   * went away). A waiter takes the connection a leaving request frees in the same
   * tick (see leave), so inFlight never exceeds capacity.
   */
  connection(res: ServerResponse, tenant: string): Promise<boolean> | boolean {
    const s = this.stats();
    s.peakDemand = Math.max(s.peakDemand, s.inFlight + s.waiting + 1);
    if (s.inFlight < this.capacity && this.waiters.length === 0) {
      this.enter(tenant);
      return true;
    }
    if (this.queueTimeoutMs === 0) return false;
    return new Promise<boolean>((resolve) => {
      const done = (granted: boolean) => {
        clearTimeout(timer);
        res.off("close", gone);
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        this.stats().waiting--;
        if (granted) this.enter(tenant);
        resolve(granted);
      };
      const gone = () => done(false);
      const timer = setTimeout(gone, this.queueTimeoutMs);
      res.once("close", gone);
      this.stats().waiting++;
      this.waiters.push(done);
    });
  }

  /** Always against the current stats: resetStats carries in-flight gauges over, so they stay balanced. */
  leave(tenant: string): void {
    const s = this.stats();
    s.inFlight--;
    tenantStats(s, tenant).inFlight--;
    // Hand the freed connection to the oldest waiter (it calls enter itself).
    const next = this.waiters[0];
    if (next && s.inFlight < this.capacity) next(true);
  }

  private enter(tenant: string): void {
    const s = this.stats();
    const t = tenantStats(s, tenant);
    s.inFlight++;
    s.peakInFlight = Math.max(s.peakInFlight, s.inFlight);
    t.inFlight++;
    t.peakInFlight = Math.max(t.peakInFlight, t.inFlight);
  }
}
