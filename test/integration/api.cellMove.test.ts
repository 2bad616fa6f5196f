import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ingressQueue } from "../../queues/names.ts";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

/**
 * A tenant moved to another cell (PUT its policy with a new `cell`) still
 * reads and cancels the work it left queued in its previous cell; nobody
 * else can. docs/cluster.md, "Moving a tenant between cells".
 */
describe("reads and cancels after a cell move", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ mover: { tier: "professional" }, bystander: { tier: "professional" } });
  });
  after(() => api.stop());

  const admin = () => ({ authorization: `Bearer ${api.adminToken}` });
  const moveTo = async (cell: string) => {
    const r = await http(api.base, "PUT", "/v1/admin/tenants/mover", { headers: admin(), body: { tier: "professional", cell } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  const enqueue = async () => {
    const r = await http(api.base, "POST", "/v1/workflows", {
      key: api.keys.mover,
      body: { type: "noop", payload: { n: "x".repeat(100) } },
    });
    assert.equal(r.status, 202);
    return r.body.id as string;
  };
  const get = (id: string, key = api.keys.mover) => http(api.base, "GET", `/v1/workflows/${id}`, { key });
  const del = (id: string, key = api.keys.mover) => http(api.base, "DELETE", `/v1/workflows/${id}`, { key });

  it("finds queued work left in the previous cell, says why it waits, and cancels it there", async () => {
    const old = api.platform.keys.cell("default");
    const [kept, dropped] = [await enqueue(), await enqueue()];
    await moveTo("east");

    const view = await get(kept);
    assert.equal(view.status, 200);
    assert.equal(view.body.state, "queued");
    assert.match(view.body.waitingReason, /moved from cell default to east/);

    const queuedBefore = Number(await api.platform.redis.get(old.queued));
    const bytesBefore = Number(await api.platform.redis.get(old.queuedBytes("mover")));
    const cancelled = await del(dropped);
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.state, "cancelled");
    assert.equal(await api.platform.redis.llen(old.queueKey(ingressQueue("mover", "B"), "wait")), 1, "taken out of the old cell's queue");
    assert.equal(Number(await api.platform.redis.get(old.queued)), queuedBefore - 1, "the old cell's counters follow");
    assert.ok(Number((await api.platform.redis.get(old.queuedBytes("mover"))) ?? 0) < bytesBefore);

    // New work goes to the new cell and reads from there.
    const fresh = await enqueue();
    assert.equal(await api.platform.redis.hget(api.platform.keys.cell("east").workflow(fresh), "tenant"), "mover");
    assert.equal((await get(fresh)).body.state, "queued");
  });

  it("never shows or cancels it for another tenant", async () => {
    const [id] = await api.platform.redis.lrange(api.platform.keys.cell("default").queueKey(ingressQueue("mover", "B"), "wait"), 0, 0);
    const unknown = await get("wf_AAAAAAAAAAAAAAAAAAAA", api.keys.bystander);
    const foreign = await get(id!, api.keys.bystander);
    assert.equal(foreign.status, 404);
    assert.deepEqual(foreign.body, unknown.body);
    assert.equal((await del(id!, api.keys.bystander)).status, 404);
    assert.equal((await get(id!)).body.state, "queued", "still there for its tenant");
  });

  it("finds work admitted before cells were remembered, in any cell a policy names", async () => {
    await api.platform.redis.del(api.platform.keys.registry.tenantCells("mover"));
    const [id] = await api.platform.redis.lrange(api.platform.keys.cell("default").queueKey(ingressQueue("mover", "B"), "wait"), 0, 0);
    assert.equal((await get(id!)).status, 200, "the bystander's policy still names cell default");
  });

  it("reads it as ordinary queued work once the tenant moves back", async () => {
    await moveTo("default");
    const [id] = await api.platform.redis.lrange(api.platform.keys.cell("default").queueKey(ingressQueue("mover", "B"), "wait"), 0, 0);
    const view = await get(id!);
    assert.equal(view.status, 200);
    assert.doesNotMatch(String(view.body.waitingReason ?? ""), /moved/);
  });
});
