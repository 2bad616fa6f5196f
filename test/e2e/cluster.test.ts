import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../src/lib/config.ts";
import { hashSlot } from "../../src/lib/hashSlot.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { UsageReader } from "../../src/usage/usageSnapshot.ts";
import { DEFAULT_SHARES, poolShares } from "../../src/dispatch/policy/shares.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { readWorkflow } from "../../src/workflows/record.ts";
import { startCluster, type LocalCluster } from "../helpers/cluster.ts";
import { readObservation } from "../helpers/observer.ts";
import { spawnRole, type RoleProcess } from "../helpers/roles.ts";
import { jain } from "../helpers/simulate.ts";
import { BUCKET_MS, bucketStart } from "../../queues/usageEvents.ts";

/**
 * Fairlane on a real 3-master Redis Cluster (DESIGN invariant 5): two cells on
 * two different masters (the registry on the third), tenants assigned to cells
 * by their policy's `cell`, two dispatchers and two exec processes serving both
 * cells, admission in this process. An independent observer (the `observed`
 * workflow's own keys) checks caps, capacity, double runs and fairness across
 * both cells; per-master key and command counts show where the load went.
 *
 * Placement with the root prefix `fl`: CLUSTER KEYSLOT of the tags is
 * {fl.reg} 3052, {fl.north} 7610, {fl.south} 15626; `redis-cli --cluster create`
 * gives 3 masters 0-5460, 5461-10922, 10923-16383, so each lands on its own
 * master (checked below against the live CLUSTER SLOTS, not assumed).
 */
const PREFIX = "fl";
const CELLS = ["north", "south"] as const;
const EXEC = 2;
const CONCURRENCY = 8; // per exec process, split 4 + 4 over the two cells
const JOB_MS = 200;
const BIG_JOBS = 80;

const big = (cell: string): PolicySpec => ({ tier: "professional", weight: 1, mca: 50, burst: { mca: 50 }, cell });
const TENANTS: Record<string, PolicySpec> = {
  "n-hospital": big("north"),
  "n-clinic": big("north"),
  "n-lab": big("north"),
  "n-practice": { tier: "free", mca: 1, burst: { mca: 1 }, mcaUrgent: 1, cell: "north" },
  "s-payer": big("south"),
  "s-pharmacy": big("south"),
  "s-insurer": big("south"),
  "s-rural": { tier: "free", mca: 2, burst: { mca: 2 }, mcaUrgent: 1, cell: "south" },
};
const BIG = Object.keys(TENANTS).filter((t) => TENANTS[t]!.mca === 50);
const cellOf = (t: string) => TENANTS[t]!.cell!;

describe("Fairlane on a 3-master Redis Cluster, two cells on different masters", () => {
  let cluster: LocalCluster;
  let p: Platform;
  const roles: RoleProcess[] = [];
  let obs = "";

  before(async () => {
    cluster = await startCluster(3);
    const config = loadConfig({
      ...process.env,
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      FAIRLANE_PREFIX: PREFIX,
      FAIRLANE_MAX_QUEUED_TOTAL: "1000000",
      PORT: "0",
    });
    p = await openPlatform(config, { kind: "cluster", nodes: cluster.nodes }, createLogger("test", "silent"));
    await p.registry.seed(new Map(Object.entries(TENANTS)), true);
    // The observer's keys go on the registry's master, so the cell masters' counts are the cells' own.
    const registryMaster = await cluster.ownerOfSlot(hashSlot(`{${PREFIX}.reg}`));
    do obs = `obs:{${randomBytes(4).toString("hex")}}`;
    while ((await cluster.ownerOfSlot(hashSlot(obs))) !== registryMaster);
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      FAIRLANE_PREFIX: PREFIX,
      FAIRLANE_CELLS: CELLS.join(","),
      FAIRLANE_LOCK_MS: "2000",
      FAIRLANE_HEARTBEAT_TTL_MS: "2000",
      FAIRLANE_SHUTDOWN_GRACE_MS: "3000",
    };
    for (let i = 0; i < EXEC; i++) roles.push(spawnRole("exec", { ...env, FAIRLANE_CONCURRENCY: String(CONCURRENCY) }));
    for (let i = 0; i < 2; i++) roles.push(spawnRole("dispatcher", env));
    for (const c of CELLS) await waitCapacity(p, c, (EXEC * CONCURRENCY) / CELLS.length, roles);
  });

  after(async () => {
    await Promise.all(roles.map((r) => r.stop()));
    await p?.close();
    cluster?.stop();
  });

  it("places each cell on its own master, keeps every cap and shares slot-time fairly across both cells", {
    timeout: 120_000,
  }, async () => {
    // Placement, from the live cluster.
    const owner: Record<string, number> = {};
    for (const [name, tag] of [["registry", `{${PREFIX}.reg}`], ...CELLS.map((c) => [c, `{${PREFIX}.${c}}`]), ["observer", obs]] as [
      string,
      string,
    ][]) {
      const slot = Number(await p.redis.cluster("KEYSLOT", tag));
      assert.equal(slot, hashSlot(tag), `our hash-slot function agrees with Redis for ${tag}`);
      owner[name] = await cluster.ownerOfSlot(slot);
    }
    assert.notEqual(owner.north, owner.south, "the two cells live on different masters");
    for (const n of cluster.nodes) await cluster.node(n.port).config("RESETSTAT");

    // The storm: every big tenant backlogged with BIG_JOBS Class B; the small-cap tenants
    // with Class A, B and C on top, in two waves.
    const ids = new Map<string, string>();
    const admit = async (tenant: string, items: Record<string, unknown>[]) => {
      const r = await p.admission.admitBulk(tenant, items, "0".repeat(32));
      assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected.slice(0, 2)));
      for (const a of r.accepted) ids.set(a.id, tenant);
    };
    const item = (cls: string, ms = JOB_MS) => ({ type: "observed", class: cls, payload: { obs, durationMs: ms } });
    const began = Date.now();
    await Promise.all(
      BIG.map((t) =>
        admit(
          t,
          Array.from({ length: BIG_JOBS }, () => item("B")),
        ),
      ),
    );
    for (const t of ["n-practice", "s-rural"])
      await admit(t, [...Array.from({ length: 8 }, () => item("B", 150)), ...Array.from({ length: 4 }, () => item("C", 100))]);
    const admittedAt = Date.now();
    await sleep(1_000);
    for (const t of ["n-practice", "s-rural"])
      await admit(t, [...Array.from({ length: 3 }, () => item("A", 100)), ...Array.from({ length: 4 }, () => item("B", 100))]);

    // The dashboard's reader spans both cells (one pipeline per cell: a cluster refuses a mixed one).
    const usage = await new UsageReader(p.redis, p.keys, { reserveFraction: 0.1, batchMaxShare: 0.5, batchMinShare: 0.05 }).read(
      p.registry.list(),
      Date.now(),
      [...CELLS],
    );
    assert.deepEqual([...new Set(usage.pools.map((x) => x.cell))].sort(), [...CELLS].sort());
    assert.ok(usage.tenants.reduce((s, t) => s + t.running.total + t.queued.total, 0) > 0, "the reader sees the storm");

    const states = await waitEnded(p, ids, 80_000, roles);
    const stormMs = Date.now() - began;
    assert.deepEqual([...new Set(states)], ["completed"], "every workflow completed");

    // Each first start's enqueue->start latency reached its cell's usage-event buckets, from exec processes
    // serving both cells (their tallies flush once a heartbeat, one pipeline per cell).
    const latencySamples = async () => {
      let n = 0;
      for (const c of CELLS)
        for (let b = bucketStart(began); b <= bucketStart(Date.now()); b += BUCKET_MS)
          for (const [f, v] of Object.entries(await p.redis.hgetall(p.keys.cell(c).usageEvents(b)))) if (/\|l\d+$/.test(f)) n += Number(v);
      return n;
    };
    for (const until = Date.now() + 10_000; Date.now() < until && (await latencySamples()) < ids.size; ) await sleep(250);
    assert.equal(await latencySamples(), ids.size, "one latency sample per first start, in both cells");

    // The observer's view.
    const o = await readObservation(p.redis, obs);
    const cellPeak: Record<string, number> = {};
    const live: Record<string, number> = {};
    const open = new Set<string>();
    for (const e of o.events) {
      const c = cellOf(e.tenant);
      if (e.kind === "start") open.add(e.id), (live[c] = (live[c] ?? 0) + 1);
      else if (e.kind === "end" && open.delete(e.id)) live[c]!--;
      cellPeak[c] = Math.max(cellPeak[c] ?? 0, live[c] ?? 0);
    }
    const poolCapacity = EXEC * CONCURRENCY;
    const cellCapacity = poolCapacity / CELLS.length;
    assert.equal(o.doubleRuns.length, 0, `ran twice at once: ${o.doubleRuns.join()}`);
    assert.equal(
      Object.values(o.starts).reduce((a, b) => a + b, 0),
      ids.size,
      "each workflow started exactly once",
    );
    assert.ok(o.maxTotal <= poolCapacity, `pool total ${o.maxTotal} > ${poolCapacity}`);
    for (const c of CELLS) assert.ok((cellPeak[c] ?? 0) <= cellCapacity, `cell ${c} ran ${cellPeak[c]} > its ${cellCapacity} slots`);
    assert.ok(o.maxC <= 2 * poolShares(cellCapacity, DEFAULT_SHARES).maxC, `Class C ${o.maxC}`);
    for (const [t, spec] of Object.entries(TENANTS)) {
      assert.ok((o.maxBC[t] ?? 0) <= (spec.burst?.mca ?? spec.mca!), `${t} B/C ${o.maxBC[t]} over its cap`);
      assert.ok((o.maxA[t] ?? 0) <= (spec.mcaUrgent ?? 10), `${t} A ${o.maxA[t]} over mcaUrgent`);
    }
    assert.ok(o.maxTotal >= poolCapacity - 4, `the observer saw the pool busy (peak ${o.maxTotal})`);
    for (const c of CELLS) assert.ok((cellPeak[c] ?? 0) >= cellCapacity - 2, `the exec pool served cell ${c} (peak ${cellPeak[c]})`);

    // Fairness: busy slot-time of the equal-weight big tenants while all of them had backlog
    // (from the first job's end to the first start of any big tenant's last workflow).
    const from = admittedAt + JOB_MS;
    const lastStart = new Map<string, number>();
    for (const e of o.events) if (e.kind === "start" && BIG.includes(e.tenant)) lastStart.set(e.tenant, e.at);
    const to = Math.min(...lastStart.values());
    const busy = o.busyMs(from, to);
    const shares = BIG.map((t) => busy[t] ?? 0);
    const fairAll = jain(shares);
    const fairCell = Object.fromEntries(CELLS.map((c) => [c, jain(BIG.filter((t) => cellOf(t) === c).map((t) => busy[t] ?? 0))]));
    assert.ok(to - from >= 2_000, `backlogged window ${to - from} ms`);
    assert.ok(fairAll >= 0.9, `Jain over both cells ${fairAll}`);
    for (const c of CELLS) assert.ok(fairCell[c]! >= 0.95, `Jain in ${c} ${fairCell[c]}`);

    // Quiescence: every slot, counter and queue of both cells back to zero.
    await sleep(300);
    const counters: Record<string, unknown> = {};
    for (const c of CELLS) {
      const ck = p.keys.cell(c);
      const running = await Promise.all(
        Object.keys(TENANTS)
          .filter((t) => cellOf(t) === c)
          .map((t) => p.redis.hgetall(ck.running(t))),
      );
      const used = await p.redis.hgetall(ck.poolUsed("default"));
      const slots = await p.redis.hlen(ck.slots);
      const queued = Number((await p.redis.get(ck.queued)) ?? 0);
      counters[c] = { slots, queued, used, running };
      const zero = (h: Record<string, string>) => Object.values(h).every((v) => Number(v) === 0);
      assert.ok(slots === 0 && queued === 0 && zero(used) && running.every(zero), `${c} counters: ${JSON.stringify(counters[c])}`);
    }

    // Where the keys and the work went, per master.
    const rows = [];
    for (const n of cluster.nodes) {
      const node = cluster.node(n.port);
      const holds = Object.entries(owner)
        .filter(([, port]) => port === n.port)
        .map(([k]) => k);
      const stats = await node.info("commandstats");
      const calls = (name?: string) =>
        [...stats.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)]
          .filter(([, c]) => !name || c === name)
          .reduce((s, [, , v]) => s + Number(v), 0);
      const cellKeys: Record<string, number> = {};
      for (const c of [...CELLS, "registry"]) {
        const tag = c === "registry" ? `{${PREFIX}.reg}` : `{${PREFIX}.${c}}`;
        cellKeys[c] = Number(await node.cluster("COUNTKEYSINSLOT", hashSlot(tag)).catch(() => 0));
      }
      rows.push({
        master: `127.0.0.1:${n.port}`,
        holds: holds.join("+"),
        dbsize: await node.dbsize(),
        keysNorth: cellKeys.north ?? 0,
        keysSouth: cellKeys.south ?? 0,
        keysRegistry: cellKeys.registry,
        commands: calls(),
        evalsha: calls("evalsha") + calls("eval"),
        bzpopmin: calls("bzpopmin"),
      });
    }
    console.table(rows);
    // No key anywhere outside the known hash tags: nothing Fairlane (or BullMQ) writes escapes a cell or the registry.
    const stray: string[] = [];
    for (const n of cluster.nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await cluster.node(n.port).scan(cursor, "COUNT", 1000);
        cursor = next;
        stray.push(
          ...keys.filter((k) => !k.includes(`{${PREFIX}.reg}`) && !CELLS.some((c) => k.includes(`{${PREFIX}.${c}}`)) && !k.startsWith(obs)),
        );
      } while (cursor !== "0");
    }
    assert.deepEqual(stray, [], "every key carries a cell's, the registry's or the observer's hash tag");
    const northRow = rows.find((r) => r.master.endsWith(`:${owner.north}`))!;
    const southRow = rows.find((r) => r.master.endsWith(`:${owner.south}`))!;
    assert.ok(northRow.keysNorth > 0 && northRow.keysSouth === 0, "north's keys are on north's master only");
    assert.ok(southRow.keysSouth > 0 && southRow.keysNorth === 0, "south's keys are on south's master only");
    for (const r of [northRow, southRow]) assert.ok(r.evalsha > 500, `${r.master} ran the cell's scripts (${r.evalsha})`);
    console.log(
      JSON.stringify({
        workflows: ids.size,
        stormMs,
        placement: owner,
        maxTotal: o.maxTotal,
        cellPeak,
        maxBC: o.maxBC,
        maxA: o.maxA,
        maxC: o.maxC,
        windowMs: to - from,
        busyMs: Object.fromEntries(BIG.map((t) => [t, busy[t] ?? 0])),
        jainBothCells: Number(fairAll.toFixed(4)),
        jainPerCell: fairCell,
      }),
    );
  });
});

async function waitCapacity(p: Platform, cellName: string, slots: number, roles: RoleProcess[]): Promise<void> {
  const cell = p.keys.cell(cellName);
  for (let i = 0; i < 600; i++) {
    const live = await p.redis.zrangebyscore(cell.poolWorkers("default"), `(${Date.now()}`, "+inf");
    const conc = live.length ? await p.redis.hmget(cell.poolConcurrency("default"), ...live) : [];
    if (conc.reduce((s, c) => s + Number(c ?? 0), 0) >= slots) return;
    await sleep(50);
  }
  throw new Error(`cell ${cellName} never reached ${slots} slots\n${roles.map((r) => r.output().slice(-2000)).join("\n")}`);
}

async function waitEnded(p: Platform, ids: Map<string, string>, timeoutMs: number, roles: RoleProcess[]): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all([...ids].map(([id, t]) => readWorkflow(p.redis, p.keys.cell(cellOf(t)), id, t)));
    const states = views.map((v) => v?.state ?? "missing");
    if (states.every((s) => ["completed", "failed", "cancelled"].includes(s))) return states;
    if (Date.now() > until)
      throw new Error(
        `not ended after ${timeoutMs} ms: ${[...new Set(states)].join(",")}\n${roles.map((r) => r.output().slice(-2000)).join("\n")}`,
      );
    await sleep(200);
  }
}
