import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ingressQueue } from "../../queues/names.ts";
import { FairlaneClient } from "../../src/client/index.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { runCli, type CliResult } from "../helpers/cli.ts";

const run = (args: string[], env: Record<string, string>): Promise<CliResult> => runCli(args, env);

describe("bulk enqueue: CLI and client", () => {
  let api: TestApi;
  let dir: string;
  before(async () => {
    api = await startTestApi({ meridian: { tier: "enterprise" }, tiny: { tier: "free", maxQueueDepth: 5 } });
    dir = mkdtempSync(join(tmpdir(), "fl-cli-"));
  });
  after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("enqueues a 1,200-line NDJSON batch, reporting bad lines by number", { timeout: 60_000 }, async () => {
    const lines = Array.from({ length: 1200 }, (_, i) =>
      JSON.stringify({ type: "prior-auth", class: "C", idempotencyKey: `night-1/${i}`, payload: { row: i } }),
    );
    lines.splice(100, 0, "{not json");
    lines.splice(500, 0, JSON.stringify({ type: "prior-auth", class: "X" }));
    const file = join(dir, "batch.ndjson");
    writeFileSync(file, `${lines.join("\n")}\n\n`);
    const out = join(dir, "ids.ndjson");
    const r = await run(["enqueue", file, "--url", api.base, "--chunk", "250", "--out", out, "--json"], {
      FAIRLANE_API_KEY: api.keys.meridian!,
    });
    assert.equal(r.code, 2, "exit 2 when some lines were rejected");
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(summary.lines, 1202);
    assert.equal(summary.accepted, 1200);
    assert.deepEqual(
      summary.rejected.map((x: { line: number; code: string }) => [x.line, x.code]),
      [
        [101, "INVALID_JSON"],
        [501, "INVALID_REQUEST"],
      ],
    );
    const depth = await api.platform.redis.llen(api.platform.keys.cell("default").queueKey(ingressQueue("meridian", "C"), "wait"));
    assert.equal(depth, 1200);
    assert.equal(readFileSync(out, "utf8").trim().split("\n").length, 1200);

    // Re-running the same file enqueues nothing new (idempotency keys).
    const again = await run(["enqueue", file, "--url", api.base, "--json"], { FAIRLANE_API_KEY: api.keys.meridian! });
    assert.equal(JSON.parse(again.stdout.trim()).duplicates, 1200);
    assert.equal(await api.platform.redis.llen(api.platform.keys.cell("default").queueKey(ingressQueue("meridian", "C"), "wait")), 1200);
  });

  it("refuses to run without an API key", async () => {
    const r = await run(["enqueue", "x.ndjson", "--url", api.base], { FAIRLANE_API_KEY: "" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /API key is required/);
  });

  it("the client waits out backpressure instead of dropping workflows", async () => {
    const client = new FairlaneClient({ baseUrl: api.base, apiKey: api.keys.tiny! });
    const cell = api.platform.keys.cell("default");
    let waits = 0;
    // While the client waits, a consumer drains the tiny tenant's queue, as the dispatcher would.
    const drain = async () => {
      waits++;
      const ids = await api.platform.redis.lrange(cell.queueKey(ingressQueue("tiny", "B"), "wait"), 0, -1);
      for (const id of ids) await client.cancel(id);
    };
    const result = await client.enqueueMany(
      Array.from({ length: 12 }, (_, i) => ({ type: "noop", payload: { i } })),
      { chunkSize: 4, sleep: drain },
    );
    assert.equal(result.accepted.length, 12);
    assert.equal(result.rejected.length, 0);
    assert.ok(waits >= 2, `waited ${waits} times`);
    assert.deepEqual(
      result.accepted.map((a) => a.index),
      [...Array(12).keys()],
    );
  });
});
