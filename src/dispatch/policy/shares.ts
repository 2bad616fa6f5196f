/**
 * How a pool's capacity divides (DESIGN.md "Scheduling semantics"), pure:
 *   reserveA  slots only Class A may use: `reserveFraction` of capacity, at
 *             least 1 — but never all of it, so a 1-slot pool still runs B/C;
 *   minC      Class C's guaranteed slots while it has backlog (at least 1);
 *   maxC      the most Class C may hold: `batchMaxShare` of capacity, and no more than the
 *             workers' batch limits (`batchCapacity`: lowered while their event loops lag,
 *             src/exec/batchLimit.ts) — but never below minC.
 */
export interface ShareOptions {
  reserveFraction: number;
  batchMaxShare: number;
  batchMinShare: number;
}

export const DEFAULT_SHARES: ShareOptions = { reserveFraction: 0.1, batchMaxShare: 0.5, batchMinShare: 0.05 };

export function poolShares(
  capacity: number,
  o: ShareOptions,
  batchCapacity = Number.POSITIVE_INFINITY,
): { reserveA: number; minC: number; maxC: number } {
  const reserveA = capacity >= 2 ? Math.min(Math.max(1, Math.floor(capacity * o.reserveFraction)), capacity - 1) : 0;
  const minC = capacity > 0 ? Math.max(1, Math.ceil(capacity * o.batchMinShare)) : 0;
  const maxC = Math.max(minC, Math.min(Math.floor(capacity * o.batchMaxShare), batchCapacity));
  return { reserveA, minC, maxC };
}
