import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createKeys, type Keys } from "../../queues/keys.ts";
import { capacityReport } from "../../src/usage/capacityReport.ts";
import { connect } from "../../src/lib/redis.ts";
import { UsageRollups } from "../../src/usage/usageRollup.ts";
import type { TenantUsage, UsageSnapshot } from "../../src/usage/usageSnapshot.ts";
import { resolvePolicy } from "../../src/tenancy/policy.ts";
import type { TenantEntry } from "../../src/tenancy/registry.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";

/**
 * The capacity report end to end on a real Redis, with time as an argument:
 * two api processes' rollups record a period of samples, exactly one writes
 * it, and the report reads it back into raise / lower recommendations.
 */
const row = (tenant: string, mca: number, running: number, queuedB: number): TenantUsage =>
  ({
    tenant,
    cell: "default",
    mca,
    running: { A: 0, B: running, C: 0, total: running },
    queued: { A: 0, B: queuedB, C: 0, total: queuedB },
    tools: { inFlight: running * 2, mctc: 50 },
    atCap: { mca: running >= mca, urgent: false, mctc: false, any: running >= mca },
    parked: 0,
  }) as unknown as TenantUsage;

describe("capacity report from recorded rollups", () => {
  let redis: Redis;
  let keys: Keys;
  before(async () => {
    redis = connect(await testRedisUrl());
    keys = createKeys(freshPrefix());
  });
  after(async () => {
    await redis.quit();
  });

  it("recommends raising mca for a tenant that waits at its cap and lowering it for one that never gets near", async () => {
    const PERIOD = 10_000;
    const t0 = Math.ceil(1_800_000_000_000 / PERIOD) * PERIOD;
    // Two api processes sample the same Redis truth.
    const a = new UsageRollups(redis, keys, PERIOD);
    const b = new UsageRollups(redis, keys, PERIOD);
    for (let i = 0; i < 40; i++) {
      const snap = { at: t0 + i * 250, tenants: [row("busy", 10, 10, 25), row("idle", 20, 1, 0)] } as unknown as UsageSnapshot;
      a.observe(snap);
      b.observe(snap);
    }
    const after = t0 + PERIOD + 30_000;
    const written = (await a.flush(after)) + (await b.flush(after));
    assert.equal(written, 1, "one process writes the period, the other sees its lock");

    const entry = (tenant: string, mca: number): TenantEntry => {
      const r = resolvePolicy({ tier: "professional", mca, burst: { mca } });
      assert.ok(r.ok);
      return { tenant, spec: r.spec, policy: r.policy };
    };
    const entries = [entry("busy", 10), entry("idle", 20)];
    // A third process, which sampled nothing itself, reads the written rollup.
    // 40 samples of 250 ms: 10 s of evidence, made enough by the minimum this test configures.
    const report = await capacityReport(new UsageRollups(redis, keys, PERIOD), entries, "1h", 3_600_000, after, {
      minEvidence: "10s",
      minEvidenceMs: 10_000,
      sampleMs: 250,
    });
    const busy = report.tenants.find((t) => t.tenant === "busy")!;
    const idle = report.tenants.find((t) => t.tenant === "idle")!;
    assert.equal(busy.mca.action, "raise");
    assert.equal(busy.mca.recommended, 15, "at the cap with work waiting in every sample: × 1.5");
    assert.equal(busy.evidence.capWait, 40);
    assert.equal(idle.mca.action, "lower");
    assert.equal(idle.mca.recommended, 2, "peak 1 running of 20: the peak × 1.25");
    assert.equal(report.tenants[0]!.tenant, "busy", "raises are listed first");
    assert.equal(report.enoughData, true);
  });

  it("on 90 s of recorded samples it says 'not enough data' for every tenant and recommends nothing", async () => {
    const t0 = 1_900_000_000_000;
    const rollups = new UsageRollups(redis, keys);
    // 90 one-second ticks: the busy tenant waits at its cap throughout, the idle one peaks at 5 of 150.
    for (let i = 0; i < 90; i++)
      rollups.observe({
        at: t0 + i * 1_000,
        tenants: [row("busy", 10, 10, 25), row("idle", 150, i === 40 ? 5 : 1, 0)],
      } as unknown as UsageSnapshot);
    const entry = (tenant: string, mca: number): TenantEntry => {
      const r = resolvePolicy({ tier: "enterprise", mca, burst: { mca } });
      assert.ok(r.ok);
      return { tenant, spec: r.spec, policy: r.policy };
    };
    const report = await capacityReport(rollups, [entry("busy", 10), entry("idle", 150)], "24h", 86_400_000, t0 + 90_000);
    assert.equal(report.enoughData, false);
    assert.equal(report.minEvidence, "20h", "the default minimum evidence");
    assert.match(report.note!, /not enough data for 2 of 2 tenants: at most 1\.5 min observed, need 20h/);
    for (const t of report.tenants) {
      assert.equal(t.enoughData, false, t.tenant);
      assert.deepEqual([t.mca.action, t.mctc.action], ["keep", "keep"], t.tenant);
      assert.equal(t.mca.recommended, t.mca.current, t.tenant);
      assert.match(t.mca.reason, /^not enough data: observed 1\.5 min \(90 samples\)/);
    }
    const idle = report.tenants.find((t) => t.tenant === "idle")!;
    assert.equal(idle.evidence.peakRunning, 5, "what is known is reported");
    assert.match(idle.mca.reason, /peak running 5 of mca 150/);
  });
});
