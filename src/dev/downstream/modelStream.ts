/**
 * POST /model/stream of the simulated Downstream (simulator.ts): `{tokens?, tokenMs?: {min,max}}`
 * answered as text/plain, one token per chunk, each after its delay.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { checkLatency, type Latency } from "./downstreamOptions.ts";
import type { OwnStats } from "./downstreamStats.ts";
import { HttpError, readJson } from "./simulatorHttp.ts";

/** `stats` is read when counting (a reset replaces it); `tokenRandom` draws each token's delay. */
export async function modelStream(
  req: IncomingMessage,
  res: ServerResponse,
  stats: () => OwnStats,
  tokenRandom: () => number,
): Promise<void> {
  const b = await readJson(req);
  const tokens = b.tokens ?? 50;
  if (typeof tokens !== "number" || !Number.isInteger(tokens) || tokens < 0)
    throw new HttpError(400, "BAD_REQUEST", "tokens must be an integer >= 0");
  let tokenMs: Latency;
  try {
    const raw = (b.tokenMs ?? { min: 20, max: 60 }) as Partial<Latency>;
    tokenMs = checkLatency({ min: Number(raw.min), max: Number(raw.max) }, "tokenMs");
  } catch (err) {
    throw new HttpError(400, "BAD_REQUEST", (err as Error).message);
  }
  stats().modelStreams.started++;
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.flushHeaders(); // the client sees the stream start before the first token

  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const delay = () => Math.round(tokenMs.min + (tokenMs.max - tokenMs.min) * tokenRandom());
  // Each token is "generated" for its delay, then written as its own chunk.
  const next = () => {
    timer = undefined;
    res.write(`tok${sent} `);
    sent++;
    if (sent === tokens) res.end();
    else timer = setTimeout(next, delay());
  };
  res.once("close", () => {
    // Stop writing at once: no token is produced for a reader that is gone.
    if (timer) clearTimeout(timer);
    if (res.writableFinished) stats().modelStreams.completed++;
    else stats().modelStreams.cutMidway++;
  });
  if (tokens === 0) res.end();
  else timer = setTimeout(next, delay());
}
