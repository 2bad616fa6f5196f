import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startApiRole } from "../../workers/api.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { allZero, deployment } from "../helpers/deployment.ts";
import { http } from "../helpers/api.ts";

describe("exec pools and data residency", () => {
  it("runs an eu-only tenant only on eu workers, under load, with the us pool idle; a tenant with no live pool stays queued and says why", {
    timeout: 120_000,
  }, async () => {
    const d = await deployment({
      gdpr: { tier: "professional", mca: 10, pools: ["eu"] },
      us: { tier: "professional", mca: 10, pools: ["us"] },
      apac: { tier: "free", pools: ["ap"] },
    });
    try {
      d.start("exec", { FAIRLANE_POOL: "eu", FAIRLANE_CONCURRENCY: "2" });
      d.start("exec", { FAIRLANE_POOL: "us", FAIRLANE_CONCURRENCY: "8" });
      d.start("dispatcher");
      await d.waitCapacity(2, "eu");
      await d.waitCapacity(8, "us");
      const ids = new Map<string, string>();
      for (const id of await d.admit(
        "gdpr",
        Array.from({ length: 30 }, () => ({ type: "observed", payload: { obs: d.obs, durationMs: 60 } })),
      ))
        ids.set(id, "gdpr");
      for (const id of await d.admit(
        "us",
        Array.from({ length: 5 }, () => ({ type: "observed", payload: { obs: d.obs, durationMs: 60 } })),
      ))
        ids.set(id, "us");
      const [stranded] = await d.admit("apac", [{ type: "observed", payload: { obs: d.obs } }]);
      await d.waitEnded(ids, 60_000);
      const o = await d.observation();
      const gdprPools = new Set(o.events.filter((e) => e.tenant === "gdpr").map((e) => e.pool));
      assert.deepEqual([...gdprPools], ["eu"]);
      assert.ok((o.maxByPool.eu ?? 0) <= 2);
      assert.equal(
        o.events.filter((e) => e.tenant === "us").every((e) => e.pool === "us"),
        true,
      );

      const api = await startApiRole(d.p, "x".repeat(32), createLogger("api", "silent"));
      try {
        const { key } = await d.p.apiKeys.create("apac");
        const r = await http(`http://127.0.0.1:${api.port}`, "GET", `/v1/workflows/${stranded}`, { key });
        assert.equal(r.body.state, "queued");
        assert.match(r.body.waitingReason, /no live exec worker in the pools this tenant may run in \(ap\)/);
      } finally {
        await api.stop();
      }
      await sleep(200);
      const c = await d.counters();
      assert.equal(c.slots, 0);
      assert.equal(c.queued, 1, "only the stranded workflow, visibly queued");
      assert.ok(allZero({ ...c, queued: 0 }));
    } finally {
      await d.close();
    }
  });
});
