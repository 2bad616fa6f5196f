import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { alive } from "../../src/dev/embeddedRedis.ts";
import { http } from "../helpers/api.ts";

describe("npm start", () => {
  it("starts the platform on an embedded Redis, serves producers and admins, and stops cleanly on SIGTERM", {
    timeout: 120_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "fl-start-"));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FAIRLANE_DATA_DIR: dataDir,
      PORT: "0",
      FAIRLANE_REDIS_PORT: "0",
      FAIRLANE_DOWNSTREAM_PORT: "0",
    };
    delete env.REDIS_URL;
    delete env.FAIRLANE_ADMIN_TOKEN;
    const child = spawn("bash", ["src/dev/bin/start.sh"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      let base: string | undefined;
      for (let i = 0; i < 600 && !base; i++) {
        base = /Fairlane is running at (http:\/\/[\d.:]+)/.exec(out)?.[1];
        if (!base) await sleep(100);
      }
      assert.ok(base, `no start banner:\n${out}`);
      assert.equal((await http(base, "GET", "/readyz")).status, 200);
      assert.match(out, /DEVELOPMENT ONLY/);

      const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
      const admin = { authorization: `Bearer ${token}` };
      const put = await http(base, "PUT", "/v1/admin/tenants/new-clinic", { headers: admin, body: { tier: "professional" } });
      assert.equal(put.status, 201);
      const key = await http(base, "POST", "/v1/admin/tenants/new-clinic/keys", { headers: admin, body: {} });
      assert.equal(key.status, 201);
      const wf = await http(base, "POST", "/v1/workflows", { key: key.body.key, body: { type: "prior-auth", class: "B" } });
      assert.equal(wf.status, 202);
      // The example workflow runs out of the box, against the simulated downstream npm start runs.
      let state = "";
      for (let i = 0; i < 200 && state !== "completed"; i++) {
        state = (await http(base, "GET", `/v1/workflows/${wf.body.id}`, { key: key.body.key })).body.state;
        if (state !== "completed") await sleep(100);
      }
      assert.equal(state, "completed");

      // The example tenants' development keys work at once.
      const devKeys = readFileSync(join(dataDir, "dev-api-keys.env"), "utf8");
      const meridian = /FAIRLANE_KEY_MERIDIAN_HEALTH=(\S+)/.exec(devKeys)?.[1];
      assert.equal((await http(base, "POST", "/v1/workflows", { key: meridian, body: { type: "prior-auth", class: "C" } })).status, 202);

      // Bull Board lists the new queues (it refreshes every 2 s).
      let names: string[] = [];
      const listed = () => names.includes("ingress.new-clinic.B") && names.includes("ingress.meridian-health.C");
      for (let i = 0; i < 50 && !listed(); i++) {
        const q = await http(base, "GET", "/admin/queues/api/queues", { headers: admin });
        names = q.body.queues.map((x: { name: string }) => x.name);
        if (!listed()) await sleep(200);
      }
      assert.ok(names.includes("ingress.new-clinic.B") && names.includes("ingress.meridian-health.C"), names.join());

      const redisPid = Number(readFileSync(join(dataDir, "redis", "redis.pid"), "utf8"));
      assert.ok(alive(redisPid));
      child.kill("SIGTERM");
      assert.equal(await exited, 0, out);
      for (let i = 0; i < 50 && alive(redisPid); i++) await sleep(100);
      assert.ok(!alive(redisPid), "embedded redis stopped");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
