import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { loadConfig } from "../../src/lib/config.ts";
import { freePort } from "../../src/dev/embeddedRedis.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { checkEvictionPolicy, openPlatform, type Platform } from "../../src/platform.ts";
import { startApiRole } from "../../workers/api.ts";
import { capturedLogger, http } from "../helpers/api.ts";
import { privateRedis, type PrivateRedis } from "../helpers/privateRedis.ts";
import { spawnRole } from "../helpers/roles.ts";
import { freshPrefix } from "../helpers/redis.ts";

/**
 * The api role when its Redis is killed, full, unable to persist or a
 * read-only replica: every request answers a 503 with its code and
 * Retry-After within 2 s (the spec; measured, not padded), nothing leaks
 * into the log, and admission works again once Redis does. Each test runs
 * its own redis-server so that it can kill or fill it.
 */

const SPEC_MS = 2_000;

interface Api {
  base: string;
  prefix: string;
  platform: Platform;
  key: string;
  logs: string[];
  stop(): Promise<void>;
}

/** The api role in this process on `url`, one tenant "clinic" with one API key, every log line kept. */
async function startApi(url: string): Promise<Api> {
  const adminToken = randomBytes(18).toString("hex");
  const prefix = freshPrefix();
  const config = loadConfig({
    ...process.env,
    FAIRLANE_PREFIX: prefix,
    PORT: "0",
    FAIRLANE_ADMIN_TOKEN: adminToken,
    FAIRLANE_RETRY_AFTER_SEC: "5",
  });
  const { log, lines: logs } = capturedLogger("api");
  const platform = await openPlatform(config, url, log);
  await platform.registry.seed(new Map([["clinic", { tier: "enterprise" as const, maxQueueDepth: 100_000 }]]), true);
  const key = (await platform.apiKeys.create("clinic")).key;
  const role = await startApiRole(platform, adminToken, log);
  return {
    base: `http://127.0.0.1:${role.port}`,
    prefix,
    platform,
    key,
    logs,
    async stop() {
      await role.stop();
      await platform.close();
    },
  };
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

/** The slowest 503 so far (reported as a diagnostic). */
let slowestMs = 0;

/** Asserts a 503 with `code` and Retry-After, answered within the spec's 2 s. */
async function assert503(code: string, what: string, call: () => ReturnType<typeof http>): Promise<void> {
  const [r, ms] = await timed(call);
  assert.equal(r.status, 503, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, code, what);
  assert.equal(r.headers.get("retry-after"), "5", what);
  assert.ok(ms < SPEC_MS, `${what} answered in ${Math.round(ms)} ms (spec: within ${SPEC_MS})`);
  slowestMs = Math.max(slowestMs, ms);
}

const workflow = (payload: Record<string, unknown> = {}) => ({ type: "noop", payload });

/** Polls until `f` is true, or fails after `ms`. */
async function eventually(what: string, ms: number, f: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await f()) return Date.now() - t0;
    await sleep(100);
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

/** A private Redis and the api role on it for one test, both stopped however the test ends. */
async function withApi(test: (r: PrivateRedis, api: Api) => Promise<void>): Promise<void> {
  const r = await privateRedis();
  const api = await startApi(r.url);
  try {
    await test(r, api);
  } finally {
    await api.stop();
    await r.stop();
  }
}

const usedMemory = async (admin: Redis) => Number(/^used_memory:(\d+)/m.exec(await admin.info("memory"))![1]);

describe("the api when Redis is away, full or read-only", () => {
  it("answers 503 REDIS_UNAVAILABLE within 2 s while Redis is killed, and admits again when it is back, losing nothing", async (t) => {
    await withApi(async (r, api) => {
      const before = await http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow({ n: 1 }) });
      assert.equal(before.status, 202);
      await r.kill();

      const post = () => http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow({ n: 2 }) });
      await assert503("REDIS_UNAVAILABLE", "POST /v1/workflows", post);
      await assert503("REDIS_UNAVAILABLE", "GET /v1/workflows/:id", () =>
        http(api.base, "GET", `/v1/workflows/${before.body.id}`, { key: api.key }),
      );
      await assert503("REDIS_UNAVAILABLE", "POST /v1/workflows/bulk", () =>
        http(api.base, "POST", "/v1/workflows/bulk", { key: api.key, body: { workflows: [workflow(), workflow()] } }),
      );
      await assert503("REDIS_UNAVAILABLE", "GET /v1/admin/audit", () =>
        http(api.base, "GET", "/v1/admin/audit", { headers: { authorization: `Bearer ${api.platform.config.FAIRLANE_ADMIN_TOKEN}` } }),
      );
      // A policy write goes through the registry, whose polling connection waits for Redis: not the write.
      await assert503("REDIS_UNAVAILABLE", "PUT /v1/admin/tenants/:t", () =>
        http(api.base, "PUT", "/v1/admin/tenants/outage-new", {
          headers: { authorization: `Bearer ${api.platform.config.FAIRLANE_ADMIN_TOKEN}` },
          body: { tier: "professional" },
        }),
      );
      const [ready, readyMs] = await timed(() => http(api.base, "GET", "/readyz"));
      assert.equal(ready.status, 503);
      assert.ok(readyMs < SPEC_MS, `/readyz answered in ${Math.round(readyMs)} ms`);
      // Still bounded once the connection has been failing for a while (reconnect attempts under way).
      await sleep(1_500);
      for (let i = 0; i < 3; i++) await assert503("REDIS_UNAVAILABLE", `POST /v1/workflows, ${i + 2} s into the outage`, post);

      await r.restart();
      const backMs = await eventually("admission after the restart", 10_000, async () => (await post()).status === 202);
      assert.ok(backMs < 5_000, `admitted again ${backMs} ms after redis-server answered`);
      const got = await http(api.base, "GET", `/v1/workflows/${before.body.id}`, { key: api.key });
      assert.equal(got.status, 200, "a workflow admitted before the kill is still there");
      assert.equal(got.body.state, "queued");
      assert.equal((await http(api.base, "GET", "/readyz")).status, 200);

      const lines = api.logs.join("");
      assert.equal(lines.split("REDIS_UNAVAILABLE: requests answer 503").length - 1, 1, "one line for seven refused requests");
      const connectionErrors = lines.split('"msg":"redis connection error').length - 1;
      assert.ok(
        connectionErrors >= 1 && connectionErrors <= 4,
        `${connectionErrors} connection error lines (first per connection, then one per 30 s)`,
      );
      t.diagnostic(
        `slowest 503 ${Math.round(slowestMs)} ms, /readyz ${Math.round(readyMs)} ms, admitting again ${backMs} ms after the restart`,
      );
    });
  });

  it("answers 503 REDIS_UNAVAILABLE within 2 s from a Redis that stopped answering (SIGSTOP), and serves again on SIGCONT", async (t) => {
    const r = await privateRedis();
    const api = await startApi(r.url);
    const pid = r.server().pid!;
    slowestMs = 0;
    try {
      const before = await http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() });
      assert.equal(before.status, 202);
      process.kill(pid, "SIGSTOP"); // connected, but nothing answers: only the command timeout ends a request
      await assert503("REDIS_UNAVAILABLE", "POST /v1/workflows", () =>
        http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() }),
      );
      await assert503("REDIS_UNAVAILABLE", "GET /v1/workflows/:id", () =>
        http(api.base, "GET", `/v1/workflows/${before.body.id}`, { key: api.key }),
      );
      const [ready, readyMs] = await timed(() => http(api.base, "GET", "/readyz"));
      assert.equal(ready.status, 503);
      assert.ok(readyMs < SPEC_MS, `/readyz answered in ${Math.round(readyMs)} ms`);
      t.diagnostic(`slowest 503 ${Math.round(slowestMs)} ms, /readyz ${Math.round(readyMs)} ms`);
      process.kill(pid, "SIGCONT");
      await eventually(
        "admission after SIGCONT",
        5_000,
        async () => (await http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() })).status === 202,
      );
      assert.equal((await http(api.base, "GET", `/v1/workflows/${before.body.id}`, { key: api.key })).status, 200);
    } finally {
      process.kill(pid, "SIGCONT");
      await api.stop();
      await r.stop();
    }
  });

  it("answers 503 REDIS_FULL when Redis reaches maxmemory, logs no payload or key, and admits again once it has room", async () => {
    await withApi(async (r, api) => {
      const sentinel = `PHI-${randomBytes(8).toString("hex")}`;
      await r.admin.config("SET", "maxmemory", String((await usedMemory(r.admin)) + 2 * 1024 * 1024));
      const acknowledged: string[] = [];
      const bulk = () => ({
        workflows: Array.from({ length: 20 }, (_, k) => workflow({ member: sentinel, k, notes: `${sentinel} `.repeat(400) })),
      });
      let full: Awaited<ReturnType<typeof http>> | undefined;
      for (let i = 0; i < 100 && !full; i++) {
        const res = await http(api.base, "POST", "/v1/workflows/bulk", { key: api.key, body: bulk() });
        if (res.status === 202) {
          acknowledged.push(...res.body.accepted.map((a: { id: string }) => a.id));
          // Memory ran out part-way through this bulk: what it admitted is accepted, the rest says why.
          for (const rej of res.body.rejected) assert.equal(rej.error.code, "REDIS_FULL", JSON.stringify(rej));
        } else full = res;
      }
      assert.ok(full, "Redis filled up");
      assert.equal(full.status, 503, JSON.stringify(full.body));
      assert.equal(full.body.error.code, "REDIS_FULL");
      assert.ok(acknowledged.length > 20, `${acknowledged.length} admitted before it was full`);
      // At the limit, freed request buffers let a small write through now and then: hold it over the limit.
      await r.admin.config("SET", "maxmemory", String((await usedMemory(r.admin)) - 512 * 1024));

      await assert503("REDIS_FULL", "POST /v1/workflows", () =>
        http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow({ member: sentinel }) }),
      );
      await assert503("REDIS_FULL", "POST /v1/workflows/bulk", () =>
        http(api.base, "POST", "/v1/workflows/bulk", { key: api.key, body: bulk() }),
      );
      assert.equal((await http(api.base, "GET", `/v1/workflows/${acknowledged[0]}`, { key: api.key })).status, 200, "reads still work");

      const lines = api.logs.join("");
      assert.match(lines, /REDIS_FULL: requests answer 503/);
      assert.match(lines, /"command":\{"name":"evalsha"\}/, "the failed command is named");
      assert.ok(!lines.includes(sentinel), "no payload in the log");
      assert.ok(!lines.includes(api.prefix), "no Redis key in the log");
      assert.equal(lines.split("REDIS_FULL: requests answer 503").length - 1, 1, "one line for three refusals");

      await r.admin.config("SET", "maxmemory", "0");
      const again = await http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() });
      assert.equal(again.status, 202, JSON.stringify(again.body));
      for (let i = 0; i < acknowledged.length; i += 50) {
        const reads = await Promise.all(
          acknowledged.slice(i, i + 50).map((id) => http(api.base, "GET", `/v1/workflows/${id}`, { key: api.key })),
        );
        assert.deepEqual(
          reads.map((x) => x.status).filter((s) => s !== 200),
          [],
          "every acknowledged workflow is still there",
        );
      }
    });
  });

  it("answers 503 REDIS_FULL while Redis cannot persist (MISCONF), and admits again once it can", async () => {
    await withApi(async (r, api) => {
      // A failed snapshot with save points configured makes Redis refuse writes (stop-writes-on-bgsave-error):
      // a directory in the snapshot's place makes its final rename fail, as a full or broken disk would.
      const blocker = join(r.dir, "dump.rdb");
      mkdirSync(join(blocker, "in-the-way"), { recursive: true });
      await r.admin.config("SET", "save", "3600 1");
      await r.admin.bgsave();
      await eventually("the snapshot to fail", 10_000, async () => /rdb_last_bgsave_status:err/.test(await r.admin.info("persistence")));

      await assert503("REDIS_FULL", "POST /v1/workflows", () =>
        http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() }),
      );

      rmSync(blocker, { recursive: true, force: true });
      await r.admin.bgsave();
      await eventually("a snapshot to succeed", 10_000, async () => /rdb_last_bgsave_status:ok/.test(await r.admin.info("persistence")));
      assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() })).status, 202);
    });
  });

  it("answers 503 REDIS_READ_ONLY from a read-only replica, and admits again once it is a master", async () => {
    await withApi(async (r, api) => {
      const before = await http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() });
      assert.equal(before.status, 202);
      // A replica of a master that does not answer keeps its data and refuses writes, as after a failover.
      await r.admin.call("REPLICAOF", "127.0.0.1", String(await freePort()));
      await assert503("REDIS_READ_ONLY", "POST /v1/workflows", () =>
        http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() }),
      );
      await assert503("REDIS_READ_ONLY", "POST /v1/workflows/bulk", () =>
        http(api.base, "POST", "/v1/workflows/bulk", { key: api.key, body: { workflows: [workflow()] } }),
      );
      assert.equal((await http(api.base, "GET", `/v1/workflows/${before.body.id}`, { key: api.key })).status, 200, "reads still work");
      await r.admin.call("REPLICAOF", "NO", "ONE");
      assert.equal((await http(api.base, "POST", "/v1/workflows", { key: api.key, body: workflow() })).status, 202);
    });
  });

  it("refuses to start against a Redis that may evict, naming maxmemory-policy, also when CONFIG is denied", async () => {
    const r = await privateRedis();
    try {
      const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix() });
      await r.admin.config("SET", "maxmemory-policy", "allkeys-lru");
      await assert.rejects(openPlatform(config, r.url, createLogger("test", "silent")), /maxmemory-policy "allkeys-lru".*noeviction/s);
      // Managed Redis often denies CONFIG: INFO memory tells the policy.
      await r.admin.call("ACL", "SETUSER", "app", "on", ">app-pw", "~*", "&*", "+@all", "-config");
      const asApp = `redis://app:app-pw@127.0.0.1:${r.port}`;
      await assert.rejects(openPlatform(config, asApp, createLogger("test", "silent")), /maxmemory-policy "allkeys-lru"/);
      // Neither CONFIG nor INFO: warn and go on.
      await r.admin.call("ACL", "SETUSER", "blind", "on", ">blind-pw", "~*", "&*", "+@all", "-config", "-info");
      const blind = new Redis(`redis://blind:blind-pw@127.0.0.1:${r.port}`, { enableReadyCheck: false });
      const { log, lines } = capturedLogger("test");
      await checkEvictionPolicy(blind, "test", log);
      blind.disconnect();
      assert.match(lines.join(""), /cannot read maxmemory-policy/);

      await r.admin.config("SET", "maxmemory-policy", "noeviction");
      const p = await openPlatform(config, asApp, createLogger("test", "silent"));
      await p.close();
    } finally {
      await r.stop();
    }
  });
});

describe("stopping with Redis gone", () => {
  it("the api role process exits 0 within its grace period after its Redis was killed", async (t) => {
    const r = await privateRedis();
    const role = spawnRole("api", {
      REDIS_URL: r.url,
      PORT: "0",
      FAIRLANE_ADMIN_TOKEN: randomBytes(16).toString("hex"),
      FAIRLANE_PREFIX: freshPrefix(),
      FAIRLANE_SHUTDOWN_GRACE_MS: "5000",
      FAIRLANE_RETRY_AFTER_SEC: "5",
      LOG_LEVEL: "info",
    });
    try {
      let port = 0;
      await eventually("the api process to listen", 30_000, async () => {
        port = Number(/"port":(\d+)[^\n]*"msg":"api listening"/.exec(role.output())?.[1] ?? 0);
        return port > 0;
      });
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await http(base, "GET", "/readyz")).status, 200);
      await r.kill();
      const someKey = `flk_${"0".repeat(12)}_${"a".repeat(32)}`;
      await assert503("REDIS_UNAVAILABLE", "POST /v1/workflows", () =>
        http(base, "POST", "/v1/workflows", { key: someKey, body: workflow() }),
      );
      await sleep(2_000); // reconnect attempts under way on every connection

      const [code, ms] = await timed(() => role.stop());
      assert.equal(code, 0, role.output().slice(-2_000));
      assert.ok(ms < 5_000, `exited ${Math.round(ms)} ms after SIGTERM (grace 5000 ms)`);
      const out = role.output();
      assert.match(out, /"msg":"stopped"/);
      const connectionErrors = out.split('"msg":"redis connection error').length - 1;
      assert.ok(connectionErrors <= 4, `${connectionErrors} connection error lines`);
      t.diagnostic(`exit in ${Math.round(ms)} ms; ${out.split("\n").length} output lines, ${out.length} bytes`);
    } finally {
      await role.kill9().catch(() => undefined);
      await r.stop();
    }
  });
});
