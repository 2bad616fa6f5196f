import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "../../src/observability/logger.ts";
import { startApiRole } from "../../workers/api.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";
import { http } from "../helpers/api.ts";

/** Every key under the deployment's prefix (SCAN, as an auditor would look). */
async function allKeys(d: Deployment): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await d.p.redis.scan(cursor, "MATCH", `${d.env.FAIRLANE_PREFIX}:*`, "COUNT", 1000);
    out.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return out;
}

/** The keys that name a workflow id or an idempotency key's hash: what is left of that workflow. */
const leftOf = (keys: string[], ids: string[], idem: string[]) =>
  keys.filter((k) => ids.some((id) => k.includes(id)) || idem.some((h) => k.endsWith(`:${h}`)));
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

const RETAIN_S = 2;

describe("erasure of ended workflows (issue 18: retention and the right to erasure)", () => {
  it("erases every key of a tenant's ended workflows at its retention, and on demand, touching no other tenant and no queued work", {
    timeout: 90_000,
  }, async () => {
    const d = await deployment({
      gdpr: { tier: "professional", erasureAfterDays: RETAIN_S / 86_400 },
      bank: { tier: "professional" },
    });
    const token = randomBytes(12).toString("hex");
    const api = await startApiRole(d.p, token, createLogger("api", "silent"));
    const base = `http://127.0.0.1:${api.port}`;
    const admin = { authorization: `Bearer ${token}` };
    try {
      d.start("exec", { FAIRLANE_CONCURRENCY: "8" });
      d.start("dispatcher");
      await d.waitCapacity(8);
      const work = (n: number, tag: string) =>
        Array.from({ length: n }, (_, i) => ({ type: "observed", idempotencyKey: `${tag}-${i}`, payload: { obs: d.obs, step: true } }));
      const gdprIds = await d.admit("gdpr", work(4, "g"));
      const bankIds = await d.admit("bank", work(4, "b"));
      const ended = await d.waitEnded(
        new Map([...gdprIds.map((id) => [id, "gdpr"] as const), ...bankIds.map((id) => [id, "bank"] as const)]),
        30_000,
      );
      assert.ok(ended.every((v) => v.state === "completed"));
      const cell = d.p.keys.cell("default");
      const gdprIdem = [0, 1, 2, 3].map((i) => sha(`g-${i}`));
      const bankIdem = [0, 1, 2, 3].map((i) => sha(`b-${i}`));
      const bankKeys = leftOf(await allKeys(d), bankIds, bankIdem);
      // What an ended workflow leaves: its record, its step results and its idempotency key.
      for (const id of bankIds) for (const k of [cell.workflow(id), cell.steps(id)]) assert.ok(bankKeys.includes(k), k);
      assert.equal(bankKeys.filter((k) => k.includes(":idem:")).length, 4);
      for (const k of bankKeys) assert.ok((await d.p.redis.ttl(k)) > 6 * 86_400, `${k}: the deployment's 7 days`);

      // The GDPR tenant, paused (seen by the dispatcher's cell before admitting), gets work that stays queued.
      await d.p.registry.put("gdpr", { tier: "professional", erasureAfterDays: RETAIN_S / 86_400, paused: true });
      while ((await d.p.redis.hget(cell.tenantCaps("gdpr"), "paused")) !== "1") await sleep(50);
      const queuedIds = await d.admit("gdpr", work(2, "q"));
      const queuedIdem = [0, 1].map((i) => sha(`q-${i}`));

      await sleep(RETAIN_S * 1000 + 1500);
      const keys = await allKeys(d);
      assert.deepEqual(leftOf(keys, gdprIds, gdprIdem), [], "nothing of the GDPR tenant's ended workflows is left");
      assert.deepEqual(leftOf(keys, bankIds, bankIdem).sort(), bankKeys.sort(), "the other tenant's data is untouched");
      const queuedLeft = leftOf(keys, queuedIds, queuedIdem);
      for (const id of queuedIds)
        assert.ok(queuedLeft.includes(cell.workflow(id)) && queuedLeft.some((k) => k.endsWith(`.C:${id}`) || k.endsWith(`.B:${id}`)));
      assert.equal(queuedLeft.filter((k) => k.includes(":idem:")).length, 2, "queued work keeps its idempotency keys");

      // On demand: validation first, nothing changed by a refused request.
      const erase = (tenant: string, q: string, headers: Record<string, string> = admin) =>
        http(base, "DELETE", `/v1/admin/tenants/${tenant}/data${q}`, { headers });
      assert.equal((await erase("bank", `?before=${Date.now()}`, {})).status, 401);
      const missing = await erase("bank", "");
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.details[0].field, "before");
      const future = await erase("bank", `?before=${Date.now() + 3_600_000}`);
      assert.equal(future.status, 400);
      assert.match(future.body.error.message, /future/);
      assert.equal((await erase("bank", "?before=yesterday")).status, 400);
      assert.equal((await erase("nobody", `?before=${Date.now()}`)).status, 404);
      assert.deepEqual(leftOf(await allKeys(d), bankIds, bankIdem).sort(), bankKeys.sort(), "refused requests erased nothing");

      const bank = await erase("bank", `?before=${new Date().toISOString()}`);
      assert.equal(bank.status, 200);
      assert.equal(bank.body.erased, 4);
      assert.deepEqual(bank.body.kept, { queued: 0, running: 0, parked: 0, endedLater: 0 });
      assert.deepEqual(leftOf(await allKeys(d), bankIds, bankIdem), [], "nothing of the bank's ended workflows is left");
      const gdpr = await erase("gdpr", `?before=${Date.now()}`);
      assert.equal(gdpr.body.erased, 0);
      assert.equal(gdpr.body.alreadyGone, 4, "expired at retention: only their run-list entries were left");
      assert.equal(gdpr.body.kept.queued, 2, "queued work is counted, never erased");
      assert.deepEqual(leftOf(await allKeys(d), queuedIds, queuedIdem).sort(), queuedLeft.sort());

      // The tenant's own view agrees: the bank lists no workflow, the erasure is in the admin audit log.
      const bankKey = (await d.p.apiKeys.create("bank")).key;
      const list = await http(base, "GET", "/v1/workflows", { key: bankKey });
      assert.deepEqual(list.body.workflows, []);
      const audit = await http(base, "GET", "/v1/admin/audit", { headers: admin });
      const entry = audit.body.entries.find((e: { action: string; target: string }) => e.action === "tenant.erase" && e.target === "bank");
      assert.equal(entry?.details?.erased, 4);
      assert.ok(!JSON.stringify(audit.body).includes(bankIds[0]!), "the audit log names no workflow");
    } finally {
      await api.stop();
      await d.close();
    }
  });
});
