import { subscribe } from "node:diagnostics_channel";
import { appendFileSync, existsSync, readFileSync } from "node:fs";

/**
 * The HTTP calls a benchmark process sends and the answers it gets, as undici itself reports them on
 * node:diagnostics_channel (the `undici` package Fairlane's httpTool uses and the `fetch` built into
 * Node, which the health role's probes and plain BullMQ's agent worker use, publish alike), without
 * touching the role's code: preloaded with `--import ./test/bench/lib/callProbe.ts` (lib/spawn.ts does so
 * when BENCH_CALL_FILE is set). One line per event, appended synchronously to BENCH_CALL_FILE (a kill -9
 * loses none already noted), its time the wall clock in ms to a hundredth (`performance.timeOrigin +
 * now()`, comparable across the processes of one machine):
 *   s <at> <pid> <path> <key>           the request's headers were handed to its socket: the call started
 *   a <at> <pid> <status> <path> <key>  its answer's headers were parsed: the caller has seen the status
 * `key` is the call's Idempotency-Key ("-" when it has none). The outage scenario cuts at the first answer
 * ≥ 500 any caller saw (a tool call's or a health probe's) and counts the tool calls started after it: the
 * issue's "calls started after the first observed failure", on the callers' side of the wire, where the
 * downstream's own clock only notes an arrival when its busy event loop gets to it.
 */
type Req = { path?: string; headers?: unknown };

function keyOf(req: Req): string {
  const h = req.headers;
  if (Array.isArray(h)) {
    for (let i = 0; i + 1 < h.length; i += 2) if (String(h[i]).toLowerCase() === "idempotency-key") return String(h[i + 1]);
  } else if (typeof h === "string") {
    const m = /^idempotency-key:\s*(\S+)/im.exec(h);
    if (m) return m[1]!;
  }
  return "-";
}

export function startCallProbe(file: string): void {
  const at = () => (performance.timeOrigin + performance.now()).toFixed(2);
  const pathOf = (req: Req) => (typeof req.path === "string" && req.path ? req.path.replaceAll(" ", "%20") : "-");
  const write = (line: string) => {
    try {
      appendFileSync(file, `${line}\n`);
    } catch {
      // the benchmark removed its folder: nothing left to report to
    }
  };
  subscribe("undici:client:sendHeaders", (m) => {
    const { request } = m as { request: Req };
    write(`s ${at()} ${process.pid} ${pathOf(request)} ${keyOf(request)}`);
  });
  subscribe("undici:request:headers", (m) => {
    const { request, response } = m as { request: Req; response: { statusCode: number } };
    write(`a ${at()} ${process.pid} ${response.statusCode} ${pathOf(request)} ${keyOf(request)}`);
  });
}

if (process.env.BENCH_CALL_FILE) startCallProbe(process.env.BENCH_CALL_FILE);

export interface ProbedCall {
  at: number;
  pid: number;
  path: string;
  key: string;
}

/** The calls started (`sent`) and the answers seen (`answers`, with their status) in BENCH_CALL_FILE, each in time order. */
export function readCalls(file: string): { sent: ProbedCall[]; answers: (ProbedCall & { status: number })[] } {
  const sent: ProbedCall[] = [];
  const answers: (ProbedCall & { status: number })[] = [];
  if (!existsSync(file)) return { sent, answers };
  for (const text of readFileSync(file, "utf8").split("\n")) {
    const f = text.split(" ");
    if (f[0] === "s" && f.length === 5) sent.push({ at: Number(f[1]), pid: Number(f[2]), path: f[3]!, key: f[4]! });
    else if (f[0] === "a" && f.length === 6)
      answers.push({ at: Number(f[1]), pid: Number(f[2]), status: Number(f[3]), path: f[4]!, key: f[5]! });
  }
  const byAt = (x: { at: number }, y: { at: number }) => x.at - y.at;
  return { sent: sent.sort(byAt), answers: answers.sort(byAt) };
}
