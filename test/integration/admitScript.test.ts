import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createKeys, type CellKeys } from "../../queues/keys.ts";
import { ADMIT_CALL_ITEMS, admitWorkflows, type AdmitInput } from "../../queues/lua/admitWorkflow.ts";
import { ingressQueue } from "../../queues/names.ts";
import { connect } from "../../src/lib/redis.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The admission script takes up to ADMIT_CALL_ITEMS workflows of one cell a call (admitWorkflows-4.lua),
 * keeping the cell's queued count and each tenant's queued bytes in the call and writing them at its end.
 * Each workflow must still see the ones before it, in its call and in the calls before, and the counters
 * must end as one script per workflow left them. Observed in Redis: the ingress lists, the records, the
 * counters, the idempotency keys.
 */
describe("admission script: many workflows a call, each seeing the ones before it", () => {
  let redis: Redis;
  before(async () => {
    redis = connect(await testRedisUrl());
  });
  after(() => redis.quit());

  let n = 0;
  const NOW = Date.UTC(2026, 11, 6);
  function item(cell: CellKeys, tenant: string, over: Partial<AdmitInput> = {}): { cell: CellKeys; input: AdmitInput } {
    const id = `wf_adm${String(++n).padStart(16, "0")}`;
    const record = { tenant, class: "B", type: "noop", state: "queued", enqueuedAt: String(NOW) };
    return {
      cell,
      input: {
        id,
        tenant,
        cls: "B",
        type: "noop",
        data: '{"x":1}',
        now: NOW,
        idempotencyTtlSec: 0,
        maxQueueDepth: 1000,
        maxQueuedTotal: 1e6,
        record,
        payloadBytes: 10,
        ...over,
      },
    };
  }
  const waiting = (cell: CellKeys, tenant: string) => redis.lrange(cell.queueKey(ingressQueue(tenant, "B"), "wait"), 0, -1);

  it("holds a tenant to its queue depth across calls, and counts what it admitted once", async () => {
    const cell = createKeys(freshPrefix()).cell("default");
    const total = ADMIT_CALL_ITEMS * 2 + 10;
    const depth = ADMIT_CALL_ITEMS + 5; // reached inside the second call
    const items = Array.from({ length: total }, () => item(cell, "t1", { maxQueueDepth: depth }));
    await redis.set(cell.queued, depth); // another tenant's: the tenant's own depth is counted only from here on
    const out = await admitWorkflows(redis, items);
    assert.deepEqual(
      out.map((o) => o.kind),
      [...Array<string>(depth).fill("ok"), ...Array<string>(total - depth).fill("tenant_full")],
    );
    assert.deepEqual(out[depth], { kind: "tenant_full", depth });
    assert.equal((await waiting(cell, "t1")).length, depth);
    assert.equal(await redis.get(cell.queued), String(2 * depth));
    assert.equal(await redis.get(cell.queuedBytes("t1")), String(depth * 10));
    for (const [i, it] of items.entries()) assert.equal(await redis.exists(cell.workflow(it.input.id)), i < depth ? 1 : 0);
  });

  it("refuses at a tenant's queued bytes and the cell's valve as they grow inside one call", async () => {
    const cell = createKeys(freshPrefix()).cell("default");
    const items = [
      ...Array.from({ length: 4 }, () => item(cell, "t2", { maxQueueBytes: 35 })),
      ...Array.from({ length: 4 }, () => item(cell, "t3", { maxQueuedTotal: 6 })),
    ];
    const out = await admitWorkflows(redis, items);
    assert.deepEqual(
      out.map((o) => o.kind),
      ["ok", "ok", "ok", "tenant_bytes_full", "ok", "ok", "ok", "cell_full"],
    );
    assert.deepEqual(out[3], { kind: "tenant_bytes_full", bytes: 30 });
    assert.deepEqual(out[7], { kind: "cell_full", queued: 6 });
    assert.equal(await redis.get(cell.queuedBytes("t2")), "30");
    assert.equal(await redis.get(cell.queuedBytes("t3")), "30");
    assert.equal(await redis.get(cell.queued), "6");
  });

  it("answers a repeated idempotency key inside the same call with the first workflow", async () => {
    const cell = createKeys(freshPrefix()).cell("default");
    const idem = { idempotencyHash: "a".repeat(64), idempotencyTtlSec: 60, requestHash: "r1" };
    const [first, again, other] = [item(cell, "t4", idem), item(cell, "t4", idem), item(cell, "t4", { ...idem, requestHash: "r2" })];
    const out = await admitWorkflows(redis, [first!, again!, other!]);
    assert.deepEqual(out, [
      { kind: "ok", id: first!.input.id },
      { kind: "duplicate", id: first!.input.id },
      { kind: "conflict", id: first!.input.id },
    ]);
    assert.deepEqual(await waiting(cell, "t4"), [first!.input.id]);
    assert.equal(await redis.get(cell.idempotency("t4", idem.idempotencyHash)), `${first!.input.id} r1`);
    assert.ok((await redis.ttl(cell.idempotency("t4", idem.idempotencyHash))) > 0);
  });

  it("admits each workflow into its own cell when one bulk spans two, answering in order", async () => {
    const keys = createKeys(freshPrefix());
    const [a, b] = [keys.cell("east"), keys.cell("west")];
    const items = [item(a, "t5"), item(b, "t6"), item(b, "t6"), item(a, "t5")];
    const out = await admitWorkflows(redis, items, 3);
    assert.deepEqual(
      out,
      items.map((i) => ({ kind: "ok", id: i.input.id })),
    );
    assert.deepEqual(await waiting(a, "t5"), [items[3]!.input.id, items[0]!.input.id]);
    assert.deepEqual(await waiting(b, "t6"), [items[2]!.input.id, items[1]!.input.id]);
    assert.equal(await redis.get(a.queued), "2");
    assert.equal(await redis.get(b.queued), "2");
  });

  it("refuses a spend key outside the workflow's cell before sending anything", async () => {
    const cell = createKeys(freshPrefix()).cell("default");
    const other = createKeys(freshPrefix()).cell("default");
    const bad = item(cell, "t7", { budget: { keys: [`${other.own}:spend:t7:202612`, `${other.own}:spend:t7:202612`], micro: [1e9, -1] } });
    await assert.rejects(admitWorkflows(redis, [bad]), /spend key outside the cell/);
    assert.equal(await redis.exists(cell.workflow(bad.input.id)), 0);
  });
});
