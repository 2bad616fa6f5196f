import { spawn, type ChildProcess } from "node:child_process";
import type { DownstreamStats } from "../../../src/dev/downstream/simulator.ts";

/**
 * The simulated downstream as its own OS process (src/dev/downstream/server.ts),
 * so serving thousands of tool calls never delays the benchmark's producer
 * and clock. Its counters are the benchmark's independent observer of load.
 */
export interface DownstreamProcess {
  url: string;
  pid: number;
  stats(): Promise<DownstreamStats>;
  reset(): Promise<void>;
  outage(on: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** `loopFile`: also record the downstream's event-loop delay there (lib/loopProbe.ts), as role "downstream". */
export async function startDownstream(o: {
  capacity: number;
  latencyMs: [number, number];
  queueTimeoutMs?: number;
  seed?: number;
  loopFile?: string;
}): Promise<DownstreamProcess> {
  const probe = o.loopFile ? ["--import", "./test/bench/lib/loopProbe.ts"] : [];
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", ...probe, "src/dev/downstream/server.ts"], {
    env: {
      ...process.env,
      ...(o.loopFile ? { BENCH_LOOP_FILE: o.loopFile, BENCH_ROLE: "downstream" } : {}),
      DOWNSTREAM_PORT: "0",
      DOWNSTREAM_CAPACITY: String(o.capacity),
      DOWNSTREAM_LATENCY_MS: `${o.latencyMs[0]}-${o.latencyMs[1]}`,
      DOWNSTREAM_QUEUE_TIMEOUT_MS: String(o.queueTimeoutMs ?? 0),
      DOWNSTREAM_SEED: String(o.seed ?? 1),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  process.on("exit", () => child.kill("SIGKILL"));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening at (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`downstream exited ${code}`)));
  });
  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) =>
      r.arrayBuffer(),
    );
  return {
    url,
    pid: child.pid!,
    stats: async () => (await (await fetch(`${url}/admin/stats`)).json()) as DownstreamStats,
    reset: () => post("/admin/reset", {}).then(() => undefined),
    outage: (on) => post("/admin/outage", { on }).then(() => undefined),
    stop: () =>
      new Promise((r) => {
        if (child.exitCode !== null) return r();
        child.once("exit", () => r());
        child.kill("SIGTERM");
      }),
  };
}
