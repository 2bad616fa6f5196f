import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { admitWorkflows } from "../../queues/lua/admitWorkflow.ts";
import { eraseEnded } from "../../queues/lua/erase.ts";
import { trimHistory } from "../../queues/trail.ts";
import { listWorkflows } from "../../src/workflows/list.ts";
import { listMember } from "../../src/workflows/listIndex.ts";
import { runListIds } from "../helpers/runList.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/** Every page of a list, following nextCursor; the pages' sizes too. */
async function allPages(api: TestApi, path: string, auth: { key?: string; headers?: Record<string, string> }) {
  const ids: string[] = [];
  const times: number[] = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const r = await http(api.base, "GET", cursor ? `${path}${sep}cursor=${cursor}` : path, auth);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    sizes.push(r.body.workflows.length);
    for (const w of r.body.workflows) {
      ids.push(w.id);
      times.push(Date.parse(w.enqueuedAt));
    }
    cursor = r.body.nextCursor;
    if (!cursor) return { ids, times, sizes };
  }
  throw new Error("more than 50 pages");
}

describe("run lists", () => {
  let api: TestApi;
  const mine: { id: string; cls: string; type: string }[] = [];
  let theirs: string[] = [];
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional", paused: true }, other: { tier: "enterprise", paused: true } });
    const kinds = [
      ["A", "prior-auth"],
      ["B", "eligibility"],
      ["C", "prior-auth"],
      ["C", "eligibility"],
      ["B", "prior-auth"],
      ["A", "eligibility"],
      ["C", "prior-auth"],
    ];
    for (const [cls, type] of kinds) {
      const r = await http(api.base, "POST", "/v1/workflows", {
        key: api.keys.clinic,
        body: { type, class: cls, payload: { n: mine.length } },
      });
      assert.equal(r.status, 202);
      mine.push({ id: r.body.id, cls: cls!, type: type! });
    }
    const bulk = await http(api.base, "POST", "/v1/workflows/bulk", {
      key: api.keys.other,
      body: {
        workflows: [
          { type: "prior-auth", class: "B", payload: {} },
          { type: "prior-auth", class: "B", payload: {} },
        ],
      },
    });
    theirs = bulk.body.accepted.map((a: { id: string }) => a.id);
  });
  after(() => api.stop());

  it("pages through a tenant's own workflows, newest first, each once", async () => {
    const { ids, times, sizes } = await allPages(api, "/v1/workflows?limit=3", { key: api.keys.clinic });
    assert.deepEqual([...ids].sort(), mine.map((w) => w.id).sort());
    assert.ok(sizes.every((n) => n <= 3) && sizes[0] === 3, `page sizes ${sizes}`);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! <= times[i - 1]!, "newest first");
    assert.equal(ids[ids.length - 1], mine[0]!.id, "the first enqueued comes last");
    // The other tenant's key sees only its own.
    const other = await allPages(api, "/v1/workflows", { key: api.keys.other });
    assert.deepEqual(other.ids.sort(), [...theirs].sort());
  });

  it("filters by class, type, state and time", async () => {
    const a = await allPages(api, "/v1/workflows?class=A", { key: api.keys.clinic });
    assert.deepEqual(
      a.ids.sort(),
      mine
        .filter((w) => w.cls === "A")
        .map((w) => w.id)
        .sort(),
    );
    const elig = await allPages(api, "/v1/workflows?type=eligibility&limit=1", { key: api.keys.clinic });
    assert.deepEqual(
      elig.ids.sort(),
      mine
        .filter((w) => w.type === "eligibility")
        .map((w) => w.id)
        .sort(),
    );

    const cancelled = mine[3]!.id;
    assert.equal((await http(api.base, "DELETE", `/v1/workflows/${cancelled}`, { key: api.keys.clinic })).status, 200);
    const c = await allPages(api, "/v1/workflows?state=cancelled", { key: api.keys.clinic });
    assert.deepEqual(c.ids, [cancelled]);
    const q = await allPages(api, "/v1/workflows?state=queued", { key: api.keys.clinic });
    assert.equal(q.ids.length, mine.length - 1);
    assert.equal((await allPages(api, "/v1/workflows?state=completed", { key: api.keys.clinic })).ids.length, 0);

    const future = new Date(Date.now() + 60_000).toISOString();
    assert.deepEqual((await allPages(api, `/v1/workflows?since=${encodeURIComponent(future)}`, { key: api.keys.clinic })).ids, []);
    const since = await allPages(api, "/v1/workflows?since=0", { key: api.keys.clinic });
    assert.equal(since.ids.length, mine.length);
  });

  it("lets the admin list any tenant's workflows, and only with a tenant named", async () => {
    const auth = { headers: { authorization: `Bearer ${api.adminToken}` } };
    const r = await allPages(api, "/v1/admin/workflows?tenant=other", auth);
    assert.deepEqual(r.ids.sort(), [...theirs].sort());
    const missing = await http(api.base, "GET", "/v1/admin/workflows", auth);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.details[0].field, "tenant");
    const unknown = await http(api.base, "GET", "/v1/admin/workflows?tenant=nobody", auth);
    assert.equal(unknown.status, 403);
    // A tenant key is not an admin token.
    assert.equal((await http(api.base, "GET", "/v1/admin/workflows?tenant=other", { key: api.keys.clinic })).status, 401);
  });

  it("refuses a bad query with the field and why, changing nothing", async () => {
    const cases: [string, string][] = [
      ["limit=0", "limit"],
      ["limit=201", "limit"],
      ["limit=ten", "limit"],
      ["state=stuck", "state"],
      ["class=D", "class"],
      ["since=yesterday", "since"],
      ["cursor=bm90LWEtY3Vyc29y", "cursor"],
      ["color=red", ""],
      ["state=queued&state=failed", "state"],
    ];
    for (const [query, field] of cases) {
      const r = await http(api.base, "GET", `/v1/workflows?${query}`, { key: api.keys.clinic });
      assert.equal(r.status, 400, query);
      assert.equal(r.body.error.code, "INVALID_REQUEST", query);
      if (field)
        assert.ok(
          r.body.error.details.some((d: { field: string }) => d.field === field),
          `${query}: ${JSON.stringify(r.body.error)}`,
        );
    }
  });

  it("drops a workflow whose record expired from the list and the index", async () => {
    const cell = api.platform.keys.cell("default");
    const gone = mine[1]!.id;
    await api.platform.redis.del(cell.workflow(gone));
    const r = await allPages(api, "/v1/workflows", { key: api.keys.clinic });
    assert.ok(!r.ids.includes(gone));
    const listed = await runListIds(api.platform.redis, cell, "clinic");
    assert.ok(!listed.includes(gone), "its run-list entry was removed");
    assert.equal(listed.length, mine.length - 1);
  });

  it("pages 10,000 workflows with stable cursors while more arrive, never another tenant's", { timeout: 120_000 }, async () => {
    const big = await startTestApi({
      bulk: { tier: "enterprise", maxQueueDepth: 20_000, paused: true },
      neighbour: { tier: "free", paused: true },
    });
    try {
      const ids = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const r = await big.platform.admission.admitBulk(
          "bulk",
          Array.from({ length: 1000 }, (_, k) => ({ type: "noop", class: "C", payload: { n: i * 1000 + k } })),
        );
        for (const a of r.accepted) ids.add(a.id);
      }
      const theirs = (await big.platform.admission.admitBulk("neighbour", [{ type: "noop" }, { type: "noop" }])).accepted.map((a) => a.id);
      assert.equal(ids.size, 10_000);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      let arrived = 0;
      let previous = Infinity;
      do {
        const r = await http(big.base, "GET", `/v1/workflows?limit=200${cursor ? `&cursor=${cursor}` : ""}`, { key: big.keys.bulk });
        assert.equal(r.status, 200);
        for (const w of r.body.workflows) {
          const at = Date.parse(w.enqueuedAt);
          assert.ok(at <= previous, "newest first across pages");
          previous = at;
          seen.push(w.id);
        }
        cursor = r.body.nextCursor;
        // New work arriving mid-listing is newer than the cursor: it never shifts or repeats a page.
        if (pages++ % 10 === 5) arrived += (await big.platform.admission.admitBulk("bulk", [{ type: "noop", class: "C" }])).accepted.length;
      } while (cursor && pages < 100);
      assert.equal(seen.length, 10_000, `${pages} pages`);
      assert.equal(new Set(seen).size, 10_000, "each workflow once");
      assert.ok(
        seen.every((id) => ids.has(id)),
        "only this tenant's, only those there when the listing began",
      );
      assert.ok(!theirs.some((id) => seen.includes(id)));
      assert.ok(arrived > 0 && pages <= 51, `${pages} pages, ${arrived} arrived meanwhile`);
    } finally {
      await big.stop();
    }
  });

  it("trims run-list entries older than the tenant's run-list retention with its trail, not at each admission", async () => {
    const cell = api.platform.keys.cell("default");
    const redis = api.platform.redis;
    const now = Date.now();
    // Two earlier admissions' entries, one past the retention; and two in the index as written before 2026-12-05.
    await redis.xadd(cell.runList("trimmed"), `${now - 10_000}-0`, "w", "wf_AAAAAAAAAAAAAAAAAAAA");
    await redis.xadd(cell.runList("trimmed"), `${now - 500}-0`, "w", "wf_BBBBBBBBBBBBBBBBBBBB");
    const legacy = cell.workflowsByTenant("trimmed");
    const old = listMember(now - 10_000, "wf_CCCCCCCCCCCCCCCCCCCC");
    const fresh = listMember(now - 500, "wf_DDDDDDDDDDDDDDDDDDDD");
    await redis.zadd(legacy, 0, old, 0, fresh);
    assert.ok((await admitWorkflows(redis, [admission(cell, "trimmed", "wf_trim0000000000000000", now)])).every((o) => o.kind === "ok"));
    assert.deepEqual(
      await runListIds(redis, cell, "trimmed"),
      ["wf_AAAAAAAAAAAAAAAAAAAA", "wf_BBBBBBBBBBBBBBBBBBBB", "wf_trim0000000000000000"],
      "an admission adds its entry and trims nothing",
    );
    // The dispatcher's once-a-minute chore (src/dispatch/dispatcher.ts trimHistory).
    await trimHistory(redis, cell, ["trimmed"], () => ({ trailMs: 86_400_000, runListMs: 5_000 }), now);
    assert.deepEqual(await runListIds(redis, cell, "trimmed"), ["wf_BBBBBBBBBBBBBBBBBBBB", "wf_trim0000000000000000"], "older: trimmed");
    assert.deepEqual(await redis.zrange(legacy, 0, -1), [fresh], "and from the index as written before, the same");
  });

  it("lists the index written before 2026-12-05 and the run list as one, newest first, each once, and takes an old cursor", async () => {
    const cell = api.platform.keys.cell("default");
    const redis = api.platform.redis;
    const t = Date.now();
    const id = (n: number) => `wf_upgrade${String(n).padStart(13, "0")}`;
    // Admitted before the upgrade (moved into the zset as that version wrote them), then after it, some in the same ms.
    const before = [t - 2_000, t - 1_000, t - 500, t - 500];
    const after = [t, t, t + 1, t + 2];
    const admitted = [...before, ...after].map((at, n) => admission(cell, "upgraded", id(n), at));
    assert.ok((await admitWorkflows(redis, admitted)).every((o) => o.kind === "ok"));
    const entries = await redis.xrange(cell.runList("upgraded"), "-", "+");
    await redis.xdel(cell.runList("upgraded"), ...entries.slice(0, 4).map(([e]) => e));
    await redis.zadd(cell.workflowsByTenant("upgraded"), ...before.flatMap((at, n) => [0, listMember(at, id(n))]));
    // An api process whose clock is behind the others' (or Redis's): listed when Redis added it, newest.
    assert.ok((await admitWorkflows(redis, [admission(cell, "upgraded", id(8), t - 100)])).every((o) => o.kind === "ok"));

    for (const limit of [1, 2, 3, 50]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 20; page++) {
        const r = await listWorkflows(redis, [cell], "upgraded", { limit, cursor });
        seen.push(...r.workflows.map((w) => w.id));
        const next = r.nextCursor;
        if (!next) break;
        cursor = next;
      }
      // Newest first: the run list's by when Redis added them (the one admitted with a clock behind too),
      // then the older index's by enqueue time and id; each once, whatever the page size.
      assert.deepEqual(seen, [8, 7, 6, 5, 4, 3, 2, 1, 0].map(id), `limit ${limit}`);
    }
    // A page's cursor from before the upgrade was the member it stopped at: the list goes on below it.
    const old = Buffer.from(listMember(t - 1_000, id(1))).toString("base64url");
    const rest = await listWorkflows(redis, [cell], "upgraded", { limit: 50, cursor: old });
    assert.deepEqual(
      rest.workflows.map((w) => w.id),
      [id(0)],
    );
  });

  it("erases from the run list what ended before a time, counting as kept only what was enqueued before it", async () => {
    const cell = api.platform.keys.cell("default");
    const redis = api.platform.redis;
    const t = Date.now();
    const [ended, queued] = ["wf_erasing000000000000e", "wf_erasing000000000000q"];
    assert.ok((await admitWorkflows(redis, [admission(cell, "erasing", ended, t)])).every((o) => o.kind === "ok"));
    await redis.hset(cell.workflow(ended), { state: "completed", finishedAt: t + 1 });
    assert.ok((await admitWorkflows(redis, [admission(cell, "erasing", queued, t + 10)])).every((o) => o.kind === "ok"));
    // Its run-list entry is Redis's time, past `before` or not: only its record's enqueuedAt counts.
    const first = await eraseEnded(redis, cell, "erasing", t + 5);
    assert.deepEqual([first.erased, first.kept.queued], [1, 0]);
    assert.equal(await redis.exists(cell.workflow(ended)), 0);
    assert.deepEqual(await runListIds(redis, cell, "erasing"), [queued]);
    const later = await eraseEnded(redis, cell, "erasing", t + 20);
    assert.deepEqual([later.erased, later.kept.queued], [0, 1], "enqueued before this time: counted, never erased");
  });
});

/** An admission of `id` for `tenant` at `now`, as admitWorkflows takes it (a paused tenant's: nothing dispatches it). */
function admission(cell: ReturnType<TestApi["platform"]["keys"]["cell"]>, tenant: string, id: string, now: number) {
  return {
    cell,
    input: {
      id,
      tenant,
      cls: "C" as const,
      type: "prior-auth",
      data: "{}",
      now,
      idempotencyTtlSec: 0,
      maxQueueDepth: 1000,
      maxQueuedTotal: 1_000_000,
      record: { tenant, class: "C", type: "prior-auth", state: "queued", enqueuedAt: String(now) },
    },
  };
}
