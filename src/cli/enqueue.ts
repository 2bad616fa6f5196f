import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { SingleBar, Presets } from "cli-progress";
import { FairlaneClient, type WorkflowRequest } from "../client/index.ts";

export interface EnqueueFileOptions {
  url: string;
  key: string;
  chunk: number;
  out?: string;
  json?: boolean;
}

export interface EnqueueSummary {
  lines: number;
  accepted: number;
  duplicates: number;
  rejected: { line: number; code: string; message: string }[];
}

/**
 * Bulk-enqueues an NDJSON file (one workflow request per line, blank lines
 * skipped) for the tenant the API key belongs to, `chunk` per request, with a
 * progress bar on a terminal. Backpressure (429) is waited out, never dropped.
 * Lines that are not JSON are reported with their number and not sent.
 * `--out` writes `{"line":n,"id":"wf_..."}` per accepted line.
 */
export async function enqueueFile(file: string, o: EnqueueFileOptions): Promise<EnqueueSummary> {
  const total = readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim()).length;
  const client = new FairlaneClient({ baseUrl: o.url, apiKey: o.key });
  const out = o.out ? createWriteStream(o.out) : undefined;
  const tty = process.stderr.isTTY && !o.json;
  const bar = tty
    ? new SingleBar({ format: "enqueue [{bar}] {value}/{total} lines | {eta}s left", stream: process.stderr }, Presets.shades_classic)
    : undefined;
  bar?.start(total, 0);
  const summary: EnqueueSummary = { lines: 0, accepted: 0, duplicates: 0, rejected: [] };
  let batch: { line: number; req: WorkflowRequest }[] = [];

  const flush = async () => {
    if (!batch.length) return;
    const result = await client.enqueueMany(
      batch.map((b) => b.req),
      { chunkSize: o.chunk },
    );
    for (const a of result.accepted) {
      summary.accepted++;
      if (a.duplicate) summary.duplicates++;
      out?.write(`${JSON.stringify({ line: batch[a.index]!.line, id: a.id })}\n`);
    }
    for (const r of result.rejected) summary.rejected.push({ line: batch[r.index]!.line, ...r.error });
    batch = [];
    bar?.update(summary.lines);
    if (!tty && !o.json) process.stderr.write(`enqueued ${summary.lines}/${total} lines\n`);
  };

  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    if (!text.trim()) continue;
    summary.lines++;
    try {
      batch.push({ line: n, req: JSON.parse(text) as WorkflowRequest });
    } catch (err) {
      summary.rejected.push({ line: n, code: "INVALID_JSON", message: (err as Error).message });
    }
    if (batch.length >= o.chunk) await flush();
  }
  await flush();
  bar?.stop();
  await new Promise<void>((r) => (out ? out.end(r) : r()));
  summary.rejected.sort((a, b) => a.line - b.line);
  return summary;
}
