import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";

/**
 * One place that opens Redis connections, to one server or to a Redis Cluster
 * (docs/cluster.md). BullMQ needs `maxRetriesPerRequest: null` on connections it
 * blocks on; we use it everywhere so a Redis restart makes commands wait for the
 * reconnect instead of failing mid-move.
 *
 * A cluster connection is an ioredis `Cluster`, typed as `Redis` so every role,
 * wrapper and BullMQ queue runs unchanged: Fairlane only calls commands, Lua
 * scripts (EVALSHA; `defineCommand` inside pipelines), pipelines/MULTI on one cell's keys, pub/sub and
 * `quit`/`disconnect`, which a Cluster has with the same signatures. It routes
 * each command, script and pipeline by its keys' hash slot; a pipeline or MULTI
 * must stay within one slot (one cell's `{<root>.<cell>}` tag, or the registry's).
 * Never call `duplicate(options)` on one (Cluster's signature differs): open
 * another connection with `connect(target)`.
 *
 * Request paths (the api role) use `connectForRequests` instead: while Redis is
 * away a request must get its 503 within 2 s, not wait for the reconnect.
 */

export interface ClusterNode {
  host: string;
  port: number;
}

/** Where Redis is: one server (a redis:// or rediss:// URL) or a cluster's seed nodes. */
export type RedisTarget =
  | { kind: "single"; url: string }
  | { kind: "cluster"; nodes: ClusterNode[] /** credentials and TLS, from REDIS_URL when given */; url?: string };

/** `host:port,host:port` (REDIS_CLUSTER_NODES) as seed nodes. */
export function parseClusterNodes(list: string): ClusterNode[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const i = s.lastIndexOf(":");
      const port = Number(s.slice(i + 1));
      if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`cluster node "${s}" is not host:port`);
      return { host: s.slice(0, i), port };
    });
}

/** A URL asks for cluster mode with `?cluster=1` (or `true`/`yes`); its host is the seed node. */
function wantsCluster(url: URL): boolean {
  return ["1", "true", "yes"].includes((url.searchParams.get("cluster") ?? "").toLowerCase());
}

/**
 * The target from the environment: REDIS_CLUSTER_NODES (seed list) wins; else
 * REDIS_URL, a cluster when it carries `?cluster=1`; undefined when neither is set.
 */
export function redisTargetFromEnv(env: { REDIS_URL?: string; REDIS_CLUSTER_NODES?: string }): RedisTarget | undefined {
  if (env.REDIS_CLUSTER_NODES)
    return { kind: "cluster", nodes: parseClusterNodes(env.REDIS_CLUSTER_NODES), ...(env.REDIS_URL ? { url: env.REDIS_URL } : {}) };
  if (env.REDIS_URL) return toTarget(env.REDIS_URL);
  return undefined;
}

/** A URL string as a target (cluster when it says `?cluster=1`); a target as itself. */
export function toTarget(t: string | RedisTarget): RedisTarget {
  if (typeof t !== "string") return t;
  const u = new URL(t);
  if (!wantsCluster(u)) return { kind: "single", url: t };
  return { kind: "cluster", nodes: [{ host: u.hostname, port: Number(u.port || 6379) }], url: t };
}

/** For logs and the start banner: no credentials. */
export function describeTarget(t: string | RedisTarget): string {
  const target = toTarget(t);
  if (target.kind === "single") return redact(target.url);
  return `redis cluster (seeds ${target.nodes.map((n) => `${n.host}:${n.port}`).join(",")})`;
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString().replace(/\/$/, "");
}

/** Credentials, TLS and db of a URL, as per-node options of a cluster. */
function urlOptions(url: string | undefined): RedisOptions {
  if (!url) return {};
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

export function isCluster(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true;
}

export function connect(target: string | RedisTarget, opts: RedisOptions = {}): Redis {
  const t = toTarget(target);
  // Reconnect at least every 500 ms (ioredis's default backs off to 2 s): after a Redis restart every
  // role resumes within half a second, and a running workflow's lock is renewed long before it
  // expires (the fault drill restarts Redis twice within one lock period).
  const base: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 50, 500),
    ...opts,
  };
  let client: Redis;
  if (t.kind === "single") client = new Redis(t.url, base);
  else {
    // A node keeps its own offline queue on (ioredis's default: nodes connect lazily, on their first
    // command). Whether a command may wait for a node, or the cluster, that is not connected is the
    // cluster's `enableOfflineQueue` below.
    // No automatic pipelines on a cluster, even when asked: ioredis groups them per node, across slots,
    // and retries a redirected pipeline only when every command in it was redirected, so during a
    // resharding (how a cell moves, docs/cluster.md) some commands would fail with MOVED/ASK.
    const { enableOfflineQueue: _cluster, enableAutoPipelining: _notOnCluster, ...nodeOpts } = base;
    const clusterOpts: ClusterOptions = {
      redisOptions: { ...urlOptions(t.url), ...nodeOpts },
      // Commands wait (offline queue) while the slot map is fetched or refreshed after a failover,
      // like a single connection waits for its reconnect.
      enableOfflineQueue: opts.enableOfflineQueue ?? true,
      enableReadyCheck: true,
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: 2_000,
      scaleReads: "master",
    };
    client = new Cluster(t.nodes, clusterOpts) as unknown as Redis;
  }
  client.setMaxListeners(0); // every BullMQ Queue sharing this client adds listeners
  return client;
}

/** The longest one request-path command waits for its reply (the api answers within 2 s). */
export const REQUEST_COMMAND_TIMEOUT_MS = 1_500;

/**
 * A connection for request paths: a command fails instead of waiting while
 * Redis is away, so the request answers 503 REDIS_UNAVAILABLE in bounded time:
 *   not connected (refused, reconnecting, cluster not ready)  at once: no offline queue
 *   connected but no reply (a hung or black-holed server)      after `commandTimeoutMs`
 *   in flight when the connection dropped                      resent once, then failed
 * It reconnects every ≤ 1 s, so requests succeed again within a second of
 * Redis's return. Wait for `whenReady` before the first command. Not for
 * BullMQ workers or blocking commands (those keep `connect`).
 */
export function connectForRequests(target: string | RedisTarget, commandTimeoutMs = REQUEST_COMMAND_TIMEOUT_MS): Redis {
  return connect(target, {
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
  });
}

/** Resolves when the connection is ready; rejects after `timeoutMs` or when it ends first. */
export async function whenReady(redis: Redis, timeoutMs = 30_000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      redis.off("end", onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onEnd = () => done(new Error("the Redis connection ended before it was ready"));
    const timer = setTimeout(() => done(new Error(`Redis was not ready within ${timeoutMs} ms`)), timeoutMs);
    redis.on("ready", onReady);
    redis.on("end", onEnd);
  });
}

/**
 * QUIT, waiting at most `timeoutMs` (a QUIT queued behind commands for a Redis
 * that is gone never completes); then the socket is dropped, which also fails
 * every command still waiting on this connection ("Connection is closed.").
 */
export async function closeConnection(redis: Redis, timeoutMs = 1_000): Promise<void> {
  if (redis.status === "end") return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    redis.quit().catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if ((redis.status as string) !== "end") redis.disconnect();
}

/**
 * A server's `maxmemory-policy`: CONFIG GET, else INFO memory's `maxmemory_policy`
 * (managed Redis often disables CONFIG); undefined when neither tells.
 */
export async function readMaxmemoryPolicy(node: Redis): Promise<string | undefined> {
  try {
    const reply = (await node.config("GET", "maxmemory-policy")) as unknown as string[];
    if (typeof reply?.[1] === "string" && reply[1]) return reply[1];
  } catch {
    /* CONFIG disabled or renamed: try INFO */
  }
  try {
    return /^maxmemory_policy:(\S+)/m.exec(await node.info("memory"))?.[1];
  } catch {
    return undefined;
  }
}

/** The servers behind a connection: the one server, or a cluster's masters (known once it is ready). */
export function serversOf(redis: Redis): Redis[] {
  return isCluster(redis) ? (redis as unknown as Cluster).nodes("master") : [redis];
}
