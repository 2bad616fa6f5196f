/**
 * The settings a "why does it wait" explanation (explain.ts) judges by: the share options and
 * capacity cap the cell's dispatcher published, or this process's configuration while none has.
 */
import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import type { Config } from "../lib/config.ts";
import { DEFAULT_SHARES, type ShareOptions } from "../dispatch/policy/shares.ts";

/** The share options and capacity cap an explanation judges by, and when a deadline counts as soon. */
export interface ExplainSettings extends ShareOptions {
  capacityCap: number;
  /** A queued workflow whose deadline passes within this says deadline_soon. */
  deadlineSoonMs: number;
  /** Where the share options and cap came from: the cell's dispatcher, or this process's configuration. */
  source?: "dispatcher" | "config";
}

/** A cell's `<cell>:dispatch` hash (src/dispatch/dispatcher.ts) as share options and a cap; undefined while no dispatcher wrote it. */
export function publishedSettings(h: Record<string, string>): { shares: ShareOptions; capacityCap: number } | undefined {
  const n = (k: string) => Number(h[k]);
  if (!["reserveFraction", "batchMaxShare", "batchMinShare", "capacityCap"].every((k) => h[k] !== undefined && Number.isFinite(n(k))))
    return undefined;
  return {
    shares: { reserveFraction: n("reserveFraction"), batchMaxShare: n("batchMaxShare"), batchMinShare: n("batchMinShare") },
    capacityCap: n("capacityCap"),
  };
}

/** The dispatcher's published share options and cap; the reader's configuration `s` while none is published. */
export async function dispatcherSettings(redis: Redis, cell: CellKeys, s: ExplainSettings): Promise<ExplainSettings> {
  const published = publishedSettings(await redis.hgetall(cell.dispatchSettings));
  return published ? { ...s, ...published.shares, capacityCap: published.capacityCap, source: "dispatcher" } : { ...s, source: "config" };
}

export const DEFAULT_EXPLAIN: ExplainSettings = { ...DEFAULT_SHARES, capacityCap: 0, deadlineSoonMs: 10_000 };

/** The settings from the config a dispatcher reads (workers/dispatcher.ts): the api process's own environment. */
export function explainSettings(
  c: Pick<Config, "FAIRLANE_RESERVE_A" | "FAIRLANE_BATCH_MAX_SHARE" | "FAIRLANE_BATCH_MIN_SHARE" | "FAIRLANE_POOL_CAPACITY_CAP">,
): ExplainSettings {
  return {
    reserveFraction: c.FAIRLANE_RESERVE_A,
    batchMaxShare: c.FAIRLANE_BATCH_MAX_SHARE,
    batchMinShare: c.FAIRLANE_BATCH_MIN_SHARE,
    capacityCap: c.FAIRLANE_POOL_CAPACITY_CAP,
    deadlineSoonMs: DEFAULT_EXPLAIN.deadlineSoonMs,
  };
}
