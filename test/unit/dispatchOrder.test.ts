import assert from "node:assert/strict";
import { it } from "node:test";
import fc from "fast-check";
import { CLASSES } from "../../queues/keys.ts";
import type { PoolDispatch } from "../../src/dispatch/policy/poolDispatch.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import { caseArb, type GeneratedCase, ModelPool, ORG_ORDER, playCase, TENANT_ORDER, TEST_SHARES } from "../conformance/pools.ts";

/**
 * The dispatch script reads its dirty tenants with SPOP, in an order Redis picks at random; the pure
 * rule reads them in the order they were marked. So the rule's decisions must not depend on that order:
 * the same generated cases as the differential test (test/conformance/dispatch.differential.test.ts),
 * run on two copies of the rule, one of which reads its dirty set shuffled before every dispatch call,
 * must make the same dispatches and end with the same virtual times and ready sets. Pure: no Redis, a
 * fake clock, a seeded shuffle. It found the org placed at each tenant's refresh, and tenants entering a
 * set one at a time (2026-12-05): the two cases pinned in pools.ts.
 */
const RUNS = Number(process.env.FAIRLANE_ORDER_RUNS ?? 20000);

/** A seeded shuffle of the rule's dirty set, in place. */
function shuffleDirty(rule: PoolDispatch, random: () => number): void {
  const names = [...rule.dirty];
  for (let i = names.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [names[i], names[j]] = [names[j]!, names[i]!];
  }
  rule.dirty.clear();
  for (const name of names) rule.dirty.add(name);
}

/** What a rule holds when a case ends, in a form to compare. */
function state(rule: PoolDispatch) {
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return {
    ready: CLASSES.map((cls) => sorted(rule.ready[cls])),
    tenants: [...rule.tenants].map(([name, t]) => [name, t.wfq, [...t.orgWfq]]),
    orgs: [...rule.orgs].map(([name, o]) => [name, o.wfq, o.classes, CLASSES.map((cls) => sorted(o.ready[cls]))]),
    classes: rule.classes,
  };
}

async function runCase(c: GeneratedCase, seed: number): Promise<void> {
  let s = seed >>> 0;
  const random = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const clock = new FakeClock(Date.UTC(2026, 11, 1));
  const both = [new ModelPool(c.capacity, TEST_SHARES, clock, "p"), new ModelPool(c.capacity, TEST_SHARES, clock, "p")] as const;
  const play = {
    names: c.tenants.map((_, i) => `t${i}`),
    orgNames: c.orgs.map((_, i) => `o${i}`),
    clock,
    members: false,
    beforeDispatch: () => shuffleDirty(both[1].rule, random),
    label: `seed ${seed}`,
  };
  await playCase(c, both, play);
  assert.deepEqual(state(both[1].rule), state(both[0].rule), `state after ${JSON.stringify(c.events)}`);
}

it(`the dispatch rule decides the same whatever order it reads its dirty tenants in (${RUNS} cases)`, async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, fc.nat(), (c, seed) => runCase(c, seed)),
    {
      numRuns: RUNS,
      examples: [ORG_ORDER, TENANT_ORDER].flatMap((c) => [1, 2, 3, 4, 5, 6, 7, 8].map((seed): [GeneratedCase, number] => [c, seed])),
    },
  );
});
