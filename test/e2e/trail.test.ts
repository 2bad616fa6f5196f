import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "../../src/observability/logger.ts";
import type { TrailEntry as Entry } from "../../src/workflows/trail.ts";
import { startApiRole } from "../../workers/api.ts";
import { http } from "../helpers/api.ts";
import { deployment } from "../helpers/deployment.ts";

/** Reads an NDJSON export to its end, or stops after `max` lines (a client that went away). */
async function exportLines(url: string, headers: Record<string, string>, max = Infinity): Promise<Entry[]> {
  const res = await fetch(url, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/x-ndjson/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const out: Entry[] = [];
  let buf = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    buf += decoder.decode(value, { stream: true });
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      out.push(JSON.parse(buf.slice(0, nl)) as Entry);
      buf = buf.slice(nl + 1);
      if (out.length >= max) {
        await reader.cancel(); // the client goes away mid-stream
        return out;
      }
    }
  }
}

describe("the tenant's audit trail (issue 18)", () => {
  it("lists every transition of a preempted, parked and recovered workflow in order with its cause, to its tenant only, and exports it exactly once across a resume", {
    timeout: 120_000,
  }, async () => {
    const d = await deployment(
      { lab: { tier: "professional", mca: 5 }, er: { tier: "professional", mcaUrgent: 2 } },
      { FAIRLANE_RECOVERY_STABLE_MS: "300" },
    );
    const token = randomBytes(12).toString("hex");
    const api = await startApiRole(d.p, token, createLogger("api", "silent"));
    const base = `http://127.0.0.1:${api.port}`;
    const admin = { authorization: `Bearer ${token}` };
    try {
      d.start("exec", { FAIRLANE_CONCURRENCY: "2", FAIRLANE_WORKER_ID: "exec-a" });
      d.start("dispatcher");
      d.start("recovery");
      await d.waitCapacity(2);
      const labKey = (await d.p.apiKeys.create("lab")).key;
      const erKey = (await d.p.apiKeys.create("er")).key;
      const enqueue = async (key: string, body: unknown) => {
        const r = await http(base, "POST", "/v1/workflows", { key, body });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        return r.body.id as string;
      };
      // Two batch runs fill the pool (2 slots; the reserve keeps 1 for Class A, so the second waits).
      const c1 = await enqueue(labKey, { type: "observed-gw", class: "C", payload: { obs: d.obs, durationMs: 2_500 } });
      const started = () => d.observation().then((o) => o.events.filter((e) => e.kind === "start").map((e) => e.id));
      while (!(await started()).includes(c1)) await sleep(50);
      // Class A arrives to a full general pool: the newest Class C yields; with gw marked down meanwhile,
      // it is parked when it is dispatched again, and recovered once gw is back.
      const a1 = await enqueue(erKey, { type: "observed", class: "A", payload: { obs: d.obs, durationMs: 1_500 } });
      const a2 = await enqueue(erKey, { type: "observed", class: "A", payload: { obs: d.obs, durationMs: 1_500 } });
      const rec = d.p.keys.cell("default").workflow(c1);
      while (!(await d.p.redis.hget(rec, "lastYield"))) await sleep(50);
      assert.equal((await http(base, "PUT", "/v1/admin/dependencies/gw", { headers: admin, body: { state: "down" } })).status, 200);
      while ((await d.p.redis.hget(rec, "state")) !== "parked") await sleep(50);
      assert.equal((await http(base, "PUT", "/v1/admin/dependencies/gw", { headers: admin, body: { state: "healthy" } })).status, 200);
      const views = await d.waitEnded(
        new Map([
          [c1, "lab"],
          [a1, "er"],
          [a2, "er"],
        ]),
        60_000,
      );
      assert.ok(views.every((v) => v.state === "completed"));

      const page = await http(base, "GET", `/v1/audit?workflow=${c1}`, { key: labKey });
      assert.equal(page.status, 200);
      const trail = (page.body.entries as Entry[]).map((e) => [e.event, e.by, e.why]);
      assert.deepEqual(
        trail.map((t) => t[0]),
        ["admitted", "dispatched", "started", "preempt-requested", "handed-back", "parked", "recovered", "dispatched", "started", "ended"],
        JSON.stringify(trail),
      );
      assert.match(trail[0]![1]!, /^key:[0-9a-f]{12}$/, "admitted by the API key that sent it");
      assert.deepEqual(trail[1], ["dispatched", "dispatcher", "default"]);
      assert.deepEqual(trail[2], ["started", "exec-a", "attempt 1"]);
      assert.deepEqual(trail[3], ["preempt-requested", "dispatcher", "Class A waiting"]);
      assert.deepEqual(trail[4], ["handed-back", "exec-a", "preempted"]);
      assert.deepEqual(trail[5], ["parked", "dispatcher", "gw down"]);
      assert.deepEqual(trail[6], ["recovered", "recovery", "gw"]);
      assert.deepEqual(trail[8], ["started", "exec-a", "attempt 1"], "the preempted run's attempt was given back");
      assert.deepEqual(trail[9], ["ended", "exec-a", "completed"]);
      const times = (page.body.entries as Entry[]).map((e) => Date.parse(e.at));
      assert.deepEqual(
        times,
        [...times].sort((x, y) => x - y),
        "in order",
      );

      // Never across tenants: er's key reads none of lab's trail, lab's none of er's; the admin reads both.
      const erPage = await http(base, "GET", "/v1/audit?limit=1000", { key: erKey });
      assert.ok((erPage.body.entries as Entry[]).length >= 8);
      assert.ok(!(erPage.body.entries as Entry[]).some((e) => e.workflow === c1), "er's key reads none of lab's trail");
      assert.deepEqual((await http(base, "GET", `/v1/audit?workflow=${c1}`, { key: erKey })).body.entries, []);
      const adminPage = await http(base, "GET", `/v1/admin/tenants/lab/audit?workflow=${c1}`, { headers: admin });
      assert.deepEqual(adminPage.body.entries, page.body.entries);
      assert.equal((await http(base, "GET", "/v1/admin/tenants/ghost/audit", { headers: admin })).status, 404);
      assert.equal((await http(base, "GET", "/v1/audit?cursor=yesterday", { key: labKey })).status, 400);
      assert.equal((await http(base, "GET", "/v1/audit", {})).status, 401);

      // An admin action on the tenant is in its trail, by the operator.
      assert.equal(
        (await http(base, "PATCH", "/v1/admin/tenants/lab", { headers: { ...admin, "x-fairlane-operator": "ana" }, body: { mca: 6 } }))
          .status,
        200,
      );
      const all = await exportLines(`${base}/v1/audit/export`, { authorization: `Bearer ${labKey}` });
      const patch = all.find((e) => e.event === "admin:tenant.patch");
      assert.equal(patch?.by, "operator:ana");
      assert.equal(patch?.workflow, null);

      // The export streams every entry once; cut after 4 lines and resumed after the last id it wrote,
      // it writes the rest, none twice.
      assert.deepEqual(
        all.map((e) => e.id),
        [...new Set(all.map((e) => e.id))],
      );
      const head = await exportLines(`${base}/v1/audit/export`, { authorization: `Bearer ${labKey}` }, 4);
      const rest = await exportLines(`${base}/v1/audit/export?cursor=${head.at(-1)!.id}`, { authorization: `Bearer ${labKey}` });
      assert.deepEqual(
        [...head, ...rest].map((e) => e.id),
        all.map((e) => e.id),
      );
    } finally {
      await api.stop();
      await d.close();
    }
  });
});
