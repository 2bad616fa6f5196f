import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { DownstreamStats } from "../../src/dev/downstream/simulator.ts";
import { waitFor, withDownstream } from "../helpers/downstream.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
  ms: number;
}

async function call(url: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Answer> {
  const t0 = performance.now();
  const r = await fetch(url, init);
  const body = (await r.json()) as Record<string, unknown>;
  return { status: r.status, body, headers: r.headers, ms: performance.now() - t0 };
}

const post = (url: string, body: unknown) =>
  call(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** Every /fhir request ends in exactly one outcome once nothing is in flight. */
function assertBalanced(s: DownstreamStats): void {
  assert.equal(s.inFlight, 0);
  assert.equal(s.requests, s.served + s.rejected + s.failed + s.aborted + s.duplicates, JSON.stringify(s));
}

describe("simulated downstream service", () => {
  it("measures peak concurrency as the most requests in flight at once, not the total", async () => {
    await withDownstream({ capacity: 50, latencyMs: { min: 200, max: 200 } }, async (ds) => {
      const fire = (n: number) =>
        Promise.all(Array.from({ length: n }, (_, i) => call(`${ds.url}/fhir/eligibility`, { headers: { "x-tenant-id": `t${i % 2}` } })));
      const answers = await fire(20);
      assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
      assert.equal(answers[0]?.body.resource, "eligibility");
      let s = ds.stats();
      assert.equal(s.peakInFlight, 20);
      assert.equal(s.served, 20);
      assertBalanced(s);

      // Two waves of 10 after a reset: 20 requests, but never more than 10 at once.
      ds.resetStats();
      await fire(10);
      await fire(10);
      s = ds.stats();
      assert.equal(s.requests, 20);
      assert.equal(s.peakInFlight, 10);
      assertBalanced(s);
    });
  });

  it("answers requests beyond capacity 503 POOL_EXHAUSTED at once and counts them rejected", async () => {
    await withDownstream({ capacity: 3, latencyMs: { min: 300, max: 300 } }, async (ds) => {
      const holding = Array.from({ length: 3 }, () => call(`${ds.url}/fhir/clinical-notes`));
      await waitFor("the pool to fill", () => ds.stats().inFlight === 3);
      const extra = await Promise.all([
        call(`${ds.url}/fhir/clinical-notes`),
        call(`${ds.url}/fhir/formulary`, { method: "POST", body: "{}" }),
      ]);
      for (const a of extra) {
        assert.equal(a.status, 503);
        assert.equal(a.body.code, "POOL_EXHAUSTED");
        assert.ok(a.ms < 150, `answered in ${a.ms} ms, without waiting out the 300 ms latency`);
      }
      assert.equal(ds.stats().rejected, 2);
      assert.deepEqual(
        (await Promise.all(holding)).map((a) => a.status),
        [200, 200, 200],
      );
      const s = ds.stats();
      assert.equal(s.peakInFlight, 3, "rejected requests never held a connection");
      assert.equal(s.served, 3);
      assertBalanced(s);
      // The pool is free again.
      assert.equal((await call(`${ds.url}/fhir/formulary?latencyMs=0`)).status, 200);
    });
  });

  it("queues requests beyond capacity like a database pool: FIFO up to queueTimeoutMs, never more than capacity in flight, demand above 1x", async () => {
    await withDownstream({ capacity: 2, latencyMs: { min: 150, max: 150 }, queueTimeoutMs: 250 }, async (ds) => {
      // 2 run at once, 2 wait one latency and run, 2 more would wait 300 ms, past the 250 ms timeout.
      const answers = await Promise.all(Array.from({ length: 6 }, () => call(`${ds.url}/fhir/eligibility`)));
      const statuses = answers.map((a) => a.status).sort();
      assert.deepEqual(statuses, [200, 200, 200, 200, 503, 503]);
      for (const a of answers.filter((x) => x.status === 503)) {
        assert.equal(a.body.code, "POOL_EXHAUSTED");
        assert.ok(a.ms >= 200, `a refused caller waited out the queue timeout first (${a.ms} ms)`);
      }
      const s = ds.stats();
      assert.equal(s.peakInFlight, 2, "waiting callers never exceed the pool");
      assert.equal(s.peakDemand, 6, "demand counts every caller that wanted a connection at once");
      assert.equal(s.waiting, 0);
      assert.equal(s.rejected, 2);
      assertBalanced(s);
    });
  });

  it("counts health probes apart from /fhir requests", async () => {
    await withDownstream({}, async (ds) => {
      await call(`${ds.url}/health`);
      await call(`${ds.url}/health`);
      await call(`${ds.url}/fhir/eligibility`);
      const s = ds.stats();
      assert.equal(s.probes, 2);
      assert.equal(s.requests, 1);
    });
  });

  it("tracks in-flight peaks per tenant from X-Tenant-Id, with '-' for requests without one", async () => {
    await withDownstream({ latencyMs: { min: 200, max: 200 } }, async (ds) => {
      const as = (tenant: string | null, n: number) =>
        Array.from({ length: n }, () => call(`${ds.url}/fhir/payer-rules`, { headers: tenant ? { "x-tenant-id": tenant } : {} }));
      const answers = await Promise.all([...as("meridian", 5), ...as("clinic", 2), ...as(null, 1)]);
      assert.equal(answers.filter((a) => a.status === 200).length, 8);
      assert.deepEqual(new Set(answers.map((a) => a.body.tenant)), new Set(["meridian", "clinic", "-"]));
      const s = ds.stats();
      assert.deepEqual(s.byTenant, {
        meridian: { inFlight: 0, peakInFlight: 5, requests: 5 },
        clinic: { inFlight: 0, peakInFlight: 2, requests: 2 },
        "-": { inFlight: 0, peakInFlight: 1, requests: 1 },
      });
      assert.equal(s.peakInFlight, 8);
      assertBalanced(s);
    });
  });

  it("answers 503 UNAVAILABLE after the latency during an outage, switched by method or admin endpoint, and /health follows", async () => {
    await withDownstream({ latencyMs: { min: 100, max: 100 } }, async (ds) => {
      assert.deepEqual((await call(`${ds.url}/health`)).body, { ok: true });

      ds.setOutage(true);
      const down = await call(`${ds.url}/fhir/eligibility`);
      assert.equal(down.status, 503);
      assert.equal(down.body.code, "UNAVAILABLE");
      assert.ok(down.ms >= 90, `failed after its latency, not at once (${down.ms} ms)`);
      assert.equal((await call(`${ds.url}/health`)).status, 503);

      assert.equal((await post(`${ds.url}/admin/outage`, { on: false })).status, 200);
      assert.equal((await call(`${ds.url}/health`)).status, 200);
      assert.equal((await call(`${ds.url}/fhir/eligibility`)).status, 200);

      assert.equal((await post(`${ds.url}/admin/outage`, { on: true })).status, 200);
      assert.equal((await call(`${ds.url}/fhir/eligibility`)).body.code, "UNAVAILABLE");
      assert.equal((await post(`${ds.url}/admin/outage`, { on: "yes" })).status, 400, "a malformed switch changes nothing");
      assert.equal((await call(`${ds.url}/health`)).status, 503);
      ds.setOutage(false);
      assert.equal((await call(`${ds.url}/health`)).status, 200);

      const s = (await call(`${ds.url}/admin/stats`)).body as unknown as DownstreamStats;
      assert.equal(s.failed, 2);
      assert.equal(s.served, 1);
      assertBalanced(s);
    });
  });

  it("fails requests 500 INTERNAL at the set failure rate, settable by method or admin endpoint", async () => {
    await withDownstream({}, async (ds) => {
      ds.setFailureRate(1);
      const failed = await call(`${ds.url}/fhir/eligibility`);
      assert.equal(failed.status, 500);
      assert.equal(failed.body.code, "INTERNAL");
      assert.equal((await post(`${ds.url}/admin/failure-rate`, { p: 0 })).status, 200);
      assert.equal((await call(`${ds.url}/fhir/eligibility`)).status, 200);
      assert.equal((await post(`${ds.url}/admin/failure-rate`, { p: 1.5 })).status, 400);
      assert.throws(() => ds.setFailureRate(-0.1), RangeError);

      // A seeded rate repeats: the same seed fails the same requests.
      const runs: string[] = [];
      const pattern = async () =>
        withDownstream({ seed: 42 }, async (other) => {
          other.setFailureRate(0.5);
          const statuses: number[] = [];
          for (let i = 0; i < 20; i++) statuses.push((await call(`${other.url}/fhir/x`)).status);
          assert.ok(statuses.includes(500) && statuses.includes(200), statuses.join());
          runs.push(statuses.join());
        });
      await pattern();
      await pattern();
      assert.equal(runs[0], runs[1]);
      const s = ds.stats();
      assert.equal(s.failed, 1);
      assertBalanced(s);
    });
  });

  it("answers a completed Idempotency-Key again with the first response without executing it, per tenant", async () => {
    await withDownstream({ latencyMs: { min: 150, max: 150 } }, async (ds) => {
      const headers = { "x-tenant-id": "meridian", "idempotency-key": "wf-1:attempt" };
      const first = await call(`${ds.url}/fhir/eligibility`, { headers });
      assert.equal(first.status, 200);
      const again = await call(`${ds.url}/fhir/eligibility`, { method: "POST", headers, body: "{}" });
      assert.equal(again.status, 200);
      assert.deepEqual(again.body, first.body, "the stored first response, servedAt included");
      assert.equal(again.headers.get("idempotent-replayed"), "true");
      assert.ok(again.ms < 100, `not re-executed: ${again.ms} ms against a 150 ms latency`);

      // The same key from another tenant is another request.
      const other = await call(`${ds.url}/fhir/eligibility`, { headers: { ...headers, "x-tenant-id": "clinic" } });
      assert.equal(other.headers.get("idempotent-replayed"), null);

      // A failed attempt is not remembered: its retry executes.
      ds.setOutage(true);
      assert.equal((await call(`${ds.url}/fhir/eligibility`, { headers: { "idempotency-key": "wf-2" } })).status, 503);
      ds.setOutage(false);
      const retry = await call(`${ds.url}/fhir/eligibility`, { headers: { "idempotency-key": "wf-2" } });
      assert.equal(retry.status, 200);
      assert.equal(retry.headers.get("idempotent-replayed"), null);

      const s = ds.stats();
      assert.equal(s.duplicates, 1);
      assert.equal(s.served, 3);
      assert.equal(s.peakInFlight, 1);
      assert.equal(s.byTenant.meridian?.requests, 2);
      assertBalanced(s);
    });
  });

  it("records X-Request-Deadline raw with tenant, key and arrival time, keeping the last 1000 requests", async () => {
    await withDownstream({ capacity: 200 }, async (ds) => {
      const before = Date.now();
      const sent: Record<string, string>[] = [
        { "x-tenant-id": "meridian", "idempotency-key": "k-iso", "x-request-deadline": "2026-01-01T00:00:30.000Z" },
        { "x-tenant-id": "clinic", "x-request-deadline": "1767225630000" },
        { "x-request-deadline": "not a time at all" },
        {},
      ];
      for (const headers of sent) await call(`${ds.url}/fhir/eligibility`, { headers });
      const s = ds.stats();
      assert.deepEqual(
        s.deadlines.map(({ receivedAt: _, ...d }) => d),
        [
          { idempotencyKey: "k-iso", tenant: "meridian", deadlineHeader: "2026-01-01T00:00:30.000Z" },
          { idempotencyKey: null, tenant: "clinic", deadlineHeader: "1767225630000" },
          { idempotencyKey: null, tenant: "-", deadlineHeader: "not a time at all" },
          { idempotencyKey: null, tenant: "-", deadlineHeader: null },
        ],
      );
      for (const d of s.deadlines) assert.ok(d.receivedAt >= before && d.receivedAt <= Date.now());

      for (let batch = 0; batch < 10; batch++) {
        await Promise.all(
          Array.from({ length: 100 }, (_, i) => call(`${ds.url}/fhir/x`, { headers: { "x-request-deadline": `d${batch * 100 + i}` } })),
        );
      }
      const kept = ds.stats().deadlines;
      assert.equal(kept.length, 1000);
      // 1,004 requests in all: the first four (and four of the first batch) were dropped.
      assert.ok(
        kept.every((d) => d.deadlineHeader?.startsWith("d")),
        "the oldest were dropped",
      );
      assert.equal(new Set(kept.map((d) => d.deadlineHeader)).size, 1000);
      assert.equal(kept.at(-1)?.deadlineHeader?.slice(0, 2), "d9", "the newest are kept");
    });
  });

  it("counts a request whose client aborts mid-way as aborted and releases its in-flight slot", async () => {
    await withDownstream({ capacity: 1 }, async (ds) => {
      const controller = new AbortController();
      const pending = fetch(`${ds.url}/fhir/clinical-notes?latencyMs=5000`, {
        headers: { "x-tenant-id": "meridian" },
        signal: controller.signal,
      });
      await waitFor("the request to be in flight", () => ds.stats().inFlight === 1);
      controller.abort();
      await assert.rejects(pending, { name: "AbortError" });
      await waitFor("the abort to be counted", () => ds.stats().aborted === 1);
      const s = ds.stats();
      assert.equal(s.byTenant.meridian?.inFlight, 0);
      assert.equal(s.served, 0);
      assertBalanced(s);
      // The single connection is free for the next request at once.
      assert.equal((await call(`${ds.url}/fhir/clinical-notes`)).status, 200);
    });
  });

  it("keeps in-flight gauges balanced across a stats reset in the middle of a request", async () => {
    await withDownstream({}, async (ds) => {
      const pending = call(`${ds.url}/fhir/eligibility?latencyMs=200`, { headers: { "x-tenant-id": "meridian" } });
      await waitFor("the request to be in flight", () => ds.stats().inFlight === 1);
      assert.equal((await post(`${ds.url}/admin/reset`, {})).status, 200);
      let s = ds.stats();
      assert.deepEqual([s.requests, s.inFlight, s.peakInFlight], [0, 1, 1]);
      assert.equal(s.byTenant.meridian?.inFlight, 1);
      assert.equal((await pending).status, 200);
      s = ds.stats();
      assert.deepEqual([s.inFlight, s.served, s.byTenant.meridian?.inFlight], [0, 1, 0]);
    });
  });

  it("streams a model response one token per chunk and counts it completed", async () => {
    await withDownstream({}, async (ds) => {
      const r = await fetch(`${ds.url}/model/stream`, {
        method: "POST",
        body: JSON.stringify({ tokens: 5, tokenMs: { min: 5, max: 15 } }),
      });
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
      assert.equal(await r.text(), "tok0 tok1 tok2 tok3 tok4 ");
      await waitFor("completion to be counted", () => ds.stats().modelStreams.completed === 1);
      assert.deepEqual(ds.stats().modelStreams, { started: 1, completed: 1, cutMidway: 0 });
      assert.equal((await post(`${ds.url}/model/stream`, { tokens: -1 })).status, 400);
    });
  });

  it("counts a model stream the client cuts mid-way as cutMidway and stops writing to it", async () => {
    await withDownstream({}, async (ds) => {
      const controller = new AbortController();
      // 100 tokens at 10 ms: about a second of stream if it were never cut.
      const r = await fetch(`${ds.url}/model/stream`, {
        method: "POST",
        body: JSON.stringify({ tokens: 100, tokenMs: { min: 10, max: 10 } }),
        signal: controller.signal,
      });
      const reader = r.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      while (text.split(" ").length <= 3) {
        const { value, done } = await reader.read();
        assert.ok(!done, "the stream ended before it was cut");
        text += decoder.decode(value, { stream: true });
      }
      controller.abort();
      await waitFor("the cut to be counted", () => ds.stats().modelStreams.cutMidway === 1);
      // Had the server kept writing, the stream would reach its last token and be
      // counted completed; wait past where it would have ended, in short steps.
      for (let i = 0; i < 5; i++) {
        await sleep(250);
        assert.deepEqual(ds.stats().modelStreams, { started: 1, completed: 0, cutMidway: 1 });
      }
    });
  });

  it("runs as a CLI from DOWNSTREAM_* settings, prints its URL and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/dev/downstream/server.ts"], {
      cwd: repoRoot,
      env: { ...process.env, DOWNSTREAM_PORT: "0", DOWNSTREAM_CAPACITY: "2", DOWNSTREAM_LATENCY_MS: "0-0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (d: string) => (out += d));
      await waitFor("the listening line", () => /downstream listening at (http:\S+)\n/.test(out), 30_000);
      const url = /downstream listening at (http:\S+)\n/.exec(out)![1]!;
      assert.deepEqual((await call(`${url}/health`)).body, { ok: true });
      assert.equal(((await call(`${url}/admin/stats`)).body as unknown as DownstreamStats).capacity, 2);
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = await exited;
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });

  it("refuses a bad DOWNSTREAM_LATENCY_MS naming the variable", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/dev/downstream/server.ts"], {
      cwd: repoRoot,
      env: { ...process.env, DOWNSTREAM_PORT: "0", DOWNSTREAM_LATENCY_MS: "80-20" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => (err += d));
    const [code] = await once(child, "exit");
    assert.equal(code, 1);
    assert.match(err, /DOWNSTREAM_LATENCY_MS/);
  });
});
