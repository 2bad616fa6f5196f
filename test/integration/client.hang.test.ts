import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { FairlaneClient, FairlaneWaitError } from "../../src/client/index.ts";

/**
 * The client's wait against a server that accepts and never answers (a stuck proxy): it must give up at
 * its own timeout, not at undici's five-minute header timeout. Real HTTP on loopback, real time.
 */
describe("client wait against a server that never answers", () => {
  let server: Server;
  let base: string;
  const open = new Set<import("node:http").ServerResponse>();
  before(async () => {
    server = createServer((_req, res) => void open.add(res)); // never answers
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const res of open) res.destroy();
    await new Promise((r) => server.close(r));
  });

  it("gives up at its timeout with FairlaneWaitError, the request cut off", async () => {
    const client = new FairlaneClient({ baseUrl: base, apiKey: "flk_test" });
    const t0 = Date.now();
    await assert.rejects(
      client.wait("wf_AAAAAAAAAAAAAAAAAAAA", { timeoutMs: 300 }),
      (err: unknown) => err instanceof FairlaneWaitError && err.reason === "timeout",
    );
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 5_000, `gave up after ${took} ms`);
  });

  it("an abort ends it at once, mid-request", async () => {
    const client = new FairlaneClient({ baseUrl: base, apiKey: "flk_test" });
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 100);
    const t0 = Date.now();
    await assert.rejects(
      client.wait("wf_AAAAAAAAAAAAAAAAAAAA", { timeoutMs: 60_000, signal: ctrl.signal }),
      (err: unknown) => err instanceof FairlaneWaitError && err.reason === "aborted",
    );
    assert.ok(Date.now() - t0 < 5_000);
  });
});
