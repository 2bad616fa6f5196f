/**
 * The baseline for the throughput benchmark: one plain BullMQ Worker on one
 * queue, no-op processor. Env: REDIS_URL, BENCH_QUEUE, BENCH_PREFIX, BENCH_CONCURRENCY.
 */
import { Worker } from "bullmq";
import { Redis } from "ioredis";

const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const worker = new Worker(process.env.BENCH_QUEUE!, async () => null, {
  connection,
  prefix: process.env.BENCH_PREFIX!,
  concurrency: Number(process.env.BENCH_CONCURRENCY),
  skipVersionCheck: true,
});
worker.on("error", () => undefined);
process.on("SIGTERM", async () => {
  await worker.close();
  process.exit(0);
});
