/**
 * Controls off: a plain BullMQ worker process, as the platform ran before
 * Fairlane. One FIFO queue, no tenant caps, no tool gate, no health signal.
 * The agent fires each step's tool calls all at once, straight at the
 * downstream, and retries every failed call naively: exponential backoff with
 * jitter, BENCH_RETRIES times (default 3), then fails the job, which BullMQ
 * retries (3 attempts, exponential backoff). Same observer log as Fairlane's.
 *   REDIS_URL BENCH_PREFIX BENCH_CONCURRENCY BENCH_DOWNSTREAM_URL [BENCH_RETRIES]
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import { FHIR_RESOURCES } from "../../src/dev/examples/tools.ts";
import { observed } from "./lib/observer.ts";

const base = process.env.BENCH_DOWNSTREAM_URL!;
const RETRIES = Number(process.env.BENCH_RETRIES ?? 3);

async function call(resource: string, tenant: string, latencyMs: unknown): Promise<void> {
  const url = `${base}/fhir/${resource}${latencyMs === undefined ? "" : `?latencyMs=${Number(latencyMs)}`}`;
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(url, {
      method: "POST",
      headers: { "x-tenant-id": tenant },
      body: "{}",
      signal: AbortSignal.timeout(10_000),
    }).catch(() => null);
    await r?.arrayBuffer().catch(() => undefined);
    if (r?.ok) return;
    if (attempt >= RETRIES) throw new Error(`${resource} failed after ${attempt + 1} attempts (${r?.status ?? "no answer"})`);
    await sleep(100 * 2 ** attempt * (0.5 + Math.random()));
  }
}

async function agent(tenant: string, payload: Record<string, unknown>): Promise<void> {
  const steps = Math.min(10, Math.max(1, Number(payload.steps ?? 3)));
  const width = Math.min(9, Math.max(4, Number(payload.fanout ?? 6)));
  for (let s = 0; s < steps; s++)
    await Promise.all(
      Array.from({ length: width }, (_, i) => call(FHIR_RESOURCES[(s + i) % FHIR_RESOURCES.length]!, tenant, payload.latencyMs)),
    );
  if (payload.submit !== false) await call("prior-auth-submit", tenant, payload.latencyMs);
}

interface Data {
  tenant: string;
  cls: string;
  payload: Record<string, unknown>;
}

const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const worker = new Worker<Data>(
  "work",
  async (job: Job<Data>) => {
    const { tenant, cls, payload } = job.data;
    await observed(String(payload.obs), job.id!, tenant, cls, async () => {
      if (job.name === "bench-sleep") await sleep(Number(payload.durationMs ?? 0));
      else await agent(tenant, payload);
    });
  },
  { connection, prefix: process.env.BENCH_PREFIX!, concurrency: Number(process.env.BENCH_CONCURRENCY ?? 10) },
);
worker.on("error", () => undefined);
process.on("SIGTERM", () => {
  void worker.close().then(() => process.exit(0));
});
