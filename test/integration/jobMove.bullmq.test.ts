import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import { Queue, Worker, type ConnectionOptions, type Job } from "bullmq";
import express from "express";
import type { Redis } from "ioredis";
import { BULL_KEY_PATTERNS, CELL_KEY_PATTERNS, type CellKeys, type WorkflowClass } from "../../queues/keys.ts";
import { dispatch } from "../../queues/lua/dispatch.ts";
import { generateKeysLua } from "../../queues/lua/generateKeys.ts";
import { heartbeat } from "../../queues/lua/heartbeat.ts";
import { parkRun, recoverParked, resolveParked } from "../../queues/lua/parking.ts";
import { requeueRun } from "../../queues/lua/runLifecycle.ts";
import { execQueue, ingressQueue, PARKED_QUEUE, QUEUE_NAME_PATTERNS, REVIEW_QUEUE } from "../../queues/names.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import { TenantSync } from "../../src/dispatch/tenantSync.ts";
import { TEST_DISPATCH_OPTS } from "../helpers/dispatchOpts.ts";
import { deadlineListings } from "../helpers/deadlineIndex.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * Fairlane moves BullMQ jobs between queues by script (queues/lua/includes/moveJob.lua), writing
 * BullMQ 6.7's internal layout itself. This proves each move against BullMQ and Bull Board as
 * they are, with no Fairlane code on the reading side: after every kind of move, Bull Board's HTTP
 * API lists the job in its new queue with its data, BullMQ's Queue reads it as waiting, and a
 * stock BullMQ Worker runs it with its data intact. A BullMQ upgrade that changes the layout (the
 * job hash, the wait list's taking end, the marker) fails here, not in production.
 */
const EXEC = execQueue("default");
const LAYOUT_HINT = "has BullMQ's job layout changed? (queues/lua/includes/moveJob.lua writes it by hand)";

interface Moved {
  id: string;
  name: string;
  data: unknown;
}

describe("BullMQ job moves (includes/moveJob.lua) as stock BullMQ and Bull Board see them", () => {
  let p: Platform;
  let cell: CellKeys;
  let connection: ConnectionOptions;
  let server: Server;
  let base: string;
  const clock = new FakeClock(Date.now());
  const queues = new Map<string, Queue>();
  const workers: Worker[] = [];
  const run = () => dispatch(p.redis, cell, "default", clock.now(), TEST_DISPATCH_OPTS);
  const recordDeadline = async (id: string) => {
    const at = await p.redis.hget(cell.workflow(id), "deadlineAt");
    return at === null ? null : Number(at);
  };
  /** How many times the deadline sweep's index lists the workflow under its deadline's second. */
  const listings = async (id: string) => deadlineListings(p.redis, cell, id, (await recordDeadline(id))!);

  before(async () => {
    const url = await testRedisUrl();
    const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
    p = await openPlatform(config, url, createLogger("test", "silent"), clock);
    cell = p.keys.cell("default");
    await p.registry.seed(
      new Map([
        ["acme", { tier: "professional" as const, mca: 20 }],
        ["solo", { tier: "professional" as const, mca: 1, burst: { mca: 1 } }],
      ]),
      true,
    );
    await new TenantSync(p.redis, p.keys).sync("default", p.registry.list());
    await heartbeat(p.redis, cell, "default", "fake", 20, clock.now(), clock.now() + 3_600_000);
    await p.redis.hset(cell.workflowDeps, "needs-fhir", "fhir-gateway");

    const u = new URL(url);
    connection = {
      host: u.hostname,
      port: Number(u.port),
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      maxRetriesPerRequest: null,
    };
    const names = [EXEC, PARKED_QUEUE, ...["acme", "solo"].flatMap((t) => (["A", "B", "C"] as const).map((c) => ingressQueue(t, c)))];
    for (const name of names) queues.set(name, new Queue(name, { connection, prefix: cell.bullPrefix }));
    const serverAdapter = new ExpressAdapter();
    serverAdapter.setBasePath("/board");
    createBullBoard({ queues: [...queues.values()].map((q) => new BullMQAdapter(q)), serverAdapter });
    const app = express();
    app.use("/board", serverAdapter.getRouter());
    server = app.listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => server.once("listening", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/board`;
  });

  after(async () => {
    for (const w of workers) await w.close();
    for (const q of queues.values()) await q.close();
    await new Promise((resolve) => server.close(resolve));
    await p.close();
  });

  /** Admits workflows and returns each with its job as admission wrote it (the reference for "intact"). */
  async function admit(tenant: string, items: Record<string, unknown>[]): Promise<Moved[]> {
    const r = await p.admission.admitBulk(tenant, items);
    assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected));
    return Promise.all(
      r.accepted.map(async (a, i) => {
        const cls = ((items[i]!.class as WorkflowClass | undefined) ?? "B") as WorkflowClass;
        const job = await p.redis.hgetall(cell.jobKey(ingressQueue(tenant, cls), a.id));
        assert.ok(job.name && job.data, `admission wrote the ingress job ${a.id}`);
        return { id: a.id, name: job.name, data: JSON.parse(job.data) as unknown };
      }),
    );
  }

  const payload = (tag: string) => ({ tag, nested: { list: [1, "two", { three: 3 }], unicode: "żółw ✓" } });

  async function boardJobs(queue: string, status: string): Promise<{ id: string; name: string; data: unknown; opts: unknown }[]> {
    const res = await fetch(`${base}/api/queues?activeQueue=${encodeURIComponent(queue)}&status=${status}&page=1&jobsPerPage=50`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { queues: { name: string; jobs: { id: string; name: string; data: unknown; opts: unknown }[] }[] };
    const q = body.queues.find((x) => x.name === queue);
    assert.ok(q, `Bull Board lists queue ${queue}`);
    return q.jobs;
  }

  /** Bull Board lists the job in `queue`'s waiting jobs, and shows it (its job page's API) with its data. */
  async function assertOnBoard(queue: string, job: Moved): Promise<void> {
    const listed = (await boardJobs(queue, "waiting")).find((j) => j.id === job.id);
    assert.ok(listed, `Bull Board lists ${job.id} among ${queue}'s waiting jobs: ${LAYOUT_HINT}`);
    assert.equal(listed.name, job.name);
    assert.deepEqual(listed.data, job.data, "Bull Board shows the job's data as admitted");
    const res = await fetch(`${base}/api/queues/${encodeURIComponent(queue)}/${encodeURIComponent(job.id)}`);
    assert.equal(res.status, 200, `Bull Board shows job ${job.id} in ${queue}`);
    const shown = (await res.json()) as { job: { id: string; data: unknown }; status: string };
    assert.equal(shown.status, "waiting");
    assert.deepEqual(shown.job.data, job.data);
  }

  /** The job hash in `queue` holds exactly the fields addStandardJob writes for a job with no delay or priority. */
  async function assertJobHash(queue: string, id: string, opts: unknown): Promise<void> {
    const h = await p.redis.hgetall(cell.jobKey(queue, id));
    assert.deepEqual(Object.keys(h).sort(), ["data", "delay", "name", "opts", "priority", "timestamp"]);
    assert.deepEqual([h.delay, h.priority, JSON.parse(h.opts!)], ["0", "0", opts]);
    const state = await queues.get(queue)!.getJobState(id);
    assert.equal(state, "waiting", `BullMQ's Queue reads ${id} in ${queue} as waiting: ${LAYOUT_HINT}`);
  }

  /** A stock BullMQ Worker on `queue`; resolves with the jobs it ran, in order, once it has run `n`. */
  function consume(queue: string, n: number, opts: { drainDelay?: number } = {}) {
    const ran: Job[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const worker = new Worker(
      queue,
      async (job) => {
        ran.push(job);
        if (ran.length === n) done();
        return "ok";
      },
      { connection, prefix: cell.bullPrefix, concurrency: 1, ...opts },
    );
    workers.push(worker);
    return { worker, ran, all };
  }

  async function within<T>(ms: number, what: Promise<T>, message: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
    try {
      return await Promise.race([what, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  function assertRan(job: Job, moved: Moved): void {
    assert.equal(job.id, moved.id);
    assert.equal(job.name, moved.name);
    assert.deepEqual(job.data, moved.data, "the stock Worker gets the job's data as admitted");
  }

  /** Takes the job at the head of the exec queue as a BullMQ worker does (lock, active), as a run would hold it. */
  async function takeExecJob(id: string, token: string): Promise<void> {
    const manual = new Worker(EXEC, null, { connection, prefix: cell.bullPrefix });
    workers.push(manual);
    const job = await manual.getNextJob(token, { block: false });
    assert.equal(job?.id, id, "BullMQ takes the dispatched job");
    assert.equal(await p.redis.get(`${cell.jobKey(EXEC, id)}:lock`), token, "held under the token, as a run holds it");
    await manual.close();
  }

  it("the generated Lua key functions build exactly the keys queues/keys.ts and queues/names.ts build", async () => {
    const sample: Record<string, string | number> = {
      id: "wf_1",
      tenant: "acme",
      keyHash: "ab12",
      pool: "eu-1",
      cls: "C",
      dep: "fhir",
      org: "holding",
      bucketStart: 1_750_000_000_000,
      member: 1_750_000_001_000,
      periodStart: 1_750_000_200_000,
      queue: "ingress.acme.C",
      kind: "wait",
    };
    const placeholders = (pattern: string) => [...pattern.matchAll(/<([A-Za-z0-9]+)>/g)].map((m) => sample[m[1]!]!);
    const calls: { lua: string; expected: string }[] = [];
    const lit = (x: string | number) => (typeof x === "number" ? String(x) : JSON.stringify(x));
    const gate = cell.gate("acme");
    const gateKeys: Record<string, string> = {
      gateHeld: gate.held,
      gateHeldC: gate.heldC,
      gateWait: gate.wait,
      gateWaitC: gate.waitC,
      gateWaitExp: gate.waitExp,
      gateSeq: gate.seq,
    };
    for (const [name, pattern] of Object.entries(CELL_KEY_PATTERNS)) {
      const args = placeholders(pattern);
      const ts = (cell as unknown as Record<string, unknown>)[name];
      const expected = gateKeys[name] ?? (typeof ts === "function" ? (ts as (...a: unknown[]) => string)(...args) : (ts as string));
      calls.push({ lua: `cellKey_${name}(ARGV[1]${args.map((a) => `, ${lit(a)}`).join("")})`, expected });
    }
    for (const [name, pattern] of Object.entries(BULL_KEY_PATTERNS)) {
      const args = placeholders(pattern);
      const ts = (cell as unknown as Record<string, (...a: unknown[]) => string>)[name]!;
      calls.push({
        lua: `bull${name[0]!.toUpperCase()}${name.slice(1)}(ARGV[2]${args.map((a) => `, ${lit(a)}`).join("")})`,
        expected: ts(...args),
      });
    }
    calls.push(
      { lua: `ingressQueue("acme", "C")`, expected: ingressQueue("acme", "C") },
      { lua: `execQueue("eu-1")`, expected: execQueue("eu-1") },
      { lua: "PARKED_QUEUE", expected: PARKED_QUEUE },
      { lua: "REVIEW_QUEUE", expected: REVIEW_QUEUE },
    );
    assert.equal(
      calls.length,
      Object.keys(CELL_KEY_PATTERNS).length + Object.keys(BULL_KEY_PATTERNS).length + Object.keys(QUEUE_NAME_PATTERNS).length + 2,
    );
    const lua = `${generateKeysLua()}\nreturn { ${calls.map((c) => c.lua).join(",\n ")} }`;
    const got = (await (p.redis as Redis).eval(lua, 0, cell.own, cell.bullPrefix)) as string[];
    assert.deepEqual(
      got,
      calls.map((c) => c.expected),
    );
  });

  it("a dispatched job (ingress -> exec) is on Bull Board and a stock Worker runs it, Class A first, woken by the marker", async () => {
    const [c] = await admit("acme", [{ type: "noop", class: "C", payload: payload("c") }]);
    assert.equal((await run()).moved, 1);
    const [a] = await admit("acme", [{ type: "noop", class: "A", payload: payload("a") }]);
    assert.equal((await run()).moved, 1);
    // Renamed, not rewritten: its opts stay "{}" (what BullMQ keeps of a finished exec job is the exec Worker's option).
    for (const job of [c!, a!]) {
      await assertJobHash(EXEC, job.id, {});
      await assertOnBoard(EXEC, job);
    }

    // drainDelay 60 s: once idle, only the marker wakes this worker before a minute is up.
    const w = consume(EXEC, 3, { drainDelay: 60 });
    const drained = new Promise<void>((resolve) => w.worker.once("drained", () => resolve()));
    await within(20_000, drained, `the stock Worker did not run the two dispatched jobs: ${LAYOUT_HINT}`);
    assert.deepEqual(
      w.ran.map((j) => j.id),
      [a!.id, c!.id],
      "Class A went to the head of the wait list (the end BullMQ takes), though dispatched after Class C",
    );
    assertRan(w.ran[0]!, a!);
    assertRan(w.ran[1]!, c!);

    const [b] = await admit("acme", [{ type: "noop", class: "B", payload: payload("b") }]);
    assert.equal((await run()).moved, 1);
    await within(15_000, w.all, `the idle stock Worker was not woken for a job dispatched while it waited: the marker, ${LAYOUT_HINT}`);
    assertRan(w.ran[2]!, b!);
    await w.worker.close();
  });

  it("a requeued job (exec -> the head of its ingress queue) is on Bull Board and a stock Worker runs it before older work", async () => {
    const [first, second] = await admit("solo", [
      { type: "noop", payload: payload("first") },
      { type: "noop", payload: payload("second") },
    ]);
    assert.equal((await run()).moved, 1, "solo's mca of 1 leaves its second workflow in ingress");
    assert.equal(await listings(first!.id), 1, "dispatched: left in the deadline sweep's index, which drops it when due");
    assert.equal(await listings(second!.id), 1, "still queued: in it");
    await takeExecJob(first!.id, "tok-requeue");
    assert.equal(
      await requeueRun(p.redis, cell, "default", {
        id: first!.id,
        now: clock.now(),
        token: "tok-requeue",
        reason: "preempted",
        started: false,
      }),
      "ok",
    );

    assert.equal(await listings(first!.id), 2, "queued again: in the index again");
    const q = ingressQueue("solo", "B");
    await assertJobHash(q, first!.id, {});
    await assertOnBoard(q, first!);
    assert.equal(await p.redis.exists(cell.jobKey(EXEC, first!.id)), 0, "gone from the exec queue");
    const w = consume(q, 2);
    await within(20_000, w.all, `the stock Worker did not run the requeued job: ${LAYOUT_HINT}`);
    assert.deepEqual(
      w.ran.map((j) => j.id),
      [first!.id, second!.id],
      "requeued at the head: taken before the workflow that waited",
    );
    assertRan(w.ran[0]!, first!);
    assertRan(w.ran[1]!, second!);
    await w.worker.close();
  });

  it("a parked then recovered job (exec -> parked -> ingress) is on Bull Board in each queue and a stock Worker runs it", async () => {
    const [job] = await admit("acme", [{ type: "noop", class: "B", payload: payload("parked") }]);
    assert.equal((await run()).moved, 1);
    await takeExecJob(job!.id, "tok-park");
    const parked = await parkRun(p.redis, cell, "default", {
      id: job!.id,
      now: clock.now(),
      token: "tok-park",
      dependency: "fhir-gateway",
      reason: "fhir-gateway is down",
      started: false,
    });
    assert.equal(parked, "ok");
    assert.equal(await listings(job!.id), 1, "dispatched, then parked: only its admission's listing, which the sweep drops");
    await assertJobHash(PARKED_QUEUE, job!.id, {});
    await assertOnBoard(PARKED_QUEUE, job!);

    const r = await recoverParked(p.redis, cell, "fhir-gateway", { now: clock.now(), max: 10, recordTtlSec: 60, expireOnly: false });
    assert.equal(r.requeued, 1);
    assert.equal(await listings(job!.id), 2, "recovered, queued again: in the index again");
    const q = ingressQueue("acme", "B");
    await assertJobHash(q, job!.id, {});
    await assertOnBoard(q, job!);
    assert.deepEqual(await boardJobs(PARKED_QUEUE, "waiting"), [], "gone from the parked queue");
    const w = consume(q, 1);
    await within(20_000, w.all, `the stock Worker did not run the recovered job: ${LAYOUT_HINT}`);
    assertRan(w.ran[0]!, job!);
    await w.worker.close();
  });

  it("a job parked at dispatch (ingress -> parked) and requeued by an operator (parked -> ingress) is on Bull Board and a stock Worker runs it", async () => {
    await p.redis.hset(cell.health("fhir-gateway"), { state: "down", since: clock.now(), detail: "probe", source: "probe" });
    // A deadline of its own (Class C has none by default), so that its way through the deadline index shows.
    const deadlineAt = new Date(clock.now() + 600_000).toISOString();
    const [job] = await admit("acme", [{ type: "needs-fhir", class: "C", payload: payload("held back"), deadlineAt }]);
    assert.equal(await recordDeadline(job!.id), Date.parse(deadlineAt));
    assert.equal(await listings(job!.id), 1, "queued: in the deadline sweep's index");
    const d = await run();
    assert.deepEqual([d.moved, d.parked], [0, 1]);
    assert.equal(await listings(job!.id), 1, "parked at dispatch: left in the index, which drops it when due");
    await assertJobHash(PARKED_QUEUE, job!.id, {});
    await assertOnBoard(PARKED_QUEUE, job!);

    assert.equal(
      await resolveParked(p.redis, cell, job!.id, { now: clock.now(), action: "requeue", recordTtlSec: 60, message: "" }),
      "requeued",
    );
    assert.equal(await listings(job!.id), 2, "requeued by an operator: in the index again");
    const q = ingressQueue("acme", "C");
    await assertJobHash(q, job!.id, {});
    await assertOnBoard(q, job!);
    const w = consume(q, 1);
    await within(20_000, w.all, `the stock Worker did not run the requeued job: ${LAYOUT_HINT}`);
    assertRan(w.ran[0]!, job!);
    await w.worker.close();
  });
});
