/**
 * npm run drill [-- --iterations N] [--seed S] [--quick] [--faults k1,k2] [--json]
 *
 * The fault drill: the production layout as local processes (npm run
 * topology), a mixed storm of several tenants and all classes submitted over
 * HTTP to both api processes, and at random times: kill -9 of an exec worker,
 * a dispatcher, a recovery worker, an api; SIGSTOP of an exec worker past its
 * lock, then SIGCONT; Redis stopped with SIGTERM and killed with -9
 * (appendfsync always), each restarted on the same data; a downstream outage.
 * The supervisor restarts what was killed. After each iteration the system
 * quiesces and the drill checks, from the workflows' own start/end files and
 * the faults it injected (never Fairlane's counters):
 *   - every workflow the API acknowledged ended (completed, failed with a
 *     reason, cancelled) — none vanished;
 *   - no workflow executed twice at the same time (a frozen process's frozen
 *     time is not execution, nor the moment after SIGCONT of a run it stopped
 *     on resuming, which is reported apart; re-runs after a crash are counted,
 *     at-least-once);
 *   - no tenant cap, Class A cap, Class C share or pool capacity exceeded;
 *   - slot, permit and queued counters back to exactly zero.
 * Prints a table per fault kind; exits 1 on any violation.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { mulberry32 } from "../../src/dev/downstream/simulator.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { poolShares, DEFAULT_SHARES } from "../../src/dispatch/policy/shares.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { startTopology, type Topology } from "../../src/dev/topology/topology.ts";
import { FAULT_KINDS, inject, type FaultKind } from "./faults.ts";
import {
  drillNow,
  overlaps,
  overshoots,
  RESUME_GRACE_MS,
  runOns,
  runsFrom,
  type Caps,
  type FaultRecord,
  type RunLine,
} from "./invariants.ts";

const { values: args } = parseArgs({
  options: {
    iterations: { type: "string" },
    seed: { type: "string", default: "1" },
    quick: { type: "boolean", default: false },
    faults: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const quick = args.quick!;
const ITERATIONS = Number(args.iterations ?? (quick ? 2 : 8));
const SEED = Number(args.seed);
const LOCK_MS = 3_000;
const CONCURRENCY = 6;
const LOAD_MS = quick ? 20_000 : 30_000;
const kinds = (args.faults ? args.faults.split(",") : [...FAULT_KINDS]) as FaultKind[];
for (const k of kinds)
  if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`--faults: unknown fault "${k}" (one of ${FAULT_KINDS.join(", ")})`);
const log = (m: string) => process.stderr.write(`drill: ${m}\n`);
process.setMaxListeners(0);

const TENANTS: Record<string, PolicySpec> = {
  "meridian-health": {
    tier: "enterprise",
    mca: 8,
    burst: { mca: 10, seconds: 5, cooldownSeconds: 10 },
    mcaUrgent: 3,
    mctc: 30,
    mctcBatch: 20,
  },
  "lakeside-clinics": { tier: "professional", mca: 4, burst: { mca: 4 }, mcaUrgent: 2, mctc: 20 },
  "cedar-practice": { tier: "free", mca: 3, burst: { mca: 3 }, mcaUrgent: 1, mctc: 10 },
  "eu-clinic": { tier: "professional", mca: 4, burst: { mca: 4 }, mcaUrgent: 2, mctc: 20, pools: ["eu-west-1"] },
};
const POOLS = { default: 3, "eu-west-1": 2 };

interface Acked {
  id: string;
  tenant: string;
}

/** Submits over HTTP to either api, retrying with the same idempotency keys until acknowledged (faults are expected). */
async function submit(t: Topology, key: string, items: Record<string, unknown>[], rnd: () => number): Promise<string[]> {
  const body = JSON.stringify({ workflows: items.map((x) => ({ ...x, idempotencyKey: randomBytes(9).toString("hex") })) });
  for (let attempt = 0; attempt < 240; attempt++) {
    const url = t.apiUrls[Math.floor(rnd() * t.apiUrls.length)]!;
    try {
      const r = await fetch(`${url}/v1/workflows/bulk`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(5_000),
      });
      const j = (await r.json()) as { accepted?: { id: string }[]; rejected?: unknown[] };
      if (r.status === 202 && j.accepted && !j.rejected?.length) return j.accepted.map((a) => a.id);
    } catch {
      /* the api or Redis is down: try again, maybe the other api */
    }
    await sleep(250);
  }
  throw new Error("could not submit for 60 s");
}

async function untilAnswers(url: string, timeoutMs: number): Promise<void> {
  for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(100)) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

function readLines(dir: string): RunLine[] {
  const out: RunLine[] = [];
  for (const f of readdirSync(dir))
    for (const l of readFileSync(join(dir, f), "utf8").split("\n")) {
      const [kind, id, tenant, cls, pool, pid, at, how] = l.split("|");
      if (kind === "start" || kind === "end")
        out.push({ kind, id: id!, tenant: tenant!, cls: cls as RunLine["cls"], pool: pool!, pid: Number(pid), at: Number(at), how });
    }
  return out;
}

async function quiesce(t: Topology, acked: Acked[], timeoutMs: number): Promise<Map<string, { state: string; code: string | null }>> {
  const cell = t.platform.keys.cell("default");
  const until = Date.now() + timeoutMs;
  for (;;) {
    const states = new Map<string, { state: string; code: string | null }>();
    try {
      const p = t.platform.redis.pipeline();
      for (const a of acked) p.hmget(cell.workflow(a.id), "state", "errorCode");
      const replies = (await p.exec()) ?? [];
      acked.forEach((a, i) => {
        const [state, code] = (replies[i]?.[1] ?? [null, null]) as [string | null, string | null];
        states.set(a.id, { state: state ?? "missing", code });
      });
      const open = [...states.values()].filter((s) => !["completed", "failed", "cancelled"].includes(s.state));
      if (!open.length || Date.now() > until) return states;
    } catch {
      if (Date.now() > until) throw new Error("Redis did not come back");
    }
    await sleep(500);
  }
}

/** Slot leases, pool use, running counts, permits and the queued counter: all zero (permits of killed holders lapse in 15 s). */
async function countersZero(t: Topology, timeoutMs: number): Promise<string[]> {
  const cell = t.platform.keys.cell("default");
  const until = Date.now() + timeoutMs;
  for (;;) {
    const left: string[] = [];
    if (await t.platform.redis.hlen(cell.slots)) left.push(`slots ${await t.platform.redis.hlen(cell.slots)}`);
    for (const pool of Object.keys(POOLS))
      for (const [k, v] of Object.entries(await t.platform.redis.hgetall(cell.poolUsed(pool))))
        if (Number(v) !== 0) left.push(`pool ${pool} used.${k}=${v}`);
    for (const tn of Object.keys(TENANTS)) {
      for (const [k, v] of Object.entries(await t.platform.redis.hgetall(cell.running(tn))))
        if (Number(v) !== 0) left.push(`${tn} running.${k}=${v}`);
      const held = await t.platform.redis.zcard(cell.gate(tn).held);
      if (held) left.push(`${tn} permits ${held}`);
    }
    const queued = Number((await t.platform.redis.get(cell.queued)) ?? 0);
    if (queued) left.push(`queued ${queued}`);
    if (!left.length || Date.now() > until) return left;
    await sleep(500);
  }
}

interface KindRow {
  injected: number;
  survived: number;
  lost: number;
  doubleRuns: number;
  overshoots: number;
}

const root = mkdtempSync(join(tmpdir(), "fl-drill-"));
const obsDir = join(root, "obs");
mkdirSync(obsDir);
const rnd = mulberry32(SEED);
const basePort = 20_000 + Math.floor(Math.random() * 20_000);
const config = loadConfig({
  ...process.env,
  PORT: String(basePort),
  FAIRLANE_PREFIX: "drill",
  FAIRLANE_REDIS_PORT: "0",
  FAIRLANE_DATA_DIR: root,
  FAIRLANE_ADMIN_TOKEN: randomBytes(18).toString("hex"),
  FAIRLANE_TENANTS_FILE: "src/tenancy/tenants.example.yaml",
});
const caps: Caps = {
  tenants: Object.fromEntries(Object.entries(TENANTS).map(([t, s]) => [t, { bc: s.burst?.mca ?? s.mca!, a: s.mcaUrgent! }])),
  pools: Object.fromEntries(
    Object.entries(POOLS).map(([p, n]) => [p, { slots: n * CONCURRENCY, maxC: poolShares(n * CONCURRENCY, DEFAULT_SHARES).maxC }]),
  ),
};
const rows = new Map<FaultKind, KindRow>(kinds.map((k) => [k, { injected: 0, survived: 0, lost: 0, doubleRuns: 0, overshoots: 0 }]));
const violations: string[] = [];
let reruns = 0;
/** How the runs that were followed by another run of the same workflow ended: why there were re-runs. */
const rerunCauses: Record<string, number> = {};
let resumeRunOns: number[] = [];
let total = 0;
const t0 = Date.now();
log(`seed ${SEED}, ${ITERATIONS} iteration(s), faults: ${kinds.join(", ")}; data in ${root}`);
const t = await startTopology(config, createLogger("drill", "fatal"), {
  dataDir: root,
  layout: { apiPort: basePort, execConcurrency: CONCURRENCY, execs: POOLS },
  env: {
    DRILL_OBS_DIR: obsDir,
    FAIRLANE_WORKFLOW_MODULES: "test/drill/drillWorkflow.ts",
    FAIRLANE_LOCK_MS: String(LOCK_MS),
    FAIRLANE_HEARTBEAT_TTL_MS: "2000",
    FAIRLANE_SHUTDOWN_GRACE_MS: "3000",
    FAIRLANE_HEALTH_INTERVAL_MS: "500",
    FAIRLANE_RECOVERY_STABLE_MS: "1500",
    LOG_LEVEL: "warn",
  },
  downstreamCapacity: 200,
});
try {
  for (const [tn, spec] of Object.entries(TENANTS)) await t.platform.registry.put(tn, spec);
  const keys = Object.fromEntries(
    await Promise.all(Object.keys(TENANTS).map(async (tn) => [tn, (await t.platform.apiKeys.create(tn)).key] as const)),
  );
  await t.supervisor.settled();
  // Every api listening before the load starts: 13 processes booting at once on 2 cores can take longer
  // than the load window's first faults, and a load that found no api would prove nothing.
  for (const url of t.apiUrls) await untilAnswers(`${url}/healthz`, 60_000);
  await sleep(3_000); // every role up, policies loaded
  for (let it = 0; it < ITERATIONS; it++) {
    // Each iteration takes the next kinds in turn (every kind gets its share), at random times in the load window.
    const perIteration = Math.max(1, Math.ceil(kinds.length / ITERATIONS) + (quick ? 1 : 2));
    const chosen = Array.from({ length: Math.min(perIteration, kinds.length) }, (_, k) => kinds[(it * perIteration + k) % kinds.length]!);
    const times = chosen.map(() => 1_000 + rnd() * (LOAD_MS - 6_000)).sort((a, b) => a - b);
    log(`iteration ${it + 1}: ${chosen.join(", ")}`);
    const acked: Acked[] = [];
    const start = Date.now();
    const producing = (async () => {
      for (let tick = 0; Date.now() - start < LOAD_MS; tick++) {
        const item = (cls: "A" | "B" | "C", durationMs: number) => ({
          type: "drill-agent",
          class: cls,
          payload: { steps: 1, fanout: 3, latencyMs: 40, submit: false, durationMs },
        });
        const batches: [string, Record<string, unknown>[]][] = [
          ["meridian-health", [item("C", 500 + rnd() * 1500), item("C", 500 + rnd() * 1500), ...(tick % 4 === 0 ? [item("A", 200)] : [])]],
          ["lakeside-clinics", [item(tick % 2 ? "A" : "B", 200 + rnd() * 400)]],
          ["cedar-practice", [item("B", 300 + rnd() * 600)]],
          ["eu-clinic", [item(tick % 3 ? "B" : "C", 300 + rnd() * 600)]],
        ];
        await Promise.all(
          batches.map(async ([tn, items]) => acked.push(...(await submit(t, keys[tn]!, items, rnd)).map((id) => ({ id, tenant: tn })))),
        );
        await sleep(Math.max(0, start + (tick + 1) * 250 - Date.now()));
      }
    })();
    const faults: FaultRecord[] = [];
    for (const [k, kind] of chosen.entries()) {
      await sleep(Math.max(0, start + times[k]! - Date.now()));
      faults.push(await inject(t, kind, rnd, { lockMs: LOCK_MS }));
      rows.get(kind)!.injected++;
    }
    await producing;
    await t.supervisor.settled();
    const states = await quiesce(t, acked, 180_000);
    const left = await countersZero(t, 30_000);
    const now = drillNow();
    const lines = readLines(obsDir);
    const mine = new Set(acked.map((a) => a.id));
    const runs = runsFrom(lines, faults).filter((r) => mine.has(r.id));
    const lost = acked.filter((a) => {
      const s = states.get(a.id)!;
      return !["completed", "cancelled"].includes(s.state) && !(s.state === "failed" && s.code);
    });
    const twice = overlaps(runs, faults, now);
    resumeRunOns = [...resumeRunOns, ...runOns(runs, faults)];
    const over = overshoots(runs, faults, caps, now);
    reruns += runs.length - new Set(runs.map((r) => r.id)).size;
    const lastOf = new Map<string, number>();
    for (const r of runs) lastOf.set(r.id, Math.max(lastOf.get(r.id) ?? 0, r.start));
    for (const r of runs) if (r.start < lastOf.get(r.id)!) rerunCauses[r.how] = (rerunCauses[r.how] ?? 0) + 1;
    total += acked.length;
    const bad = lost.length + twice.length + over.length + left.length;
    for (const kind of chosen) {
      const row = rows.get(kind)!;
      if (!bad) row.survived++;
      row.lost += lost.length;
      row.doubleRuns += twice.length;
      row.overshoots += over.length;
    }
    if (lost.length)
      violations.push(
        `iteration ${it + 1}: ${lost.length} not ended: ${lost
          .slice(0, 5)
          .map((a) => `${a.id}=${states.get(a.id)!.state}`)
          .join(", ")}`,
      );
    for (const o of twice) violations.push(`iteration ${it + 1}: ${o.id} ran twice at once for ${o.ms.toFixed(0)} ms`);
    for (const o of over) {
      const tenant = o.what.startsWith("tenant ") ? o.what.split(" ")[1] : undefined;
      const at = runs.filter((r) => r.start <= o.at && (r.end ?? now) >= o.at && (!tenant || r.tenant === tenant));
      const faultAt = faults.map((f) => `${f.kind}@${(f.at - o.at).toFixed(0)}ms`).join(" ");
      violations.push(
        `iteration ${it + 1}: ${o.what} reached ${o.seen} (cap ${o.limit}); running then: ${at.map((r) => `${r.id.slice(-6)}/${r.cls}/pid${r.pid}/${(r.start - o.at).toFixed(0)}..${((r.end ?? now) - o.at).toFixed(0)}ms/${r.how}`).join(" ")}; faults ${faultAt}`,
      );
    }
    if (left.length) violations.push(`iteration ${it + 1}: counters not zero: ${left.join(", ")}`);
    log(
      `iteration ${it + 1}: ${acked.length} acknowledged, ${[...states.values()].filter((s) => s.state === "completed").length} completed, ${bad ? "VIOLATIONS" : "ok"}`,
    );
  }
} finally {
  await t.stop();
  // Keep the evidence when something broke: the observer's files and every process's log.
  if (violations.length) log(`evidence kept in ${root}`);
  else rmSync(root, { recursive: true, force: true });
}

console.log(
  `\nFairlane fault drill, seed ${SEED}, ${ITERATIONS} iteration(s), ${total} workflows acknowledged, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);
console.log("| fault | injected | survived | lost | double runs | cap overshoots |\n|---|---:|---:|---:|---:|---:|");
for (const [k, r] of rows)
  if (r.injected) console.log(`| ${k} | ${r.injected} | ${r.survived} | ${r.lost} | ${r.doubleRuns} | ${r.overshoots} |`);
console.log(
  `re-runs (at-least-once): ${reruns}, after a run that ended ${
    Object.entries(rerunCauses)
      .map(([k, v]) => `${k} ×${v}`)
      .join(", ") || "—"
  }; runs that went on after SIGCONT before stopping: ${resumeRunOns.length} (at most ${Math.max(0, ...resumeRunOns).toFixed(0)} ms, bound ${RESUME_GRACE_MS} ms)`,
);
for (const v of violations) console.log(`VIOLATION ${v}`);
if (args.json)
  console.log(
    JSON.stringify({
      seed: SEED,
      iterations: ITERATIONS,
      workflows: total,
      faults: Object.fromEntries(rows),
      reruns,
      rerunCauses,
      resumeRunOnMaxMs: Math.max(0, ...resumeRunOns),
      violations,
    }),
  );
process.exit(violations.length ? 1 : 0);
