import { connect } from "node:net";
import type { Redis } from "ioredis";
import { localPorts } from "../procStats.ts";

/**
 * Who sends which commands, counted with MONITOR over a small run of its own
 * (MONITOR slows Redis, so no timed phase runs under it), read from a plain
 * socket (ioredis's monitor mode can lose track of its replies). Each line names the
 * client's address, or "lua" for a command a script ran; Redis logs a script
 * call before the commands it runs, so those are charged to the client of the
 * last script call. Addresses are mapped to processes by their sockets' local
 * ports (/proc). Per process: commands sent (a script call counts as one: its
 * requests to Redis), the script calls among them, and the commands its
 * scripts ran inside Redis.
 */
export interface ProcessCommands {
  role: string;
  /** Per workflow. */
  sent: number;
  scripts: number;
  inScripts: number;
}

export interface Census {
  jobs: number;
  processes: ProcessCommands[];
  /** Over all processes, per workflow. */
  sent: number;
  scripts: number;
  inScripts: number;
}

const SCRIPT = /^(evalsha|eval|fcall)(_ro)?$/i;

/**
 * Starts counting. Left out: commands on keys that `ignore(line)` names (the
 * benchmark's own stopwatch) and everything sent on the `observers`
 * connections (the benchmark's polls and measurements). stop() maps addresses
 * to `roles` (plus this process, "producer") while their connections are
 * still open, and gives per-workflow figures.
 */
export async function startCensus(
  url: string,
  observers: Redis[],
  ignore: (line: string) => boolean,
): Promise<{ stop(roles: { role: string; pid: number }[], jobs: number): Promise<Census> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port || 6379), hostname);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.on("error", () => undefined);
  const counts = new Map<string, { sent: number; scripts: number; inScripts: number }>();
  const of = (addr: string) => {
    let c = counts.get(addr);
    if (!c) counts.set(addr, (c = { sent: 0, scripts: 0, inScripts: 0 }));
    return c;
  };
  let lastScript = "";
  let monitoring = false;
  // "+1796124321.900774 [0 127.0.0.1:60622] \"evalsha\" ..." or "[0 lua] ..." per line.
  const line = (text: string) => {
    if (text === "+OK") monitoring = true;
    const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"/.exec(text);
    if (!m || ignore(text)) return;
    const [, source, cmd] = m as unknown as [string, string, string];
    if (source === "lua") {
      if (lastScript) of(lastScript).inScripts++;
      return;
    }
    const c = of(source);
    c.sent++;
    if (SCRIPT.test(cmd)) {
      c.scripts++;
      lastScript = source;
    }
  };
  let buffer = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    const lines = (buffer + chunk).split("\r\n");
    buffer = lines.pop()!;
    for (const l of lines) line(l);
  });
  const started = new Promise<void>((resolve) => {
    const check = () => (monitoring ? resolve() : setTimeout(check, 5));
    check();
  });
  socket.write("MONITOR\r\n");
  await started;
  return {
    async stop(roles, jobs) {
      const owner = new Map<number, string>();
      for (const r of [...roles, { role: "producer", pid: process.pid }]) for (const port of localPorts(r.pid)) owner.set(port, r.role);
      for (const o of observers) if (o.stream?.localPort) owner.set(o.stream.localPort, "-");
      socket.destroy();
      const byRole = new Map<string, { sent: number; scripts: number; inScripts: number }>();
      for (const [addr, c] of counts) {
        const role = owner.get(Number(addr.split(":").at(-1))) ?? "other";
        if (role === "-") continue;
        const t = byRole.get(role) ?? { sent: 0, scripts: 0, inScripts: 0 };
        byRole.set(role, { sent: t.sent + c.sent, scripts: t.scripts + c.scripts, inScripts: t.inScripts + c.inScripts });
      }
      const processes = [...byRole]
        .map(([role, c]) => ({ role, sent: c.sent / jobs, scripts: c.scripts / jobs, inScripts: c.inScripts / jobs }))
        .sort((a, b) => a.role.localeCompare(b.role));
      const total = (k: "sent" | "scripts" | "inScripts") => processes.reduce((s, p) => s + p[k], 0);
      return { jobs, processes, sent: total("sent"), scripts: total("scripts"), inScripts: total("inScripts") };
    },
  };
}
