import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import type { RoleProcess } from "../../helpers/roles.ts";
import { awaitDrain } from "./drainClock.ts";
import { admitAll, bulks, closePlain, fairIdle, openFair, PAYLOAD, pool, startDispatcher, startExec, type Ctx } from "./drain.ts";
import { Meter, type PhaseCost } from "./meter.ts";
import { spawnBenchRole, spawnScript } from "./spawn.ts";
import type { Workers } from "./systems.ts";

/**
 * End to end, the throughput figure the benchmark reported before it measured
 * drains: the consumers already running, the clock runs from the first
 * enqueue to the last handler call (lib/drainClock.ts), so admission and
 * draining overlap and share the CPU. Producers are alike: 100 per bulk call,
 * 16 calls in flight (plain: Queue.addBulk; Fairlane: the platform's
 * admission in this process, or POST /v1/workflows/bulk to a real api
 * process). CPU and Redis costs cover every process, the producer included.
 */
export interface EndToEnd {
  name: string;
  via: "in-process" | "http";
  jobs: number;
  cost: PhaseCost;
}

export async function plainEndToEnd(c: Ctx, o: { tag: string; jobs: number; layout: Workers }): Promise<EndToEnd> {
  const prefix = `bpe-${o.tag}`;
  const clock = `clock:${prefix}`;
  const producer = new Redis(c.url, { maxRetriesPerRequest: null });
  const queue = new Queue("plain", { connection: producer, prefix });
  const env = {
    REDIS_URL: c.url,
    BENCH_QUEUE: "plain",
    BENCH_PREFIX: prefix,
    BENCH_CONCURRENCY: String(o.layout.concurrency),
    BENCH_DRAIN_KEY: clock,
    BENCH_HOLD: "0",
  };
  const children: ChildProcess[] = Array.from({ length: o.layout.processes }, () => spawnScript("test/bench/plainWorker.ts", env));
  try {
    for (let i = 0; (await c.admin.scard(`${clock}:ready`)) < o.layout.processes; i++) {
      if (i > 6000) throw new Error("plain workers did not start");
      await sleep(20);
    }
    const meter = new Meter(c.admin, c.redisPid);
    await meter.begin([{ role: "producer", pid: process.pid }, ...children.map((ch) => ({ role: "worker", pid: ch.pid! }))]);
    const t0 = Date.now();
    await pool(
      bulks(["plain"], o.jobs).map(
        ([, k]) =>
          () =>
            queue.addBulk(Array.from({ length: k }, () => ({ name: "bench-noop", data: PAYLOAD, opts: { removeOnComplete: true } }))),
      ),
      16,
    );
    const r = await awaitDrain(c.admin, clock, o.jobs, 600_000, "plain end to end");
    return {
      name: `plain BullMQ ${o.layout.processes}×${o.layout.concurrency}`,
      via: "in-process",
      jobs: o.jobs,
      cost: await meter.end(o.jobs, (r.last - t0) / 1000),
    };
  } finally {
    await closePlain(c, { children, queue, producer, prefix, clock });
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** POSTs each tenant's bulks to a real api process, with a key per tenant. */
async function viaHttp(base: string, keys: Map<string, string>, jobs: number, names: string[]): Promise<void> {
  await pool(
    bulks(names, jobs).map(([t, k]) => async () => {
      const res = await fetch(`${base}/v1/workflows/bulk`, {
        method: "POST",
        headers: { authorization: `Bearer ${keys.get(t)}`, "content-type": "application/json" },
        body: JSON.stringify({ workflows: Array.from({ length: k }, () => ({ type: "bench-noop", class: "B", payload: PAYLOAD })) }),
      });
      const body = (await res.json()) as { rejected?: unknown[] };
      if (res.status !== 202 || body.rejected?.length)
        throw new Error(`POST /v1/workflows/bulk: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    }),
    16,
  );
}

export async function fairEndToEnd(
  c: Ctx,
  o: { tag: string; jobs: number; tenants: number; layout: Workers; via: EndToEnd["via"] },
): Promise<EndToEnd> {
  const d = await openFair(c, `bfe-${o.tag}`, o.tenants, o.jobs);
  const roles: RoleProcess[] = [];
  try {
    await startExec(c, d, o.layout, roles);
    await startDispatcher(d, roles);
    let produce = () => admitAll(d, o.jobs);
    if (o.via === "http") {
      const port = await freePort();
      const api = spawnBenchRole("api", { ...d.env, PORT: String(port), FAIRLANE_ADMIN_TOKEN: "bench-admin-token-0123456789" });
      roles.push(api);
      const keys = new Map<string, string>();
      for (const t of d.names) keys.set(t, (await d.platform.apiKeys.create(t)).key);
      const base = `http://127.0.0.1:${port}`;
      for (
        let i = 0;
        (await fetch(`${base}/healthz`)
          .then((r) => r.status)
          .catch(() => 0)) !== 200;
        i++
      ) {
        if (i > 6000 || api.child.exitCode !== null) throw new Error(`api did not start:\n${api.output().slice(-1500)}`);
        await sleep(20);
      }
      produce = () => viaHttp(base, keys, o.jobs, d.names);
    }
    await sleep(500); // the dispatcher's first passes over an empty cell
    const meter = new Meter(c.admin, c.redisPid);
    await meter.begin([
      { role: "producer", pid: process.pid },
      ...roles.map((r, i) => ({
        role: i < o.layout.processes ? "exec" : i === o.layout.processes ? "dispatcher" : "api",
        pid: r.child.pid!,
      })),
    ]);
    const t0 = Date.now();
    await produce();
    const r = await awaitDrain(c.admin, d.env.BENCH_DRAIN_KEY!, o.jobs, 600_000, `Fairlane end to end (${o.via})`);
    for (let i = 0; !(await fairIdle(c, d)) && i < 1500; i++) await sleep(20);
    const name = `Fairlane, ${o.tenants.toLocaleString("en")} tenants, ${o.via === "http" ? "HTTP bulk" : "admission in process"}`;
    return { name, via: o.via, jobs: o.jobs, cost: await meter.end(o.jobs, (r.last - t0) / 1000) };
  } finally {
    await Promise.all(roles.map((r) => r.stop()));
    await d.close();
  }
}
