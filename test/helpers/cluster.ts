import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { freePort } from "../../src/dev/embeddedRedis.ts";

/**
 * A real local Redis Cluster for tests: `masters` redis-servers in cluster
 * mode on free loopback ports (data, config and logs in a temp folder, no
 * AOF), joined with `redis-cli --cluster create ... --cluster-replicas 0`, ready
 * once every node reports `cluster_state:ok`. Everything is killed and removed
 * when the test process exits. Debian's redis-server package ships redis-cli.
 */
export interface LocalCluster {
  /** "127.0.0.1:p1,127.0.0.1:p2,..." — the REDIS_CLUSTER_NODES value. */
  nodesEnv: string;
  nodes: { host: string; port: number }[];
  /** A plain connection to one node (CLUSTER, DBSIZE, INFO: per-node facts). */
  node(port: number): Redis;
  /** Which node (port) serves a hash slot, from CLUSTER SLOTS. */
  ownerOfSlot(slot: number): Promise<number>;
  stop(): void;
}

export async function startCluster(masters = 3): Promise<LocalCluster> {
  for (const bin of ["redis-server", "redis-cli"])
    if (!spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" }).stdout.trim())
      throw new Error(`${bin} is not installed (Debian: apt-get install redis-server)`);
  const dir = mkdtempSync(join(tmpdir(), "fl-test-cluster-"));
  const children: ChildProcess[] = [];
  const clients: Redis[] = [];
  const stop = () => {
    for (const c of clients) c.disconnect();
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", stop);
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) {
    // The cluster bus port is chosen too (default port + 10000 may be taken or past 65535).
    const [port, busPort] = [await freePort(), await freePort()];
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir);
    const child = spawn(
      "redis-server",
      [
        "--bind",
        "127.0.0.1",
        "--port",
        String(port),
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        String(busPort),
        "--cluster-config-file",
        join(nodeDir, "nodes.conf"),
        "--cluster-node-timeout",
        "5000",
        "--dir",
        nodeDir,
        "--appendonly",
        "no",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--logfile",
        join(nodeDir, "redis.log"),
      ],
      { stdio: "ignore" },
    );
    child.unref();
    children.push(child);
    ports.push(port);
  }
  const node = (port: number) => {
    const c = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, retryStrategy: () => 100, lazyConnect: false });
    c.on("error", () => undefined);
    clients.push(c);
    return c;
  };
  const admin = ports.map(node);
  for (const c of admin) await waitFor(async () => (await c.ping()) === "PONG", "redis-server to answer");
  const created = spawnSync(
    "redis-cli",
    ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"],
    { encoding: "utf8", timeout: 60_000 },
  );
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`);
  for (const c of admin) await waitFor(async () => /cluster_state:ok/.test(await c.cluster("INFO")), "cluster_state:ok");
  // Every node must know the whole slot map before clients ask any of them.
  for (const c of admin)
    await waitFor(async () => {
      const slots = (await c.cluster("SLOTS")) as [number, number][];
      return slots.reduce((n, [a, b]) => n + b - a + 1, 0) === 16384 && slots.length === masters;
    }, "a complete slot map");
  return {
    nodesEnv: ports.map((p) => `127.0.0.1:${p}`).join(","),
    nodes: ports.map((port) => ({ host: "127.0.0.1", port })),
    node,
    async ownerOfSlot(slot) {
      const slots = (await admin[0]!.cluster("SLOTS")) as unknown as [number, number, [string, number]][];
      const range = slots.find(([a, b]) => slot >= a && slot <= b);
      if (!range) throw new Error(`slot ${slot} is not served`);
      return Number(range[2][1]);
    },
    stop,
  };
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const until = Date.now() + 30_000; Date.now() < until; ) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
