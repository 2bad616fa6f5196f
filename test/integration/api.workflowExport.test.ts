import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";

interface Line {
  cursor: string;
  endedAt: string;
  id: string;
  workflow: { id: string; tenant: string; state: string; error: { code: string } | null } | null;
}

/** Reads the NDJSON export to its end, or stops after `max` lines (an archiver that went away). */
async function exportLines(api: TestApi, key: string, query = "", max = Infinity): Promise<{ status: number; lines: Line[] }> {
  const res = await fetch(`${api.base}/v1/workflows/export${query}`, { headers: { authorization: `Bearer ${key}` } });
  if (res.status !== 200) return { status: res.status, lines: [] };
  assert.match(res.headers.get("content-type") ?? "", /^application\/x-ndjson/);
  const lines: Line[] = [];
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    text += decoder.decode(chunk, { stream: true });
    const parts = text.split("\n");
    text = parts.pop()!;
    for (const p of parts) if (p) lines.push(JSON.parse(p) as Line);
    if (lines.length >= max) break;
  }
  return { status: 200, lines: lines.slice(0, max) };
}

async function enqueue(api: TestApi, tenant: string): Promise<string> {
  const r = await http(api.base, "POST", "/v1/workflows", { key: api.keys[tenant], body: { type: "prior-auth", class: "C" } });
  assert.equal(r.status, 202);
  return r.body.id as string;
}

const cancel = async (api: TestApi, tenant: string, id: string) =>
  assert.equal((await http(api.base, "DELETE", `/v1/workflows/${id}`, { key: api.keys[tenant] })).status, 200);

describe("export of ended workflows (GET /v1/workflows/export)", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ clinic: { tier: "professional" }, other: { tier: "professional" } });
  });
  after(() => api.stop());

  it("writes each ended workflow once, in the order they ended, resumes after a cursor and shows no other tenant's", async () => {
    // Enqueued a, b, c and ended c, a: the export follows the ends, not the enqueues; b has not ended.
    const [a, b, c] = [await enqueue(api, "clinic"), await enqueue(api, "clinic"), await enqueue(api, "clinic")];
    const theirs = await enqueue(api, "other");
    await cancel(api, "clinic", c!);
    await cancel(api, "other", theirs);
    await cancel(api, "clinic", a!);

    const all = await exportLines(api, api.keys.clinic!);
    assert.deepEqual(
      all.lines.map((l) => [l.id, l.workflow?.state, l.workflow?.tenant, l.workflow?.error?.code]),
      [
        [c, "cancelled", "clinic", "CANCELLED"],
        [a, "cancelled", "clinic", "CANCELLED"],
      ],
    );
    // The record as GET /v1/workflows/:id answers it.
    const read = await http(api.base, "GET", `/v1/workflows/${a}`, { key: api.keys.clinic });
    assert.deepEqual(all.lines[1]!.workflow, read.body);
    assert.ok(!all.lines.some((l) => l.id === b || l.id === theirs));

    // Cut after one line and resumed after its cursor: the rest, nothing twice; later ends follow.
    const head = await exportLines(api, api.keys.clinic!, "", 1);
    await cancel(api, "clinic", b!);
    const rest = await exportLines(api, api.keys.clinic!, `?cursor=${head.lines[0]!.cursor}`);
    assert.deepEqual(
      [...head.lines, ...rest.lines].map((l) => l.id),
      [c, a, b],
    );

    const other = await exportLines(api, api.keys.other!);
    assert.deepEqual(
      other.lines.map((l) => l.id),
      [theirs],
    );
  });

  it("says which ended workflow it can no longer give (its record erased) rather than skip it", async () => {
    const id = await enqueue(api, "other");
    await cancel(api, "other", id);
    // The erasure takes what ended before a time not in the future: a millisecond after this end.
    const ended = Date.parse((await http(api.base, "GET", `/v1/workflows/${id}`, { key: api.keys.other })).body.finishedAt);
    while (Date.now() <= ended) await new Promise((r) => setTimeout(r, 1));
    const erase = await http(api.base, "DELETE", `/v1/admin/tenants/other/data?before=${new Date().toISOString()}`, {
      headers: { authorization: `Bearer ${api.adminToken}` },
    });
    assert.equal(erase.status, 200);
    const line = (await exportLines(api, api.keys.other!)).lines.find((l) => l.id === id);
    assert.deepEqual([line?.id, line?.workflow], [id, null]);
  });

  it("refuses a bad query with 400, naming the field", async () => {
    for (const q of ["?cursor=last", "?since=yesterday", "?limit=5"]) {
      const r = await http(api.base, "GET", `/v1/workflows/export${q}`, { key: api.keys.clinic });
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, "INVALID_REQUEST");
      assert.ok(r.body.error.details.length > 0, q);
    }
    assert.equal((await http(api.base, "GET", "/v1/workflows/export")).status, 401);
  });
});
