import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { freePort } from "../../src/dev/embeddedRedis.ts";
import { alive, cmdlineOf, ppidOf } from "../../src/lib/processes.ts";
import { http } from "../helpers/api.ts";

/**
 * `npm start` owns its data folder and its embedded Redis (issue 14): one
 * instance per folder, a foreign server on the port is never used nor stopped,
 * a dead Redis comes back with its data, and Ctrl-C stops every process.
 * Real processes: `bash src/dev/bin/start.sh`, as a person runs it.
 */

interface Run {
  child: ChildProcess;
  pid: number;
  dataDir: string;
  out(): string;
  exited: Promise<number | null>;
}

const runs: Run[] = [];
const dirs: string[] = [];
const others: ChildProcess[] = [];

function newDataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "fl-own-"));
  dirs.push(d);
  return d;
}

function npmStart(dataDir: string, env: Record<string, string> = {}, detached = false): Run {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    FAIRLANE_DATA_DIR: dataDir,
    PORT: "0",
    FAIRLANE_REDIS_PORT: "0",
    FAIRLANE_DOWNSTREAM_PORT: "0",
    ...env,
  };
  delete e.REDIS_URL;
  delete e.REDIS_CLUSTER_NODES;
  delete e.FAIRLANE_ADMIN_TOKEN;
  const child = spawn("bash", ["src/dev/bin/start.sh"], { env: e, stdio: ["ignore", "pipe", "pipe"], detached });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const run: Run = { child, pid: child.pid!, dataDir, out: () => out, exited: new Promise((r) => child.once("exit", (code) => r(code))) };
  runs.push(run);
  return run;
}

/** The API URL from the start banner (start.sh execs node, so the child's pid is Fairlane's). */
async function banner(run: Run): Promise<string> {
  for (const until = Date.now() + 60_000; Date.now() < until; await sleep(100)) {
    const base = /Fairlane is running at (http:\/\/[\d.:]+)/.exec(run.out())?.[1];
    if (base) return base;
    if (run.child.exitCode !== null) break;
  }
  assert.fail(`no start banner:\n${run.out()}`);
}

async function exitWithin(run: Run, ms: number): Promise<number | null | "timeout"> {
  return Promise.race([run.exited, sleep(ms, undefined, { ref: false }).then(() => "timeout" as const)]);
}

/** Gone for good: not running (a zombie waiting for its reaper counts as gone). */
function gone(pid: number): boolean {
  if (!alive(pid)) return true;
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? false;
  } catch {
    return true;
  }
}

async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
  return Date.now() - t0;
}

const redisPidOf = (dataDir: string) => Number(readFileSync(join(dataDir, "redis", "redis.pid"), "utf8").trim());
const devKey = (dataDir: string) => /FAIRLANE_KEY_MERIDIAN_HEALTH=(\S+)/.exec(readFileSync(join(dataDir, "dev-api-keys.env"), "utf8"))![1]!;
const adminHeaders = (dataDir: string) => ({ authorization: `Bearer ${readFileSync(join(dataDir, "admin-token"), "utf8").trim()}` });

/** Every process of the data folder's Redis: the server and its watchdog (found by their arguments). */
function redisProcesses(dataDir: string): number[] {
  const server = existsSync(join(dataDir, "redis", "redis.pid")) ? redisPidOf(dataDir) : 0;
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((p) => {
      const cmd = cmdlineOf(p) ?? "";
      return (cmd.includes("fairlane-redis-watchdog") && cmd.includes(dataDir)) || (p === server && cmd.includes("redis-server"));
    });
}

/** A client of the data folder's embedded Redis (its port from instance.json, its password file). */
function embeddedRedis(dataDir: string): Redis {
  const port = Number(new URL(JSON.parse(readFileSync(join(dataDir, "instance.json"), "utf8")).redis).port);
  const password = readFileSync(join(dataDir, "redis-password"), "utf8").trim();
  return new Redis(port, "127.0.0.1", { password, maxRetriesPerRequest: 1 });
}

/** npm start's exec processes (src/dev/execChildren.ts): its children running workers/exec.ts. */
function execChildren(pid: number): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((p) => ppidOf(p) === pid && (cmdlineOf(p) ?? "").includes("workers/exec.ts") && !gone(p));
}

function cleanup(): void {
  for (const r of runs) {
    if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
    try {
      process.kill(r.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (const c of others) c.kill("SIGKILL");
  for (const d of dirs) {
    try {
      for (const p of redisProcesses(d)) process.kill(p, "SIGKILL");
    } catch {
      /* no redis there */
    }
    rmSync(d, { recursive: true, force: true });
  }
}
process.on("exit", cleanup);
after(cleanup);

async function stopWithSigterm(run: Run): Promise<void> {
  run.child.kill("SIGTERM");
  assert.equal(await exitWithin(run, 20_000), 0, run.out());
}

describe("npm start owns its data folder and its embedded Redis", () => {
  it("a second npm start on the same data folder refuses, naming the first, and changes nothing", { timeout: 120_000 }, async () => {
    const dataDir = newDataDir();
    const first = npmStart(dataDir);
    const base = await banner(first);
    const redisPid = redisPidOf(dataDir);
    const instance = readFileSync(join(dataDir, "instance.json"), "utf8");
    assert.deepEqual(
      { pid: JSON.parse(instance).pid, apiUrl: JSON.parse(instance).apiUrl, redisPid: JSON.parse(instance).redisPid },
      { pid: first.pid, apiUrl: base, redisPid },
    );
    // The banner never shows the embedded Redis's password.
    const password = readFileSync(join(dataDir, "redis-password"), "utf8").trim();
    assert.ok(!first.out().includes(password), "password printed");
    assert.match(first.out(), /Redis: +redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(embedded/);
    // It needs that password, and it is bounded: FAIRLANE_REDIS_MAXMEMORY (1gb), never evicting.
    const port = Number(new URL(JSON.parse(instance).redis).port);
    const anonymous = new Redis(port, "127.0.0.1", {
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    anonymous.on("error", () => undefined);
    const owner = new Redis(port, "127.0.0.1", { password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await anonymous.connect();
      await assert.rejects(anonymous.ping(), /NOAUTH/);
      await owner.connect();
      assert.deepEqual(await owner.config("GET", "maxmemory"), ["maxmemory", String(1024 ** 3)]);
      assert.deepEqual(await owner.config("GET", "maxmemory-policy"), ["maxmemory-policy", "noeviction"]);
    } finally {
      anonymous.disconnect();
      owner.disconnect();
    }

    const second = npmStart(dataDir);
    const code = await exitWithin(second, 60_000);
    assert.notEqual(code, "timeout", second.out());
    assert.notEqual(code, 0, second.out());
    assert.ok(
      second.out().includes(`Fairlane is already running from this data folder (pid ${first.pid}, ${base}); stop it first`),
      second.out(),
    );

    // The first is untouched: same Redis, same instance file, still serving.
    assert.equal(redisPidOf(dataDir), redisPid);
    assert.ok(!gone(redisPid));
    assert.equal(readFileSync(join(dataDir, "instance.json"), "utf8"), instance);
    assert.equal((await http(base, "GET", "/readyz")).status, 200);
    const wf = await http(base, "POST", "/v1/workflows", { key: devKey(dataDir), body: { type: "prior-auth", class: "C" } });
    assert.equal(wf.status, 202, JSON.stringify(wf.body));

    await stopWithSigterm(first);
    assert.ok(!existsSync(join(dataDir, "instance.json")), "a clean stop releases the data folder");
  });

  it("a foreign redis-server on the configured port is neither used nor stopped: npm start refuses", { timeout: 120_000 }, async () => {
    const port = await freePort();
    const foreignDir = newDataDir();
    const foreign = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", foreignDir],
      { stdio: "ignore" },
    );
    others.push(foreign);
    const client = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on("error", () => undefined);
    try {
      await until("the foreign redis answers", 10_000, async () => (await client.ping().catch(() => "")) === "PONG");
      await client.set("someone-else", "1");

      const dataDir = newDataDir();
      const run = npmStart(dataDir, { FAIRLANE_REDIS_PORT: String(port) });
      const code = await exitWithin(run, 60_000);
      assert.notEqual(code, "timeout", run.out());
      assert.notEqual(code, 0, run.out());
      assert.ok(
        run.out().includes(`port ${port} is in use by another process (not this data folder's Redis); set FAIRLANE_REDIS_PORT or stop it`),
        run.out(),
      );
      assert.doesNotMatch(run.out(), /Fairlane is running/);

      assert.equal(foreign.exitCode, null, "the foreign server still runs");
      assert.equal(await client.ping(), "PONG");
      assert.equal(await client.dbsize(), 1, "nothing was written to it");
      assert.ok(!existsSync(join(dataDir, "instance.json")), "a refused start leaves no instance file");
    } finally {
      client.disconnect();
    }
  });

  it("a kill -9 of the embedded Redis is repaired within 10 s with every accepted workflow, and so is a kill -9 of npm start", {
    timeout: 150_000,
  }, async (t) => {
    const dataDir = newDataDir();
    const first = npmStart(dataDir);
    const base = await banner(first);
    const key = devKey(dataDir);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const wf = await http(base, "POST", "/v1/workflows", { key, body: { type: "prior-auth", class: "C" } });
      assert.equal(wf.status, 202, JSON.stringify(wf.body));
      ids.push(wf.body.id);
    }

    const redisPid = redisPidOf(dataDir);
    process.kill(redisPid, "SIGKILL");
    // A producer during the outage gets an answer (503 while Redis is away, 202 once it is back), never a hang.
    // (Needs the api's fail-fast on a lost Redis, issue 14's other half.)
    const during = await Promise.race([
      http(base, "POST", "/v1/workflows", { key, body: { type: "prior-auth", class: "C" } }),
      sleep(2_000, undefined, { ref: false }).then(() => "no answer within 2 s" as const),
    ]);
    assert.notEqual(during, "no answer within 2 s");
    if (typeof during !== "string") {
      t.diagnostic(`POST during the outage: ${during.status}`);
      assert.ok([202, 503].includes(during.status), `${during.status} ${JSON.stringify(during.body)}`);
      if (during.status === 202) ids.push(during.body.id);
    }

    // The supervisor logs the restart once its own readiness check passes, which can come a poll after the
    // api's connection (and /readyz) is back: wait for both, so the log line is not raced.
    const tookMs = await until("the embedded redis is back and its restart logged", 10_000, async () => {
      const pid = existsSync(join(dataDir, "redis", "redis.pid")) ? redisPidOf(dataDir) : 0;
      const back = pid !== redisPid && !gone(pid) && (await http(base, "GET", "/readyz")).status === 200;
      return back && /embedded redis restarted/.test(first.out());
    });
    const newRedisPid = redisPidOf(dataDir);
    assert.match(first.out(), /embedded redis restarted/);
    assert.equal(JSON.parse(readFileSync(join(dataDir, "instance.json"), "utf8")).redisPid, newRedisPid);
    for (const id of ids) {
      const got = await http(base, "GET", `/v1/workflows/${id}`, { key });
      assert.equal(got.status, 200, `workflow ${id} after the restart (${tookMs} ms): ${JSON.stringify(got.body)}`);
      assert.equal(got.body.id, id);
    }

    // npm start itself killed -9: its Redis does not outlive it, and the next start takes over the folder.
    process.kill(first.pid, "SIGKILL");
    await first.exited;
    await until("the orphaned redis-server stops", 10_000, () => gone(newRedisPid));
    const second = npmStart(dataDir);
    const base2 = await banner(second);
    for (const id of ids)
      assert.equal((await http(base2, "GET", `/v1/workflows/${id}`, { key })).status, 200, `workflow ${id} after kill -9`);

    // Both npm start and the watchdog killed -9: the orphaned server is this folder's, its owner is
    // dead, so the next start stops it and takes over its data.
    const orphan = redisPidOf(dataDir);
    for (const p of redisProcesses(dataDir)) if (p !== orphan) process.kill(p, "SIGKILL");
    process.kill(second.pid, "SIGKILL");
    await second.exited;
    await sleep(500);
    assert.ok(!gone(orphan), "the orphan still runs");
    const third = npmStart(dataDir);
    const base3 = await banner(third);
    assert.ok(gone(orphan), "the orphan was stopped");
    assert.notEqual(redisPidOf(dataDir), orphan);
    for (const id of ids)
      assert.equal((await http(base3, "GET", `/v1/workflows/${id}`, { key })).status, 200, `workflow ${id} after the orphan`);
    await stopWithSigterm(third);
  });

  it("the exec role runs in processes of its own: a CPU-bound handler never stalls the api, a kill -9 of one loses nothing", {
    timeout: 150_000,
  }, async (t) => {
    const dataDir = newDataDir();
    const run = npmStart(dataDir, { FAIRLANE_START_EXEC_PROCESSES: "2", FAIRLANE_WORKFLOW_MODULES: "test/helpers/observedWorkflow.ts" });
    const base = await banner(run);
    const key = devKey(dataDir);
    const children = execChildren(run.pid);
    assert.equal(children.length, 2, `exec processes of ${run.pid}: ${children.join()}`);
    const redis = embeddedRedis(dataDir);
    t.after(() => redis.disconnect());
    const submit = async (payload: Record<string, unknown>) => {
      const wf = await http(base, "POST", "/v1/workflows", { key, body: { type: "observed", class: "B", payload } });
      assert.equal(wf.status, 202, JSON.stringify(wf.body));
      return wf.body.id as string;
    };
    // The workflows' own log (test/helpers/observedWorkflow.ts): "<seq>|start|<id>|<tenant>|<class>|<pool>|<pid>|<ms>".
    const events = async (obs: string) => (await redis.lrange(`${obs}:log`, 0, -1)).map((e) => e.split("|"));

    // A handler that keeps the CPU busy for 4 s (a CPU-heavy agent step) blocks only its exec process's
    // event loop: the api answers and admits meanwhile.
    const hogObs = `obs:{hog-${Date.now()}}`;
    await submit({ obs: hogObs, spinMs: 4_000 });
    await until("the CPU-heavy handler starts", 20_000, async () => (await events(hogObs)).length > 0);
    const t0 = Date.now();
    assert.equal((await http(base, "GET", "/healthz")).status, 200);
    assert.equal((await http(base, "POST", "/v1/workflows", { key, body: { type: "eligibility-check", class: "A" } })).status, 202);
    const answeredMs = Date.now() - t0;
    const spinLeftMs = Number((await events(hogObs))[0]!.at(-1)) + 4_000 - t0;
    t.diagnostic(`the api answered twice in ${answeredMs} ms while the handler had ${spinLeftMs} ms of its spin left`);
    assert.ok(spinLeftMs > 2_000 && answeredMs < 1_500, `answered in ${answeredMs} ms with ${spinLeftMs} ms of spin left`);

    await until("the CPU-heavy handler ends", 20_000, async () => (await events(hogObs)).length > 1);

    // 16 runs of 5 s on 2 × 10 slots: both processes run some. One is killed -9 mid-run; its runs start
    // again on another process once their lock lapses (FAIRLANE_LOCK_MS, 10 s) and every workflow completes.
    const obs = `obs:{kill-${Date.now()}}`;
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) ids.push(await submit({ obs, durationMs: 5_000 }));
    await until("all 16 run", 20_000, async () => (await events(obs)).filter((e) => e[1] === "start").length >= 16);
    const victim = Number((await events(obs)).find((e) => e[1] === "start")![6]);
    assert.ok(children.includes(victim), `${victim} is one of ${children.join()}`);
    process.kill(victim, "SIGKILL");
    const atKill = await events(obs);
    const onVictim = atKill
      .filter((e) => e[1] === "start" && Number(e[6]) === victim && !atKill.some((f) => f[1] === "end" && f[2] === e[2]))
      .map((e) => e[2]!);
    assert.ok(onVictim.length > 0, "the killed process was running some of them");
    await until("the killed exec process is replaced", 20_000, () => {
      const now = execChildren(run.pid);
      return now.length === 2 && !now.includes(victim);
    });
    assert.match(run.out(), /exec process died; restarting it/);
    let states: string[] = [];
    const tookMs = await until("every workflow completes", 90_000, async () => {
      states = await Promise.all(ids.map(async (id) => (await http(base, "GET", `/v1/workflows/${id}`, { key })).body.state));
      return states.every((s) => s === "completed");
    }).catch(async (err: Error) => {
      const stuck = ids.filter((_, i) => states[i] !== "completed");
      const trails = await Promise.all(
        stuck.map(async (id) => JSON.stringify((await http(base, "GET", `/v1/audit?workflow=${id}`, { key })).body)),
      );
      return assert.fail(
        `${err.message}: ${trails.join("\n")}\n${run
          .out()
          .split("\n")
          .filter((l) => /"level":[45]/.test(l))
          .join("\n")}`,
      );
    });
    const log = await events(obs);
    for (const id of onVictim)
      assert.ok(
        log.some((e) => e[1] === "end" && e[2] === id && Number(e[6]) !== victim && e.at(-1) === "done"),
        `${id}, killed on ${victim}, ran to its end elsewhere: ${log
          .filter((e) => e[2] === id)
          .map((e) => e.join("|"))
          .join(", ")}`,
      );
    t.diagnostic(`${onVictim.length} runs were on the killed process; every workflow completed ${tookMs} ms after its replacement`);

    // npm start's /metrics has the exec processes' counters (it runs no workflow itself).
    const text = await fetch(`${base}/metrics`, { headers: adminHeaders(dataDir) }).then((r) => r.text());
    const completed = [...text.matchAll(/^fairlane_workflow_runs_total\{[^}]*outcome="completed"[^}]*\} (\d+)/gm)].reduce(
      (a, m) => a + Number(m[1]),
      0,
    );
    assert.ok(completed >= 16 - onVictim.length, `runs counted in /metrics: ${completed}`);

    // kill -9 of npm start: its exec processes see their channel close and stop on their own (draining
    // first, at most their stop deadline: FAIRLANE_SHUTDOWN_GRACE_MS + 5 s).
    const now = execChildren(run.pid);
    process.kill(run.pid, "SIGKILL");
    await run.exited;
    const stopMs = await until(`the exec processes (${now.join()}) stop`, 30_000, () => now.every(gone));
    t.diagnostic(`the exec processes stopped ${stopMs} ms after npm start was killed`);
  });

  it("a Redis that keeps dying ends npm start with a clear message instead of serving nothing", { timeout: 120_000 }, async () => {
    const dataDir = newDataDir();
    const run = npmStart(dataDir);
    await banner(run);
    const killed = new Set<number>();
    const t0 = Date.now();
    while (run.child.exitCode === null && Date.now() - t0 < 40_000) {
      const pid = existsSync(join(dataDir, "redis", "redis.pid")) ? redisPidOf(dataDir) : 0;
      if (pid && !killed.has(pid) && !gone(pid)) {
        killed.add(pid);
        process.kill(pid, "SIGKILL");
      }
      await sleep(50);
    }
    const code = await exitWithin(run, 5_000);
    assert.equal(code, 1, run.out());
    assert.match(run.out(), /fairlane all: the embedded redis-server died 6 times within a minute .*giving up.*; exiting/);
    assert.equal(killed.size, 6);
    assert.ok(!existsSync(join(dataDir, "instance.json")), "the folder is released");
  });

  it("Ctrl-C (SIGINT to the whole process group) stops every process within 15 s, and a restart keeps queued work", {
    timeout: 120_000,
  }, async () => {
    const dataDir = newDataDir();
    const first = npmStart(dataDir, {}, true);
    const base = await banner(first);
    const key = devKey(dataDir);
    // A paused tenant's workflow stays queued: nothing may run it before or after the restart.
    const pause = await http(base, "POST", "/v1/admin/tenants/meridian-health/pause", { headers: adminHeaders(dataDir) });
    assert.equal(pause.status, 200, JSON.stringify(pause.body));
    const wf = await http(base, "POST", "/v1/workflows", { key, body: { type: "prior-auth", class: "B" } });
    assert.equal(wf.status, 202, JSON.stringify(wf.body));
    const before = await http(base, "GET", `/v1/workflows/${wf.body.id}`, { key });
    assert.equal(before.body.state, "queued");

    const processes = [first.pid, ...redisProcesses(dataDir), ...execChildren(first.pid)];
    assert.ok(processes.length >= 4, `node, its exec process, redis-server and its watchdog: ${processes.join()}`);
    const t0 = Date.now();
    process.kill(-first.pid, "SIGINT");
    await until(`every process (${processes.join()}) exits`, 15_000, () => processes.every(gone));
    assert.equal(await first.exited, 0, first.out());
    assert.ok(Date.now() - t0 < 15_000);

    const second = npmStart(dataDir);
    const base2 = await banner(second);
    const afterRestart = await http(base2, "GET", `/v1/workflows/${wf.body.id}`, { key });
    assert.equal(afterRestart.status, 200, JSON.stringify(afterRestart.body));
    assert.equal(afterRestart.body.state, "queued");
    await stopWithSigterm(second);
  });
});
