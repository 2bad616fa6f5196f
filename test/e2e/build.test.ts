import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { alive } from "../../src/dev/embeddedRedis.ts";
import { ROLE_NODE_FLAGS } from "../../src/lib/roles.ts";
import { http } from "../helpers/api.ts";

/**
 * The compiled build (npm run build) is what production and the image run: plain node, no
 * TypeScript loader anywhere (NODE_OPTIONS cleared), so a module that still needs tsx fails here.
 */
const plainNode = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
};

describe("npm run build", () => {
  before(() => {
    execFileSync("bash", ["src/dev/bin/build.sh"], { stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
  });

  it("node dist/workers/all.js serves the same API as npm start: health, readiness, a workflow to completion, JSON 404", {
    timeout: 90_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "fl-build-"));
    const env: NodeJS.ProcessEnv = {
      ...plainNode(),
      FAIRLANE_DATA_DIR: dataDir,
      PORT: "0",
      FAIRLANE_REDIS_PORT: "0",
      FAIRLANE_DOWNSTREAM_PORT: "0",
      LOG_LEVEL: "warn",
    };
    delete env.REDIS_URL;
    delete env.REDIS_CLUSTER_NODES;
    delete env.FAIRLANE_ADMIN_TOKEN;
    // Its own process group, so the finally below can end whatever it left.
    const child = spawn(process.execPath, [...ROLE_NODE_FLAGS, "dist/workers/all.js"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const redisPidFile = join(dataDir, "redis", "redis.pid");
    try {
      let base: string | undefined;
      for (let i = 0; i < 600 && !base && child.exitCode === null; i++) {
        base = /Fairlane is running at (http:\/\/[\d.:]+)/.exec(out)?.[1];
        if (!base) await sleep(100);
      }
      assert.ok(base, `no start banner:\n${out}`);
      assert.deepEqual((await http(base, "GET", "/healthz")).body, { ok: true });
      let ready = await http(base, "GET", "/readyz");
      for (let i = 0; i < 50 && ready.status !== 200; i++) {
        await sleep(100);
        ready = await http(base, "GET", "/readyz");
      }
      assert.equal(ready.status, 200, JSON.stringify(ready.body));

      // A producer with the development key npm start writes for the example tenants.
      const key = /FAIRLANE_KEY_MERIDIAN_HEALTH=(\S+)/.exec(readFileSync(join(dataDir, "dev-api-keys.env"), "utf8"))?.[1];
      assert.ok(key);
      const wf = await http(base, "POST", "/v1/workflows", { key, body: { type: "prior-auth", class: "B" } });
      assert.equal(wf.status, 202, JSON.stringify(wf.body));
      let state = "";
      for (let i = 0; i < 300 && state !== "completed"; i++) {
        state = (await http(base, "GET", `/v1/workflows/${wf.body.id}`, { key })).body.state;
        if (state !== "completed") await sleep(100);
      }
      assert.equal(state, "completed");
      assert.equal((await http(base, "GET", `/v1/workflows/${wf.body.id}`)).status, 401, "no key, no workflow");

      const missing = await http(base, "GET", "/no-such-route");
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, "NOT_FOUND");

      // What the build copies beside the code: the dashboard's static page (the Lua scripts ran above).
      const admin = { authorization: `Bearer ${readFileSync(join(dataDir, "admin-token"), "utf8").trim()}` };
      const page = await http(base, "GET", "/dashboard/", { headers: admin });
      assert.equal(page.status, 200);
      assert.match(String(page.body), /<html/i);

      // The `fairlane` bin, compiled, against the compiled api.
      const cli = spawnSync(process.execPath, ["dist/src/cli/index.js", "tenants", "--json"], {
        env: { ...plainNode(), FAIRLANE_URL: base, FAIRLANE_ADMIN_TOKEN: admin.authorization.slice("Bearer ".length) },
        encoding: "utf8",
        timeout: 30_000,
      });
      assert.equal(cli.status, 0, cli.stderr);
      assert.match(cli.stdout, /meridian-health/);

      const redisPid = Number(readFileSync(redisPidFile, "utf8"));
      assert.ok(alive(redisPid));
      process.kill(-child.pid!, "SIGTERM");
      assert.equal(await exited, 0, out);
      for (let i = 0; i < 50 && alive(redisPid); i++) await sleep(100);
      assert.ok(!alive(redisPid), "embedded redis stopped");
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
      // The embedded Redis runs in a process group of its own: never leave it behind.
      const redisPid = existsSync(redisPidFile) ? Number(readFileSync(redisPidFile, "utf8")) : 0;
      if (redisPid && alive(redisPid)) process.kill(redisPid, "SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("the compiled roles and CLI start under plain node: --help exits 0 naming the role", () => {
    for (const role of ["all", "api", "dispatcher", "exec", "health", "recovery"]) {
      const r = spawnSync(process.execPath, [`dist/workers/${role}.js`, "--help"], { env: plainNode(), encoding: "utf8", timeout: 30_000 });
      assert.equal(r.status, 0, `${role}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^fairlane ${role}:`), role);
    }
    const cli = spawnSync(process.execPath, ["dist/src/cli/index.js", "--help"], { env: plainNode(), encoding: "utf8", timeout: 30_000 });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /^Usage: fairlane/);
  });

  it("the compiled CPU pool runs a task on a worker thread without a TypeScript loader", () => {
    const script = [
      'const { CpuPool } = await import("./dist/src/runtime/cpuPool.js");',
      "const pool = new CpuPool({ maxThreads: 1 });",
      'const r = await pool.run("parse-and-summarise", { json: JSON.stringify({ notes: [{ text: "pain pain" }] }) });',
      "process.stdout.write(JSON.stringify(r));",
      "process.exit(0);",
    ].join("\n");
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: plainNode(), encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).topTerms, [{ term: "pain", count: 2 }]);
  });
});
