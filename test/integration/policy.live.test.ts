import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { testRedisUrl } from "../helpers/redis.ts";

describe("live policy", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional", mca: 10 } });
  });
  after(() => api.stop());

  it("a policy change through the admin API is seen by a second process within 1 s", { timeout: 30_000 }, async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/helpers/policyWatcher.ts", await testRedisUrl(), api.platform.keys.root, "clinic"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const seen: { mca: number | null; at: number }[] = [];
      const lines = createInterface({ input: child.stdout! });
      const waitFor = (pred: (s: { mca: number | null }) => boolean) =>
        new Promise<{ mca: number | null; at: number }>((resolve) => {
          const hit = seen.find(pred);
          if (hit) return resolve(hit);
          lines.on("line", function onLine(l) {
            const s = JSON.parse(l);
            seen.push(s);
            if (pred(s)) {
              lines.off("line", onLine);
              resolve(s);
            }
          });
        });
      await waitFor((s) => s.mca === 10);
      const changedAt = Date.now();
      const r = await http(api.base, "PUT", "/v1/admin/tenants/clinic", {
        headers: { authorization: `Bearer ${api.adminToken}` },
        body: { tier: "professional", mca: 42 },
      });
      assert.equal(r.status, 200);
      const seenChange = await waitFor((s) => s.mca === 42);
      const lag = seenChange.at - changedAt;
      assert.ok(lag < 1000, `seen after ${lag} ms`);
    } finally {
      child.kill("SIGTERM");
    }
  });
});
