/**
 * A process's view of dependency health for the hot path: `peek` answers
 * synchronously from a cache (refreshing it in the background when older
 * than `maxAgeMs`); `check` reads Redis when the cache is stale. Unknown
 * counts as healthy in `peek` (no data yet is not evidence of an outage) and
 * `check` is what decides to park.
 */
export interface HealthReader {
  isHealthy(cell: string, dep: string): Promise<boolean>;
}

export class HealthCache {
  private readonly entries = new Map<string, { healthy: boolean; at: number }>();
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly reader: HealthReader,
    private readonly now: () => number,
    private readonly maxAgeMs = 1_000,
  ) {}

  peek(cell: string, dep: string): boolean {
    const key = `${cell}|${dep}`;
    const e = this.entries.get(key);
    if (!e || this.now() - e.at > this.maxAgeMs) void this.check(cell, dep).catch(() => undefined);
    return e?.healthy ?? true;
  }

  async check(cell: string, dep: string): Promise<boolean> {
    const key = `${cell}|${dep}`;
    const e = this.entries.get(key);
    if (e && this.now() - e.at <= this.maxAgeMs && !this.inFlight.has(key)) return e.healthy;
    this.inFlight.add(key);
    try {
      const healthy = await this.reader.isHealthy(cell, dep);
      this.entries.set(key, { healthy, at: this.now() });
      return healthy;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** A passive downgrade seen in this process applies here at once. */
  set(cell: string, dep: string, healthy: boolean): void {
    this.entries.set(`${cell}|${dep}`, { healthy, at: this.now() });
  }
}
