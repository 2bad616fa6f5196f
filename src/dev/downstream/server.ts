/**
 * Runs the simulated downstream service on its own, for example workflows and
 * benchmarks in other processes (they flip outages with its /admin endpoints, as
 * JSON POSTs: a cross-site or non-JSON write is refused, see simulator.ts):
 *   DOWNSTREAM_PORT=4100 DOWNSTREAM_CAPACITY=50 DOWNSTREAM_LATENCY_MS=20-80 node --import tsx src/dev/downstream/server.ts
 * DOWNSTREAM_QUEUE_TIMEOUT_MS (default 0): how long a request over capacity waits for a connection.
 * DOWNSTREAM_SEED (default 1): seeds latencies and failures.
 * Stops cleanly on SIGTERM or SIGINT (exit 0); bad settings exit 1 naming the variable.
 */
import { Downstream, type DownstreamOptions } from "./simulator.ts";

function optionsFromEnv(env: NodeJS.ProcessEnv): DownstreamOptions {
  const int = (name: string, fallback: number, min: number): number => {
    const raw = env[name]?.trim() || String(fallback);
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
    return n;
  };
  const rawLatency = env.DOWNSTREAM_LATENCY_MS?.trim() || "20-80";
  const m = /^(\d+)-(\d+)$/.exec(rawLatency);
  if (!m || Number(m[1]) > Number(m[2]))
    throw new Error(`DOWNSTREAM_LATENCY_MS must be "min-max" in ms with min <= max, got "${rawLatency}"`);
  return {
    port: int("DOWNSTREAM_PORT", 4100, 0),
    capacity: int("DOWNSTREAM_CAPACITY", 50, 1),
    queueTimeoutMs: int("DOWNSTREAM_QUEUE_TIMEOUT_MS", 0, 0),
    seed: int("DOWNSTREAM_SEED", 1, 0),
    latencyMs: { min: Number(m[1]), max: Number(m[2]) },
  };
}

async function main(): Promise<void> {
  let downstream: Downstream;
  try {
    downstream = new Downstream(optionsFromEnv(process.env));
    const url = await downstream.start();
    process.stdout.write(`downstream listening at ${url}\n`);
  } catch (err) {
    process.stderr.write(`downstream: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(1); // a second signal: give up waiting
    stopping = true;
    downstream.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

void main();
