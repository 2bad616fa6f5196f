import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoryOk, p99Ok, slope, thirds, trend, windowP99 } from "../soak/lib/analysis.ts";
import { classify, diff, type Census } from "../soak/lib/keyCensus.ts";

describe("soak analysis", () => {
  it("fits the least-squares slope per minute, and judges only the second half of the run", () => {
    assert.equal(
      slope([
        { min: 0, y: 1 },
        { min: 1, y: 3 },
        { min: 2, y: 5 },
      ]),
      2,
    );
    assert.ok(Number.isNaN(slope([{ min: 1, y: 1 }])));
    // Warm-up growth in the first half, flat after: no trend.
    const pts = Array.from({ length: 11 }, (_, i) => ({ min: i, y: i < 5 ? 50 + 10 * i : 100 }));
    const t = trend(pts, 10);
    assert.equal(t.slopePerMin, 0);
    assert.equal(t.relative, 0);
    assert.ok(memoryOk(t));
    // 2 MiB a minute on 100 MiB over a 10-minute run is 20%: a leak.
    const leak = trend(
      Array.from({ length: 11 }, (_, i) => ({ min: i, y: 100 + 2 * (i - 7.5) })),
      10,
    );
    assert.ok(Math.abs(leak.relative - 0.2) < 1e-9);
    assert.equal(memoryOk(leak), false);
  });

  it("takes p99 enqueue→start per window and per third", () => {
    const starts = Array.from({ length: 300 }, (_, i) => ({ at: i, latencyMs: i < 100 ? 10 : i >= 200 ? 30 : 20 }));
    assert.deepEqual(thirds(starts, 0, 300), { first: { n: 100, p99: 10 }, last: { n: 100, p99: 30 } });
    assert.deepEqual(windowP99(starts, [0, 150, 300]), [
      { from: 0, n: 150, p99: 20 },
      { from: 150, n: 150, p99: 30 },
    ]);
  });

  it("allows p99 to double, or to grow by less than 100 ms of jitter, and no more", () => {
    assert.ok(p99Ok(200, 400));
    assert.equal(p99Ok(200, 401), false);
    assert.ok(p99Ok(10, 110));
    assert.equal(p99Ok(10, 111), false);
  });

  it("classifies a deployment's keys by their role in queues/keys.ts", () => {
    const P = "bonabc";
    const c = (rest: string) => classify(`${P}:{${P}.default}:${rest}`, P, ["acme"]);
    assert.deepEqual(c("fl:wf:wf_AAAAAAAAAAAAAAAAAAAA"), { kind: "workflow record", pattern: "{bonabc.default}:fl:wf:<wf>" });
    assert.equal(c("fl:wf:wf_AAAAAAAAAAAAAAAAAAAA:steps").kind, "workflow steps");
    assert.equal(c(`fl:idem:acme:${"a".repeat(64)}`).pattern, "{bonabc.default}:fl:idem:<t>:<sha>");
    assert.equal(c("fl:ev:1795523880000").kind, "usage event bucket");
    assert.equal(c("fl:gate:acme:seq").pattern, "{bonabc.default}:fl:gate:<t>:seq");
    assert.equal(c("fl:tp:acme").kind, "cell state");
    assert.equal(c("ingress.acme.B:wf_AAAAAAAAAAAAAAAAAAAA").kind, "ingress job");
    assert.equal(c("ingress.acme.B:wait").kind, "ingress queue");
    assert.equal(c("exec.default:wf_AAAAAAAAAAAAAAAAAAAA:lock").kind, "exec job");
    assert.equal(c("exec.default:events").kind, "exec queue");
    assert.equal(classify(`${P}:{${P}.reg}:tenants`, P).kind, "registry");
  });

  it("calls a per-workflow key without a TTL that appeared a leak, and new per-tenant state only grown", () => {
    const P = "bonabc";
    const census = (keys: string[]): Census => ({
      at: 0,
      total: keys.length,
      byKind: {},
      noTtlByPattern: {},
      noTtlKeys: new Set(keys.map((k) => `${P}:{${P}.default}:${k}`)),
    });
    const { leaks, grown } = diff(
      census(["fl:tp:acme"]),
      census(["fl:tp:acme", "fl:wf:wf_AAAAAAAAAAAAAAAAAAAA", "fl:wf:wf_BBBBBBBBBBBBBBBBBBBB", "fl:timers"]),
      P,
      ["acme"],
    );
    assert.deepEqual(
      leaks.map((l) => [l.kind, l.count]),
      [["workflow record", 2]],
    );
    assert.deepEqual(
      grown.map((l) => l.pattern),
      ["{bonabc.default}:fl:timers"],
    );
  });
});
