import { connect, createServer, type AddressInfo, type Socket } from "node:net";

/**
 * A TCP proxy on loopback in front of a real Redis, for one role process's connections: what the process
 * sends always goes through at once; what Redis answers can be held back and then let through in order,
 * as a process that froze (SIGSTOP, a long GC pause) would read it, late. Its own event loop runs on.
 */
export interface ReplyGate {
  /** redis:// URL of the proxy: the process's REDIS_URL. */
  url: string;
  /** Holds every reply, from the first one that contains `marker` on; resolves when that one arrives. */
  holdFrom(marker: string): Promise<void>;
  /** Lets what was held through, in order, and holds nothing more. */
  release(): void;
  close(): Promise<void>;
}

export async function replyGate(redisUrl: string): Promise<ReplyGate> {
  const target = new URL(redisUrl);
  const sockets = new Set<Socket>();
  const held: [Socket, Buffer][] = [];
  let holding = false;
  let armed: { marker: Buffer; seen: () => void } | undefined;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(s);
      });
    }
    client.on("data", (d: Buffer) => upstream.write(d));
    upstream.on("data", (d: Buffer) => {
      if (armed && d.includes(armed.marker)) {
        holding = true;
        armed.seen();
        armed = undefined;
      }
      if (holding) held.push([client, d]);
      else client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    holdFrom(marker) {
      return new Promise((seen) => {
        armed = { marker: Buffer.from(marker), seen };
      });
    },
    release() {
      holding = false;
      for (const [client, d] of held.splice(0)) client.write(d);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
