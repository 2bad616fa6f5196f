/** What a simulated Downstream (simulator.ts) is configured with, and the check of a latency range. */

export interface DownstreamOptions {
  /** 0 = a free port (default 0). */
  port?: number;
  /** Default "127.0.0.1". */
  host?: string;
  /** Connection-pool size: requests beyond this many in flight are answered 503 POOL_EXHAUSTED at once. */
  capacity: number;
  /** Uniform per request unless the request overrides it with ?latencyMs=N. */
  latencyMs: { min: number; max: number };
  /** Seeds the PRNGs (latencies, failures, token delays) so runs repeat. */
  seed?: number;
  /**
   * How long a request beyond `capacity` waits for a free connection, as a real
   * database pool queues callers, before it is answered 503 POOL_EXHAUSTED.
   * Default 0: turned away at once.
   */
  queueTimeoutMs?: number;
  /** When set, /v1/* requests need `Authorization: Bearer <llmApiKey>` (else 401). */
  llmApiKey?: string;
}

export type Latency = { min: number; max: number };

export function checkLatency(l: Latency, what: string): Latency {
  if (!Number.isFinite(l.min) || !Number.isFinite(l.max) || l.min < 0 || l.max < l.min) {
    throw new RangeError(`${what} must have 0 <= min <= max, got ${JSON.stringify(l)}`);
  }
  return { min: l.min, max: l.max };
}
