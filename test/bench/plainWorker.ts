/**
 * The baseline for the throughput benchmark: one plain BullMQ Worker on one
 * queue, no-op processor that ticks the drain clock (lib/drainClock.ts).
 * Env: REDIS_URL, BENCH_QUEUE, BENCH_PREFIX, BENCH_CONCURRENCY; BENCH_DRAIN_KEY
 * (the drain clock's hash). Once connected, adds its pid to
 * `<BENCH_DRAIN_KEY>:ready`; with BENCH_HOLD=1 it fetches nothing until
 * SIGUSR2, so a drain starts with every process booted.
 */
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { drainClock } from "./lib/drainClock.ts";

const clock = drainClock(process.env.REDIS_URL, process.env.BENCH_DRAIN_KEY);
const hold = process.env.BENCH_HOLD === "1";
const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const worker = new Worker(
  process.env.BENCH_QUEUE!,
  async () => {
    clock.tick();
    return null;
  },
  {
    connection,
    prefix: process.env.BENCH_PREFIX!,
    concurrency: Number(process.env.BENCH_CONCURRENCY),
    skipVersionCheck: true,
    autorun: !hold,
  },
);
worker.on("error", () => undefined);
if (hold) process.once("SIGUSR2", () => void worker.run().catch(() => undefined));
await worker.waitUntilReady();
await connection.sadd(`${process.env.BENCH_DRAIN_KEY}:ready`, String(process.pid));
process.on("SIGTERM", async () => {
  await worker.close();
  process.exit(0);
});
