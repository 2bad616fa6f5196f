import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { createKeys, type CellKeys } from "../../queues/keys.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { connect } from "../../src/lib/redis.ts";
import { firstDown, readHealth } from "../../src/workflows/explainRead.ts";
import { freshPrefix, testRedisUrl } from "../helpers/redis.ts";
import { HELD_BACK_CASES, type Signal } from "./heldBack.cases.ts";
import { CASE_CAPS } from "./dispatch.cases.ts";
import { ScriptPool, TEST_SHARES } from "./pools.ts";

/**
 * Holding back at dispatch has two homes: dispatch-18.lua's downDependency,
 * which parks a workflow instead of starting it, and readHealth + firstDown
 * (src/workflows/explainRead.ts), which the "why does it wait" answer reads.
 * Each row, then each generated case, is written into Redis once (the type's
 * declared dependencies, their operator marks and probe signals) and both are
 * asked about the same workflow.
 */
const RUNS = Number(process.env.FAIRLANE_DIFF_RUNS ?? 300);
const NOW = Date.UTC(2026, 11, 1);

describe("held back at dispatch: dispatch-18.lua and explainRead.ts agree", () => {
  let redis: Redis;
  let cell: CellKeys;
  let caseNo = 0;

  before(async () => {
    redis = connect(await testRedisUrl());
    cell = createKeys(freshPrefix()).cell("default");
  });
  after(() => redis.quit());

  /** Both answers for one workflow of a type declaring `deps`: the dependency named, or null. */
  async function ask(deps: Signal[]): Promise<{ script: string | null; explain: string | null; names: string[] }> {
    const n = ++caseNo;
    const type = `type${n}`;
    const names = deps.map((_, i) => `dep${n}x${i}`);
    const m = redis.multi().hset(cell.workflowDeps, type, names.join(","));
    deps.forEach((d, i) => {
      if (d.mark) m.hset(cell.healthOverride(names[i]!), { state: d.mark, since: String(NOW - 1_000), detail: "test", source: "operator" });
      if (d.probe) m.hset(cell.health(names[i]!), { state: d.probe, since: String(NOW - 2_000), detail: "test", source: "probe" });
    });
    await m.exec();

    const explain = firstDown({ [type]: names.join(",") }, type, await readHealth(redis, cell, names))?.dependency ?? null;

    const pool = `held${n}`;
    const script = await ScriptPool.open(redis, cell, pool, 10, TEST_SHARES, new FakeClock(NOW));
    await script.setCaps(`t${n}`, CASE_CAPS);
    const [id] = await script.enqueue(`t${n}`, "B", 1, type);
    const started = await script.dispatch(1);
    const rec = await redis.hgetall(cell.workflow(id!));
    assert.equal(started.length === 1, rec.parkedDep === undefined, `either started or parked: ${JSON.stringify(rec)}`);
    if (rec.parkedDep !== undefined) assert.equal(rec.state, "parked");
    return { script: rec.parkedDep ?? null, explain, names };
  }

  for (const c of HELD_BACK_CASES) {
    it(c.name, async () => {
      const { script, explain, names } = await ask(c.deps);
      const want = c.expected === null ? null : names[c.expected]!;
      assert.equal(explain, want, "explainRead.ts");
      assert.equal(script, want, "dispatch script");
    });
  }

  it(`agree on ${RUNS} generated dependency signals`, { timeout: 120_000 }, async () => {
    const signalArb: fc.Arbitrary<Signal> = fc.record(
      {
        mark: fc.constantFrom("down" as const, "healthy" as const, "degraded" as const),
        probe: fc.constantFrom("unknown" as const, "healthy" as const, "degraded" as const, "down" as const),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(signalArb, { minLength: 0, maxLength: 3 }), async (deps) => {
        const { script, explain } = await ask(deps);
        assert.equal(script, explain, JSON.stringify(deps));
      }),
      { numRuns: RUNS },
    );
  });
});
