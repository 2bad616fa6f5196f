import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Downstream } from "../../src/dev/downstream/simulator.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startApiRole, type ApiRole } from "../../workers/api.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";
import { http } from "../helpers/api.ts";

/**
 * Human review queues (issue 18), on real exec and dispatcher processes with the api role in this process.
 * Who asked for a review, and what each workflow resumed with, is read from the workflows' own log
 * (the observer's keys, written by the `reviewed` test workflow) and from the downstream's own record of
 * the calls it served, never from Fairlane's counters.
 */
describe("human review queues", () => {
  let d: Deployment;
  let ds: Downstream;
  let api: ApiRole;
  let base: string;
  const token = randomBytes(12).toString("hex");
  const admin = { authorization: `Bearer ${token}` };
  const reviewerKey: Record<string, string> = {};
  const producerKey: Record<string, string> = {};

  before(async () => {
    ds = new Downstream({ capacity: 100, latencyMs: { min: 0, max: 2 }, seed: 7 });
    const url = await ds.start();
    const pro = (spec: object) => ({ tier: "professional" as const, mca: 20, mctc: 20, ...spec });
    d = await deployment(
      {
        big: pro({}),
        small: pro({}),
        w1: pro({ weight: 1, review: { pool: "weighted" } }),
        w3: pro({ weight: 3, review: { pool: "weighted" } }),
        clinic: pro({ review: { pool: "clinic-reviewers" } }),
        sla: pro({ review: { pool: "triage", slaSeconds: 1, onTimeout: "escalate", escalateTo: "supervisors" } }),
        slafail: pro({ review: { pool: "triage", slaSeconds: 1, onTimeout: "fail" } }),
      },
      { FAIRLANE_DOWNSTREAM_URL: url },
    );
    api = await startApiRole(d.p, token, createLogger("api", "silent"));
    base = `http://127.0.0.1:${api.port}`;
    for (const pool of ["shared", "weighted", "clinic-reviewers", "triage", "supervisors"]) {
      const r = await http(base, "POST", `/v1/admin/reviewer-pools/${pool}/keys`, { headers: admin, body: { label: "test" } });
      assert.equal(r.status, 201);
      reviewerKey[pool] = r.body.key;
    }
    for (const t of ["big", "small", "clinic", "sla", "slafail"]) producerKey[t] = (await d.p.apiKeys.create(t)).key;
    d.start("exec", { FAIRLANE_CONCURRENCY: "20" });
    d.start("dispatcher");
    await d.waitCapacity(20);
  });
  after(async () => {
    await api?.stop();
    await d?.close();
    await ds?.stop();
  });

  const reviewed = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => ({ type: "reviewed", payload: { obs: d.obs, case: `${tag}-${i}` } }));
  /** The workflows' own log: who asked for a review (id -> tenant) and what each resumed with (id -> decision). */
  async function ownLog(): Promise<{ asked: Map<string, string>; decided: Map<string, string> }> {
    const asked = new Map<string, string>();
    const decided = new Map<string, string>();
    for (const line of await d.p.redis.lrange(`${d.obs}:log`, 0, -1)) {
      const [, kind, id, x] = line.split("|");
      if (kind === "asked") asked.set(id!, x!);
      if (kind === "decided") decided.set(id!, x!);
    }
    return { asked, decided };
  }
  async function waitWaiting(pool: string, n: number): Promise<void> {
    const until = Date.now() + 90_000;
    for (;;) {
      const r = await http(base, "GET", "/v1/admin/reviewer-pools", { headers: admin });
      const waiting = r.body.waiting
        .filter((w: { pool: string }) => w.pool === pool)
        .reduce((s: number, w: { waiting: number }) => s + w.waiting, 0);
      if (waiting >= n) return;
      if (Date.now() > until) throw new Error(`pool ${pool}: ${waiting} of ${n} items waiting`);
      await sleep(100);
    }
  }
  async function waitState(tenant: string, id: string, state: string): Promise<any> {
    for (let i = 0; i < 600; i++) {
      const r = await http(base, "GET", `/v1/workflows/${id}`, { key: producerKey[tenant] });
      if (r.body.state === state) return r.body;
      await sleep(50);
    }
    throw new Error(`${id} never reached ${state}`);
  }
  const claim = (pool: string, q = "") => http(base, "GET", `/v1/reviews/next${q}`, { key: reviewerKey[pool] });
  const decide = (pool: string, id: string, body: object) => http(base, "POST", `/v1/reviews/${id}`, { key: reviewerKey[pool], body });

  it("claims fairly across tenants (500 vs 5) and by weight (1:3), and scopes every key to its pool", { timeout: 150_000 }, async () => {
    await d.admit("big", reviewed(500, "big"));
    await d.admit("small", reviewed(5, "small"));
    await d.admit("w1", reviewed(40, "w1"));
    await d.admit("w3", reviewed(40, "w3"));
    await waitWaiting("shared", 505);
    await waitWaiting("weighted", 80);
    const { asked } = await ownLog();
    assert.equal(asked.size, 585, "every workflow ran up to its review once");

    const firstTen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await claim("shared");
      assert.equal(r.status, 200);
      firstTen.push(asked.get(r.body.id)!);
    }
    assert.equal(firstTen.filter((t) => t === "small").length, 5, `the small tenant's 5 items are among the first 10 claims: ${firstTen}`);

    const weighted: string[] = [];
    for (let i = 0; i < 20; i++) weighted.push(asked.get((await claim("weighted")).body.id)!);
    const w3 = weighted.filter((t) => t === "w3").length;
    assert.ok(w3 >= 14 && w3 <= 16, `weights 1:3 share the pool's claims 1:3: w3 got ${w3} of 20`);

    // A key of another pool sees nothing of this one: 404, as for an id that does not exist.
    const sharedItem = [...asked].find(([, t]) => t === "big")![0];
    assert.equal((await http(base, "GET", `/v1/reviews/${sharedItem}`, { key: reviewerKey["clinic-reviewers"] })).status, 404);
    assert.equal((await decide("clinic-reviewers", sharedItem, { decision: "approve" })).status, 404);
    const seen = await http(base, "GET", `/v1/reviews/${sharedItem}`, { key: reviewerKey.shared });
    assert.equal(seen.status, 200);
    assert.equal(seen.body.request.summary, "case big-0");
    // Keys never cross roles: a producer key is no reviewer key, and the other way round.
    assert.equal((await http(base, "GET", "/v1/reviews/next", { key: producerKey.big })).status, 401);
    assert.equal((await http(base, "GET", "/v1/workflows", { key: reviewerKey.shared })).status, 401);
    assert.equal((await claim("shared", "?leaseSec=0")).status, 400);
  });

  it("resumes a decided workflow with the decision; leases lapse; a claim is the holder's alone", { timeout: 60_000 }, async () => {
    // The shared pool now has only big's items left: the next claim is big's oldest waiting one.
    const held = await claim("shared");
    const other = await http(base, "POST", "/v1/admin/reviewer-pools/shared/keys", { headers: admin, body: {} });
    assert.equal(
      (await http(base, "POST", `/v1/reviews/${held.body.id}`, { key: other.body.key, body: { decision: "approve" } })).status,
      409,
    );
    assert.equal((await decide("shared", held.body.id, { decision: "maybe" })).status, 400);
    const ok = await decide("shared", held.body.id, { decision: "approve", note: "looks right" });
    assert.deepEqual([ok.status, ok.body.state], [200, "decided"]);
    const done = await waitState("big", held.body.id, "completed");
    assert.deepEqual(done.result, { decision: "approve", note: "looks right" });
    assert.equal((await decide("shared", held.body.id, { decision: "approve" })).status, 404, "a decided item is closed");

    const lapsing = await claim("shared", "?leaseSec=1");
    await sleep(1300);
    assert.equal((await decide("shared", lapsing.body.id, { decision: "reject" })).status, 409, "its lease lapsed");
    const again = await claim("shared");
    assert.equal(again.body.id, lapsing.body.id, "a lapsed item goes back in line ahead of newer ones");
    assert.equal((await decide("shared", again.body.id, { decision: "reject" })).status, 200);
    await waitState("big", again.body.id, "completed");
    const { decided } = await ownLog();
    assert.equal(decided.get(again.body.id), "reject");
    assert.equal(decided.size, 2, "no other workflow resumed");

    // Cancelling a workflow that awaits review closes its item.
    const waiting = (await ownLog()).asked;
    const victim = [...waiting].filter(([id, t]) => t === "big" && !decided.has(id)).at(-1)![0];
    assert.equal((await http(base, "DELETE", `/v1/workflows/${victim}`, { key: producerKey.big })).status, 200);
    assert.equal((await http(base, "GET", `/v1/reviews/${victim}`, { key: reviewerKey.shared })).status, 404);

    const metrics = await http(base, "GET", "/metrics", { headers: admin });
    assert.match(String(metrics.body), /fairlane_review_queue_depth\{pool="shared",tenant="[^"]+",class="B"\} \d+/);
  });

  it("resumes after the review without repeating the tool calls before it (the downstream's record)", { timeout: 60_000 }, async () => {
    ds.resetStats();
    const [id] = await d.admit("clinic", [{ type: "prior-auth", class: "B", payload: { steps: 2, fanout: 4, review: true } }]);
    const callsOf = () =>
      ds
        .stats()
        .deadlines.filter((x) => x.idempotencyKey?.startsWith(`${id}:`))
        .map((x) => x.idempotencyKey!.split(":")[1]);
    for (let i = 0; i < 600 && !(await d.p.redis.exists(d.p.keys.cell("default").review(id!))); i++) await sleep(50);
    const before = callsOf();
    assert.deepEqual([before.filter((s) => s === "reason-0").length, before.filter((s) => s === "reason-1").length], [4, 4]);
    assert.ok(!before.includes("submit"), "nothing submitted before the decision");
    await api.bullBoard.refresh();
    const board = await http(base, "GET", `/admin/queues/api/queues/review/${id}`, { headers: admin });
    assert.deepEqual([board.status, board.body.status], [200, "waiting"], "Bull Board shows it in the review queue");
    const item = await claim("clinic-reviewers");
    assert.equal(item.body.id, id);
    assert.match(item.body.request.summary, /8 records gathered in 2 steps/);
    assert.equal((await decide("clinic-reviewers", id!, { decision: "approve" })).status, 200);
    const done = await waitState("clinic", id!, "completed");
    assert.equal(done.result.stoppedBy, "finished");
    const calls = callsOf();
    assert.equal(calls.filter((s) => s === "reason-0").length, 4, "the finished steps were not called again");
    assert.equal(calls.filter((s) => s === "reason-1").length, 4);
    assert.equal(calls.filter((s) => s === "submit").length, 1, "it submitted once, after the approval");
  });

  it("escalates an item past the tenant's SLA to its escalation pool, or fails it with REVIEW_TIMEOUT", { timeout: 60_000 }, async () => {
    const [esc] = await d.admit("sla", reviewed(1, "sla"));
    const [fail] = await d.admit("slafail", reviewed(1, "slafail"));
    const failed = await waitState("slafail", fail!, "failed");
    assert.equal(failed.error.code, "REVIEW_TIMEOUT");
    let got: any;
    for (let i = 0; i < 100 && !got?.id; i++) {
      got = (await claim("supervisors")).body;
      if (!got?.id) await sleep(100);
    }
    assert.equal(got.id, esc, "the escalation pool's reviewer gets it");
    assert.equal(got.escalations, 1);
    assert.equal((await http(base, "GET", `/v1/reviews/${esc}`, { key: reviewerKey.triage })).status, 404, "it left the first pool");
    assert.equal((await decide("supervisors", esc!, { decision: "approve" })).status, 200);
    await waitState("sla", esc!, "completed");
    const trail = await http(base, "GET", `/v1/audit?workflow=${esc}`, { key: producerKey.sla });
    const events = trail.body.entries.map((e: { event: string; by: string }) =>
      e.event === "review-escalated" ? `${e.event} ${e.by}` : e.event,
    );
    assert.deepEqual(
      events.filter((e: string) => e.startsWith("review") || e === "ended"),
      ["review-requested", "review-escalated review-sla", "review-claimed", "reviewed", "ended"],
    );
  });
});
