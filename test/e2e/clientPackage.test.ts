import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Accepted as ServerAccepted } from "../../src/admission/admit.ts";
import type { WorkflowRequestInput } from "../../src/admission/schema.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { WorkflowPage } from "../../src/workflows/list.ts";
import type { LIST_STATES } from "../../src/workflows/listIndex.ts";
import type { WorkflowView } from "../../src/workflows/record.ts";
import { startApiRole, type ApiRole } from "../../workers/api.ts";
import type * as Client from "../../packages/client/src/index.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";

/**
 * The client as a producer gets it: `npm run build` and `npm pack` in
 * packages/client, the tarball installed into an empty project, a producer
 * script type-checked against its declarations alone and then run against a
 * real Fairlane (exec and dispatcher processes, the api in this process).
 */
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const PACKAGE = join(REPO, "packages/client");
const TSC = join(REPO, "node_modules/typescript/bin/tsc");

// The hand-written types say what the server answers: a drift fails `tsc --noEmit` on this line.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const typesMatch: [
  Same<Client.Workflow, WorkflowView>,
  Same<Client.WorkflowRequest, WorkflowRequestInput>,
  Same<Omit<Client.Accepted, "class" | "state">, Omit<ServerAccepted, "class" | "state">>,
  Same<Client.WorkflowPage, WorkflowPage>,
  Same<NonNullable<Client.ListQuery["state"]>, (typeof LIST_STATES)[number]>,
] = [true, true, true, true, true];

/** npm without the npm_* settings of an `npm test` around this run, which name the repo's own project. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));

async function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv()): Promise<string> {
  try {
    return (await promisify(execFile)(cmd, args, { cwd, env, maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

const PRODUCER = `
import { FairlaneApiError, FairlaneClient, FairlaneWaitError, type Workflow } from "@fairlane/client";

declare const process: { env: Record<string, string | undefined> };
const client = (key: string) => new FairlaneClient({ baseUrl: process.env.FAIRLANE_URL!, apiKey: process.env[key]! });
const reason = (err: unknown) => (err instanceof FairlaneWaitError ? err.reason : String(err));
const out: Record<string, unknown> = {};

const fl = client("KEY_CLINIC");
const one = await fl.enqueue({ type: "noop", payload: { durationMs: 50 } });
const bulk = await fl.enqueueMany([1, 2, 3].map((i) => ({ type: "noop", class: "C" as const, payload: { i } })), { chunkSize: 2 });
const seen = await fl.get(one.id);
const done: Workflow = await fl.wait(one.id, { timeoutMs: 30_000, pollMs: 50 });
const first = await fl.enqueue({ type: "noop", idempotencyKey: "order-17" });
const again = await fl.enqueue({ type: "noop", idempotencyKey: "order-17" });
Object.assign(out, { one: one.id, bulk: bulk.accepted.map((a) => a.id), bulkRejected: bulk.rejected.length, seen: seen.id, done: done.state,
  result: done.result, first: first.id, firstDuplicate: first.duplicate ?? false, again: again.id, againDuplicate: again.duplicate });

const held = client("KEY_HELD"); // paused, at most 2 queued
const queued = [await held.enqueue({ type: "noop" }), await held.enqueue({ type: "noop" })];
out.held = queued.map((q) => q.id);
await held.enqueue({ type: "noop" }).catch((err: unknown) => {
  if (err instanceof FairlaneApiError) out.refused = { status: err.status, code: err.code, retryAfterSec: err.retryAfterSec };
});
out.cancelled = (await held.cancel(queued[0]!.id)).state;
out.cancelledWait = (await held.wait(queued[0]!.id)).state;
out.timedOut = await held.wait(queued[1]!.id, { timeoutMs: 300 }).catch(reason);
const stop = new AbortController();
setTimeout(() => stop.abort(), 100);
out.aborted = await held.wait(queued[1]!.id, { signal: stop.signal }).catch(reason);

let waits = 0;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms, waits++));
const tiny = await client("KEY_TINY").enqueueMany(Array.from({ length: 6 }, (_, i) => ({ type: "noop", payload: { i, durationMs: 150 } })), { sleep });
Object.assign(out, { tiny: tiny.accepted.map((a) => a.index), tinyRejected: tiny.rejected.length, waits });

try {
  const page1 = await fl.list({ limit: 2 });
  const page2 = await fl.list({ limit: 2, cursor: page1.nextCursor ?? undefined });
  const all: Workflow[] = [];
  for await (const w of fl.listAll({ type: "noop", since: Date.now() - 600_000 })) all.push(w);
  out.list = { page1: page1.workflows.map((w) => w.id), page2: page2.workflows.map((w) => w.id), all: all.map((w) => [w.id, w.enqueuedAt]),
    classC: (await fl.list({ class: "C" })).workflows.map((w) => w.id), completed: (await fl.list({ state: "completed" })).workflows.map((w) => w.id),
    heldCancelled: (await held.list({ state: "cancelled" })).workflows.map((w) => w.id) };
} catch (err) {
  out.listError = String(err);
}
console.log(JSON.stringify(out));
`;

const CONSUMER_TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022", "DOM"],
    types: [],
    strict: true,
    skipLibCheck: false,
    outDir: "build",
  },
  files: ["producer.ts"],
};

describe("the client package, installed from its tarball", () => {
  let project: string;
  let tarball: string;
  let d: Deployment;
  let api: ApiRole;
  const keys: Record<string, string> = {};

  before(async () => {
    project = mkdtempSync(join(tmpdir(), "fl-client-"));
    // Admission's Retry-After, for the producer's waits (config is read in this process).
    process.env.FAIRLANE_RETRY_AFTER_SEC = "1";
    d = await deployment({
      clinic: { tier: "professional" },
      held: { tier: "free", paused: true, maxQueueDepth: 2 },
      tiny: { tier: "free", mca: 1, maxQueueDepth: 2 },
    });
    d.start("exec", { FAIRLANE_CONCURRENCY: "4" });
    d.start("dispatcher");
    api = await startApiRole(d.p, "x".repeat(32), createLogger("api", "silent"));
    for (const t of ["clinic", "held", "tiny"]) keys[t] = (await d.p.apiKeys.create(t)).key;
    await d.waitCapacity(4);
  });
  after(async () => {
    await api?.stop();
    await d?.close();
    rmSync(project, { recursive: true, force: true });
  });

  it("builds, packs only dist/, and installs with no dependencies into an empty project", { timeout: 120_000 }, async () => {
    await run("npm", ["--prefix", PACKAGE, "run", "build"], REPO);
    const [packed] = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", project], PACKAGE)) as {
      filename: string;
      files: { path: string }[];
    }[];
    const files = packed!.files.map((f) => f.path).sort();
    assert.ok(files.includes("dist/index.js") && files.includes("dist/index.d.ts"), files.join());
    assert.deepEqual(
      files.filter((f) => !f.startsWith("dist/")),
      ["LICENSE", "README.md", "package.json"],
    );
    tarball = join(project, packed!.filename);

    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "producer", private: true, type: "module" }));
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], project);
    const installed = JSON.parse(readFileSync(join(project, "node_modules/@fairlane/client/package.json"), "utf8"));
    assert.equal(installed.version, "1.0.0");
    assert.equal(installed.dependencies, undefined);
    const lock = JSON.parse(readFileSync(join(project, "package-lock.json"), "utf8"));
    assert.deepEqual(Object.keys(lock.packages).sort(), ["", "node_modules/@fairlane/client"]);

    // The declarations need nothing beyond the ES2022 lib: no DOM, no @types/node.
    writeFileSync(
      join(project, "bare.ts"),
      `import { FairlaneClient, type Workflow } from "@fairlane/client";\nexport const fl = new FairlaneClient({ baseUrl: "http://x", apiKey: "k" });\nexport type W = Workflow;\n`,
    );
    const bare = { compilerOptions: { ...CONSUMER_TSCONFIG.compilerOptions, lib: ["ES2022"], noEmit: true }, files: ["bare.ts"] };
    writeFileSync(join(project, "tsconfig.bare.json"), JSON.stringify(bare));
    await run(process.execPath, [TSC, "-p", "tsconfig.bare.json"], project);
  });

  it("type-checks a producer script against the installed declarations in a few seconds", { timeout: 60_000 }, async (t) => {
    assert.ok(tarball, "installed by the previous test");
    writeFileSync(join(project, "producer.ts"), PRODUCER);
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(CONSUMER_TSCONFIG));
    const started = performance.now();
    await run(process.execPath, [TSC, "--noEmit", "-p", "tsconfig.json"], project);
    const tookMs = Math.round(performance.now() - started);
    const limitMs = cpus().length <= 2 ? 10_000 : 5_000;
    t.diagnostic(`tsc --noEmit of producer.ts: ${tookMs} ms (limit ${limitMs} ms)`);
    assert.ok(tookMs < limitMs, `type-checking took ${tookMs} ms`);
    assert.deepEqual(typesMatch, [true, true, true, true, true]);
  });

  it("runs the producer against a real Fairlane: enqueue, bulk, get, wait, replay, cancel, 429, list", { timeout: 120_000 }, async () => {
    await run(process.execPath, [TSC, "-p", "tsconfig.json"], project);
    const env = {
      ...cleanEnv(),
      FAIRLANE_URL: `http://127.0.0.1:${api.port}`,
      KEY_CLINIC: keys.clinic,
      KEY_HELD: keys.held,
      KEY_TINY: keys.tiny,
    };
    const out = JSON.parse((await run(process.execPath, ["build/producer.js"], project, env)).trim().split("\n").pop()!);

    assert.match(out.one, /^wf_/);
    assert.equal(out.bulk.length, 3);
    assert.equal(out.bulkRejected, 0);
    assert.equal(out.seen, out.one);
    assert.equal(out.done, "completed");
    assert.deepEqual(out.result, { sleptMs: 50, aborted: null });
    // The same idempotency key and request again: the same workflow, marked a duplicate.
    assert.equal(out.again, out.first);
    assert.equal(out.firstDuplicate, false);
    assert.equal(out.againDuplicate, true);
    // The paused tenant's third workflow is refused with a 429 the client surfaces.
    assert.deepEqual(out.refused, { status: 429, code: "BACKPRESSURE", retryAfterSec: 1 });
    assert.equal(out.cancelled, "cancelled");
    assert.equal(out.cancelledWait, "cancelled");
    assert.equal(out.timedOut, "timeout");
    assert.equal(out.aborted, "aborted");
    // The tiny tenant (2 queued at most) gets all 6 in by waiting out backpressure.
    assert.deepEqual(out.tiny, [0, 1, 2, 3, 4, 5]);
    assert.equal(out.tinyRejected, 0);
    assert.ok(out.waits >= 1, `waited ${out.waits} times`);

    // GET /v1/workflows: newest first, pages of `limit` that follow one another.
    assert.equal(out.listError, undefined, out.listError);
    const clinic = [out.one, ...out.bulk, out.first];
    const all = out.list.all as [string, string][];
    assert.deepEqual(all.map(([id]) => id).sort(), [...clinic].sort());
    assert.equal(all[0]![0], out.first, "the last enqueued comes first");
    assert.equal(all.at(-1)![0], out.one, "the first enqueued comes last");
    const times = all.map(([, at]) => Date.parse(at));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
    );
    assert.deepEqual(
      [...out.list.page1, ...out.list.page2],
      all.slice(0, 4).map(([id]) => id),
    );
    assert.deepEqual([...out.list.classC].sort(), [...out.bulk].sort());
    assert.ok(out.list.completed.includes(out.one));
    assert.deepEqual(out.list.heldCancelled, [out.held[0]]);
  });
});
