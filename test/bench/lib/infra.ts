import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedRedis } from "../../../src/dev/embeddedRedis.ts";

/** A redis-server of the benchmark's own, in a temp folder, removed at stop. */
export async function benchRedis(
  appendfsync: "always" | "everysec" = "everysec",
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "fl-bench-"));
  const redis = new EmbeddedRedis({ dir, port: 0, appendfsync });
  const url = await redis.start();
  process.on("exit", () => redis.killNow());
  return {
    url,
    pid: redis.pid!,
    async stop() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Calls `tick(i)` every `everyMs` for `forMs`, without drift; resolves when all ticks' promises settle. */
export async function steady(forMs: number, everyMs: number, tick: (i: number) => Promise<unknown>): Promise<void> {
  const t0 = Date.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; Date.now() - t0 < forMs; i++) {
    pending.push(tick(i));
    const next = t0 + (i + 1) * everyMs;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  await Promise.all(pending);
}
