/**
 * When and how much to recover, pure (fake-clock tested):
 *   stable    a dependency's parked workflows may come back only after it has
 *             been healthy for the whole stabilisation window (a probe that
 *             flickers healthy once does not release a thundering herd);
 *   waves     then at most `ratePerSec` per second, in waves of at most
 *             `maxWave`, oldest first (the script takes the oldest).
 */
export interface RecoveryOptions {
  stabilisationMs: number;
  ratePerSec: number;
  maxWave: number;
}

export const DEFAULT_RECOVERY: RecoveryOptions = { stabilisationMs: 10_000, ratePerSec: 20, maxWave: 50 };

export function isStable(signal: { state: string; since: number } | null, now: number, stabilisationMs: number): boolean {
  return !!signal && signal.state === "healthy" && now - signal.since >= stabilisationMs;
}

/** How many may be requeued now, given when the last wave went (a token bucket that does not bank past one wave). */
export function waveSize(lastWaveAt: number | undefined, now: number, o: RecoveryOptions): number {
  if (lastWaveAt === undefined) return Math.min(o.maxWave, Math.max(1, Math.floor(o.ratePerSec)));
  const earned = Math.floor(((now - lastWaveAt) / 1000) * o.ratePerSec);
  return Math.min(o.maxWave, earned);
}
