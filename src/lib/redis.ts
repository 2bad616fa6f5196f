import { Redis, type RedisOptions } from "ioredis";

/**
 * One place that opens Redis connections. BullMQ needs `maxRetriesPerRequest: null`
 * on connections it blocks on; we use it everywhere so a Redis restart makes
 * commands wait for the reconnect instead of failing mid-move.
 */
export function connect(url: string, opts: RedisOptions = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...opts });
  client.setMaxListeners(0); // every BullMQ Queue sharing this client adds listeners
  return client;
}

/** A connection for request paths: fails fast instead of queueing while Redis is away. */
export function connectForRequests(url: string): Redis {
  return connect(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true });
}
