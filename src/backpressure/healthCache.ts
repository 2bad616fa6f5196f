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
  /** `version` orders writes: a read from Redis that started before a set() must not undo it. */
  private readonly entries = new Map<string, { healthy: boolean; at: number; version: number }>();
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private version = 0;

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
    if (e && this.now() - e.at <= this.maxAgeMs) return e.healthy;
    // One read per key at a time: every caller that finds the entry stale while it is under way shares it
    // (a busy exec process peeks thousands of times a second; each used to start its own read).
    let read = this.inFlight.get(key);
    if (!read) {
      read = this.read(key, cell, dep).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, read);
    }
    return read;
  }

  private async read(key: string, cell: string, dep: string): Promise<boolean> {
    const version = ++this.version;
    const healthy = await this.reader.isHealthy(cell, dep);
    // A downgrade seen while this read was under way (this process's own failed call, another
    // process's announcement) is newer than what Redis said: keep it.
    const newer = this.entries.get(key);
    if (newer && newer.version > version) return newer.healthy;
    this.entries.set(key, { healthy, at: this.now(), version });
    return healthy;
  }

  /** A passive downgrade seen in this process applies here at once. */
  set(cell: string, dep: string, healthy: boolean): void {
    this.entries.set(`${cell}|${dep}`, { healthy, at: this.now(), version: ++this.version });
  }
}
