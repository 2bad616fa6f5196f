/**
 * The soak's load: a steady, seeded, Poisson arrival stream of mixed work from
 * several tenants of every tier, in every class, well below the pool's
 * capacity, with the producer's odd requests mixed in: idempotency-keyed
 * requests and their replays (which must answer the first workflow), and
 * cancellations: a few of everyone's, at once or a moment later (by then
 * mostly running: dispatch takes milliseconds at this load), and every
 * workflow of one paused tenant, which is certainly still queued — so the
 * queued-cancel path is exercised in every run, however short.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { PolicySpec } from "../../../src/tenancy/policy.ts";
import type { FairlaneSystem, Item } from "../../bench/lib/systems.ts";

/** Tenants of every tier and their share of the arrivals. */
export const TENANTS: { tenant: string; spec: PolicySpec; share: number }[] = [
  { tenant: "quarry-labs", spec: { tier: "free", paused: true }, share: 0.5 },
  { tenant: "northwind-health", spec: { tier: "enterprise" }, share: 3 },
  { tenant: "meridian-health", spec: { tier: "enterprise" }, share: 3 },
  { tenant: "lakeside-clinics", spec: { tier: "professional" }, share: 2 },
  { tenant: "cedar-practice", spec: { tier: "professional" }, share: 2 },
  { tenant: "harbor-lending", spec: { tier: "professional" }, share: 2 },
  { tenant: "summit-credit", spec: { tier: "professional" }, share: 2 },
  { tenant: "pine-clinic", spec: { tier: "free" }, share: 1 },
  { tenant: "oak-dental", spec: { tier: "free" }, share: 1 },
];

const CLASS_MIX: [Item["cls"], number][] = [
  ["A", 0.15],
  ["B", 0.5],
  ["C", 0.35],
];

/**
 * The expected slot time of one workflow of the mix, used to size the arrival
 * rate: half prior-auth agents (1–2 steps of 4 tool calls at 100–200 ms, about
 * 0.4 s with the gate), half sleeps of 0.3–1.5 s (0.9 s). The run reports the
 * utilization it really measured from the observer log.
 */
export const EXPECTED_SERVICE_SEC = 0.65;

export interface Accepted {
  tenant: string;
  cls: Item["cls"];
  type: Item["type"];
  /** The producer's clock just before the enqueue call. */
  at: number;
}

export interface LoadLog {
  arrivals: number;
  /** Every distinct workflow admitted, by id. */
  accepted: Map<string, Accepted>;
  /** Replays of an idempotency key: the id the key named first, and the answer. */
  replays: { tenant: string; key: string; firstId: string; id: string; duplicate: boolean }[];
  keyed: number;
  cancels: { id: string; tenant: string; when: "queued" | "running"; outcome: string }[];
  /** Admission refusals or errors: at this load there should be none. */
  errors: string[];
}

export const newLoadLog = (): LoadLog => ({ arrivals: 0, accepted: new Map(), replays: [], keyed: 0, cancels: [], errors: [] });

const pick = <T>(rnd: number, xs: readonly [T, number][]): T => {
  const total = xs.reduce((s, [, w]) => s + w, 0);
  let r = rnd * total;
  for (const [x, w] of xs) if ((r -= w) < 0) return x;
  return xs.at(-1)![0];
};

function item(rng: () => number, cls: Item["cls"]): Item {
  return rng() < 0.5
    ? { type: "bench-prior-auth", cls, payload: { steps: rng() < 0.5 ? 1 : 2, fanout: 4, submit: false } }
    : { type: "bench-sleep", cls, payload: { durationMs: Math.round(300 + rng() * 1200) } };
}

/** One of each tenant × class × type, and one keyed request per tenant: every per-tenant key exists before the census. */
export async function prime(sys: FairlaneSystem, log: LoadLog): Promise<void> {
  for (const { tenant } of TENANTS.filter((t) => !t.spec.paused))
    for (const [cls] of CLASS_MIX)
      for (const it of [item(() => 0.1, cls), item(() => 0.9, cls)]) {
        for (const e of await sys.enqueue(tenant, [it])) log.accepted.set(e.id, { tenant, cls, type: it.type, at: e.at });
      }
  for (const { tenant } of TENANTS.filter((t) => !t.spec.paused)) {
    const it = { ...item(() => 0.9, "B"), idempotencyKey: `prime-${tenant}` };
    for (const e of await sys.enqueue(tenant, [it])) log.accepted.set(e.id, { tenant, cls: "B", type: it.type, at: e.at });
  }
}

export interface LoadOptions {
  seconds: number;
  ratePerSec: number;
  rng: () => number;
  /** Idempotency TTL of the deployment: a key is replayed only within half of it (so it must still answer). */
  idempotencyTtlSec: number;
  /** Fractions of arrivals: keyed (a new idempotency key), replayed (an earlier key again), cancelled. */
  keyed?: number;
  replayed?: number;
  cancelled?: number;
}

/** Drives the arrivals for `seconds`; resolves when every request it made (and every cancel) has answered. */
export async function drive(sys: FairlaneSystem, o: LoadOptions, log: LoadLog): Promise<void> {
  const { rng } = o;
  const keyed = o.keyed ?? 0.1;
  const replayed = o.replayed ?? 0.02;
  const cancelled = o.cancelled ?? 0.01;
  const tenants = TENANTS.map((t) => [t.tenant, t.share] as [string, number]);
  const paused = new Set(TENANTS.filter((t) => t.spec.paused).map((t) => t.tenant));
  let keys: { tenant: string; key: string; item: Item; id: string; at: number }[] = [];
  const pending: Promise<unknown>[] = [];
  const t0 = Date.now();
  let next = t0;
  let seq = 0;

  const cancel = async (tenant: string, id: string, when: "queued" | "running") => {
    await sleep(when === "running" || paused.has(tenant) ? 100 + rng() * 700 : 0);
    const outcome = await sys.cancel(tenant, id).catch((err: Error) => `error ${err.message}`);
    log.cancels.push({ id, tenant, when, outcome });
  };

  for (;;) {
    next += (-Math.log(1 - rng()) / o.ratePerSec) * 1000; // exponential gaps: a Poisson stream
    if (next - t0 >= o.seconds * 1000) break;
    await sleep(Math.max(0, next - Date.now()));
    log.arrivals++;
    const tenant = pick(rng(), tenants);
    const roll = rng();
    keys = keys.filter((k) => Date.now() - k.at < (o.idempotencyTtlSec * 1000) / 2);
    if (roll < replayed && keys.length) {
      const k = keys[Math.floor(rng() * keys.length)]!;
      pending.push(
        sys.enqueue(k.tenant, [k.item]).then(
          ([e]) => void log.replays.push({ tenant: k.tenant, key: k.key, firstId: k.id, id: e!.id, duplicate: e!.duplicate === true }),
          (err: Error) => void log.errors.push(`replay ${k.tenant}: ${err.message}`),
        ),
      );
      continue;
    }
    const cls = pick(rng(), CLASS_MIX);
    const it = item(rng, cls);
    const isKeyed = roll >= replayed && roll < replayed + keyed;
    if (isKeyed) it.idempotencyKey = `soak-${o.seconds}-${++seq}`;
    const cancelWhen = paused.has(tenant) ? "queued" : rng() < cancelled ? (rng() < 0.5 ? "queued" : "running") : undefined;
    pending.push(
      sys.enqueue(tenant, [it]).then(
        async ([e]) => {
          log.accepted.set(e!.id, { tenant, cls, type: it.type, at: e!.at });
          if (isKeyed) {
            log.keyed++;
            keys.push({ tenant, key: it.idempotencyKey!, item: it, id: e!.id, at: e!.at });
          }
          if (cancelWhen) await cancel(tenant, e!.id, cancelWhen);
        },
        (err: Error) => void log.errors.push(`enqueue ${tenant}: ${err.message}`),
      ),
    );
  }
  await Promise.all(pending);
}
