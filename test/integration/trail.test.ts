import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { trimHistory } from "../../queues/trail.ts";
import { trailRetentionMs } from "../../src/tenancy/policy.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * The audit trail's retention and paging on a real Redis (the transitions themselves, on real
 * processes: test/e2e/trail.test.ts): entries older than the tenant's auditRetentionDays are never
 * shown and the dispatcher's trim deletes them; pages follow their cursor exactly.
 */
const KEEP_S = 2;

describe("audit trail retention and paging", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional", auditRetentionDays: KEEP_S / 86_400 }, lab: { tier: "professional" } });
  });
  after(() => api.stop());

  const admit = async (tenant: string, n: number) => {
    const workflows = Array.from({ length: n }, () => ({ type: "noop", class: "C", payload: {} }));
    const r = await http(api.base, "POST", "/v1/workflows/bulk", { key: api.keys[tenant], body: { workflows } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return (r.body.accepted as { id: string }[]).map((a) => a.id);
  };

  it("pages a trail oldest first by its cursor, every entry once", async () => {
    const ids = await admit("lab", 7);
    const seen: string[] = [];
    let cursor = "";
    for (let i = 0; i < 10; i++) {
      const r = await http(api.base, "GET", `/v1/audit?limit=3${cursor ? `&cursor=${cursor}` : ""}`, { key: api.keys.lab });
      assert.equal(r.status, 200);
      seen.push(...r.body.entries.map((e: { workflow: string; event: string }) => `${e.event} ${e.workflow}`));
      if (!r.body.nextCursor) break;
      cursor = r.body.nextCursor;
    }
    assert.deepEqual(
      seen,
      ids.map((id) => `admitted ${id}`),
    );
    const bad = await http(api.base, "GET", "/v1/audit?limit=5000", { key: api.keys.lab });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details[0].field, "limit");
  });

  it("never shows an entry older than the tenant's retention, and the trim deletes it; other tenants keep theirs", async () => {
    const [id] = await admit("clinic", 1);
    const read = () => http(api.base, "GET", "/v1/audit", { key: api.keys.clinic }).then((r) => r.body.entries as { workflow: string }[]);
    assert.deepEqual(
      (await read()).map((e) => e.workflow),
      [id],
    );
    await sleep(KEEP_S * 1000 + 300);
    assert.deepEqual(await read(), [], "past its retention the entry is not shown");
    const { redis, keys, registry } = api.platform;
    const cell = keys.cell("default");
    assert.equal(await redis.xlen(cell.trail("clinic")), 1, "until the trim runs, it is still stored");
    const retention = (t: string) => {
      const p = registry.get(t)?.policy;
      return p ? { trailMs: trailRetentionMs(p), runListMs: 86_400_000 } : null;
    };
    await trimHistory(redis, cell, ["clinic", "lab", "ghost"], retention, Date.now());
    assert.equal(await redis.xlen(cell.trail("clinic")), 0, "trimmed at its retention");
    assert.equal(await redis.xlen(cell.trail("lab")), 7, "lab keeps its 7 days");
  });
});
