import { setTimeout as sleep } from "node:timers/promises";
import { Downstream, type DownstreamOptions } from "../../src/dev/downstream/simulator.ts";

/** Runs `body` against a fresh simulated downstream (no latency, seed 7) and always stops it, pass or fail. */
export async function withDownstream(opts: Partial<DownstreamOptions>, body: (ds: Downstream) => Promise<void>): Promise<void> {
  const ds = new Downstream({ capacity: 50, latencyMs: { min: 0, max: 0 }, seed: 7, ...opts });
  await ds.start();
  try {
    await body(ds);
  } finally {
    await ds.stop();
  }
}

/** Polls in short steps (never one long sleep) until `check` holds. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
