/**
 * Dependency health in Redis, one copy per cell so every cell's parking and
 * recovery read it locally (keys in queues/keys.ts):
 *   <cell>:health:<dep>            HASH state since detail source, with a TTL of a few
 *                                  probe intervals: when the monitors stop writing,
 *                                  the signal disappears, and a missing signal is
 *                                  not healthy (fail safe: park rather than hammer).
 *                                  A starting monitor writes "unknown" where nothing
 *                                  is (announce): watched, first verdict under way.
 *                                  That is how "not probed yet since boot" differs
 *                                  from "its monitors died": workflows call an
 *                                  unknown dependency and park on a missing one.
 *   <cell>:health:<dep>:override   HASH an operator's mark (state since detail source
 *                                  operator), no TTL, wins over probes until cleared.
 *   <cell>:deps                    SET every dependency named here.
 *
 * Writers:
 *   probe     healthMonitor.ts: "unknown" at its start where no signal exists
 *             (announce), then every interval (last writer wins; several monitors
 *             agree because they run the same hysteresis on the same probes);
 *   passive   markDegraded, from tool-call outcomes between probes: only ever
 *             downgrades healthy, unknown or missing to degraded;
 *   operator  override, for planned maintenance or a broken probe.
 */
import type { ChainableCommander, Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { markDegraded } from "../../queues/lua/markDegraded.ts";
import { markUnknown } from "../../queues/lua/markUnknown.ts";
import type { Clock } from "../lib/clock.ts";
import { mayCall, type HealthState } from "./healthRule.ts";

export interface HealthSignal {
  state: HealthState;
  since: number;
  detail: string;
  source: "probe" | "passive" | "operator";
}

const STATES: readonly string[] = ["unknown", "healthy", "degraded", "down"];
const SOURCES: readonly string[] = ["probe", "passive", "operator"];

/**
 * Dependency names become key segments: no hash-tag braces or whitespace, and
 * none ending ":override" (health("x:override") would be x's override key).
 */
export function isValidDepName(dep: string): boolean {
  return /^[^\s{}]{1,200}$/.test(dep) && !dep.endsWith(":override");
}

export const DEP_NAME_RULE = '1-200 characters without whitespace, "{" or "}", not ending ":override"';

function checkDep(dep: string): void {
  if (!isValidDepName(dep)) throw new Error(`invalid dependency name ${JSON.stringify(dep)}: ${DEP_NAME_RULE}`);
}

/** A hash as HGETALL returns it, or null when it is missing or malformed (= not healthy). */
function parseSignal(h: Record<string, string> | null | undefined): HealthSignal | null {
  if (!h?.state || !STATES.includes(h.state) || !SOURCES.includes(h.source ?? "")) return null;
  const since = Number(h.since);
  if (!Number.isFinite(since)) return null;
  return { state: h.state as HealthState, since, detail: h.detail ?? "", source: h.source as HealthSignal["source"] };
}

export class HealthStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** The cells every write goes to. */
    readonly cells: string[],
    private readonly clock: Clock,
  ) {
    if (cells.length === 0) throw new Error("HealthStore needs at least one cell");
  }

  /** Writes the signal to every cell (HSET + PEXPIRE ttlMs; SADD deps). Last writer wins; several monitors agree because they run the same hysteresis on the same probes. */
  async write(dep: string, s: HealthSignal, ttlMs: number): Promise<void> {
    checkDep(dep);
    checkTtl(ttlMs);
    await Promise.all(
      this.cells.map(async (name) => {
        const c = this.keys.cell(name);
        const key = c.health(dep);
        // One cell's keys share a hash tag: the commands apply together. A verdict workflows may not
        // call is announced on the signals channel, so exec processes stop calling at once rather than
        // when their health cache next reads Redis (as a passive downgrade is: markDegraded-2.lua).
        const m = this.redis
          .multi()
          .hset(key, { state: s.state, since: String(s.since), detail: s.detail, source: s.source })
          .pexpire(key, ttlMs)
          .sadd(c.deps, dep);
        if (!mayCall(s.state)) m.publish(c.signals, `degraded ${dep}`);
        await execOrThrow(m);
      }),
    );
  }

  /**
   * A starting monitor's "watched, first probe under way": writes "unknown" (TTL ttlMs) in every
   * cell where the dependency has no signal; never touches an existing one (another monitor's
   * verdict or a passive downgrade).
   */
  async announce(dep: string, ttlMs: number): Promise<void> {
    checkDep(dep);
    checkTtl(ttlMs);
    const now = this.clock.now();
    await Promise.all(this.cells.map((name) => markUnknown(this.redis, this.keys.cell(name), dep, now, ttlMs)));
  }

  /** Passive downgrade: marks degraded (source "passive") unless the current signal is already degraded/down (healthy, unknown or missing become degraded); never upgrades. Keeps the existing TTL if longer. */
  async markDegraded(dep: string, detail: string, ttlMs: number): Promise<void> {
    checkDep(dep);
    checkTtl(ttlMs);
    const now = this.clock.now();
    await Promise.all(this.cells.map((name) => markDegraded(this.redis, this.keys.cell(name), dep, now, detail, ttlMs)));
  }

  /** Operator override (planned maintenance): state or null to clear; no TTL; wins over probes. */
  async override(dep: string, state: "down" | "healthy" | null, operator: string): Promise<void> {
    checkDep(dep);
    const now = this.clock.now();
    await Promise.all(
      this.cells.map(async (name) => {
        const c = this.keys.cell(name);
        const key = c.healthOverride(dep);
        if (state === null) {
          await this.redis.del(key);
          return;
        }
        await execOrThrow(
          this.redis
            .multi()
            .del(key) // replace, not merge
            .hset(key, { state, since: String(now), detail: `marked ${state} by ${operator}`, source: "operator", operator })
            .sadd(c.deps, dep),
        );
      }),
    );
  }

  /** Effective signal in a cell: the override if any, else the probe/passive signal; null when missing (= not healthy). */
  async read(cell: string, dep: string): Promise<HealthSignal | null> {
    checkDep(dep);
    const c = this.keys.cell(cell);
    const [override, measured] = await Promise.all([this.redis.hgetall(c.healthOverride(dep)), this.redis.hgetall(c.health(dep))]);
    return parseSignal(override) ?? parseSignal(measured);
  }

  /** The probe/passive signal in a cell, ignoring any override (the monitor resumes from it). */
  async readMeasured(cell: string, dep: string): Promise<HealthSignal | null> {
    checkDep(dep);
    return parseSignal(await this.redis.hgetall(this.keys.cell(cell).health(dep)));
  }

  /**
   * Whether workflows may call the dependency in a cell, the exec's park-or-call question
   * (healthRule.ts mayCall): healthy, or unknown (a monitor's first probe is under way). A
   * missing signal, degraded or down: no.
   */
  async isHealthy(cell: string, dep: string): Promise<boolean> {
    return mayCall((await this.read(cell, dep))?.state);
  }

  /**
   * How many dependencies across this store's cells wait for their first verdict (effective
   * signal "unknown"): /readyz is not ready while any does. Nothing is unknown where no health
   * role runs, or once its monitors' first round has been written.
   */
  async firstProbesPending(): Promise<number> {
    const lists = await Promise.all(this.cells.map((c) => this.list(c)));
    return lists.reduce((n, l) => n + Object.values(l).filter((s) => s?.state === "unknown").length, 0);
  }

  /** Every dependency in the cell's deps set with its effective signal (null: missing = not healthy), by name. */
  async list(cell: string): Promise<Record<string, HealthSignal | null>> {
    const c = this.keys.cell(cell);
    const deps = (await this.redis.smembers(c.deps)).filter(isValidDepName).sort();
    if (deps.length === 0) return {};
    const p = this.redis.pipeline();
    for (const dep of deps) p.hgetall(c.healthOverride(dep)).hgetall(c.health(dep));
    const replies = (await p.exec()) ?? [];
    const out: Record<string, HealthSignal | null> = {};
    deps.forEach((dep, i) => {
      const [errO, override] = replies[2 * i] ?? [];
      const [errM, measured] = replies[2 * i + 1] ?? [];
      if (errO) throw errO;
      if (errM) throw errM;
      out[dep] = parseSignal(override as Record<string, string>) ?? parseSignal(measured as Record<string, string>);
    });
    return out;
  }
}

/** Runs a MULTI and throws the first command error (ioredis resolves them as [err, reply] pairs). */
async function execOrThrow(m: ChainableCommander): Promise<void> {
  for (const [err] of (await m.exec()) ?? []) if (err) throw err;
}

function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new Error(`ttlMs must be a positive integer, got ${ttlMs}`);
}
