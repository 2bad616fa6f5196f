import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { TENANT_ID } from "../../queues/names.ts";
import { DEFAULT_SHARES } from "../dispatch/policy/shares.ts";
import { groupNames, parseDuration, parseDurationRange, type Scenario, type ScenarioTenant } from "./simulateScenario.ts";

/**
 * A simulator scenario file (YAML), validated whole at the edge with zod; a
 * bad file is refused with every problem named by its field
 * ("tenants[2].weight: ..."). The format (docs/simulator.md):
 *
 *   slots: 100              pool capacity
 *   for: 1h                 simulated time (default 10m)
 *   seed: 2                 run times in a range are drawn from it (default 1)
 *   shares: { reserve: 0.1, batchMaxShare: 0.5, batchMinShare: 0.05 }
 *   tenants:                one entry per tenant, or per group with `count`
 *     - name: inst          a group's members are inst-000, inst-001, ...
 *       count: 199
 *       weight: 1
 *       mca: 20             default: the pool's slots (never binds)
 *       burst: { mca: 30, seconds: 60, cooldownSeconds: 600 }
 *       mcaUrgent: 5        Class A cap (default: mca)
 *       class: B
 *       jobs: 5000          default: a backlog that never ends
 *       rate: 2.78          arrivals per second; default all at once
 *       duration: 30s-60s   each run's slot-time, fixed or a range
 *       at: 10m             when its work arrives; a range spreads a group's members evenly
 */
const duration = z.string({ error: 'expected a duration such as "45s" (units ms, s, m, h)' }).transform((s, ctx) => {
  const d = parseDuration(s);
  if ("error" in d) ctx.addIssue({ code: "custom", message: d.error });
  return "ms" in d ? d.ms : z.NEVER;
});
const durationRange = (minMs: number) =>
  z.string({ error: 'expected a duration such as "45s" or a range such as "30s-60s"' }).transform((s, ctx) => {
    const d = parseDurationRange(s, minMs);
    if ("error" in d) ctx.addIssue({ code: "custom", message: d.error });
    return "ms" in d ? d.ms : z.NEVER;
  });
const fraction = z.number().min(0).max(1);
const nonNegInt = z.number().int().nonnegative();

const TenantEntry = z.strictObject({
  name: z.string().regex(TENANT_ID, "tenant names are lowercase [a-z0-9_-], up to 48 characters"),
  count: z.number().int().min(1).max(100_000).optional(),
  weight: z.number().positive().max(1000).default(1),
  mca: z.number().int().positive().optional(),
  burst: z
    .strictObject({ mca: z.number().int().positive().optional(), seconds: nonNegInt.default(0), cooldownSeconds: nonNegInt.default(0) })
    .optional(),
  mcaUrgent: nonNegInt.optional(),
  class: z.enum(["A", "B", "C"]).default("B"),
  jobs: z.number().int().positive().optional(),
  rate: z.number().positive().optional(),
  duration: durationRange(1),
  at: durationRange(0).optional(),
});

const ScenarioFile = z.strictObject({
  slots: z.number().int().min(1).max(100_000),
  for: duration.refine((ms) => ms >= 1, "must be at least 1ms").default(600_000),
  seed: z.number().int().default(1),
  shares: z
    .strictObject({
      reserve: fraction.default(DEFAULT_SHARES.reserveFraction),
      batchMaxShare: fraction.default(DEFAULT_SHARES.batchMaxShare),
      batchMinShare: fraction.default(DEFAULT_SHARES.batchMinShare),
    })
    .refine((s) => s.batchMinShare <= s.batchMaxShare, { path: ["batchMinShare"], message: "must be <= batchMaxShare" })
    .optional(),
  tenants: z.array(TenantEntry).min(1, "at least one tenant"),
});

/** A zod issue path as the file spells it: tenants[2].burst.mca. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("") || "(top level)";
}

export class ScenarioError extends Error {}

export function loadScenarioFile(path: string): Scenario {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ScenarioError(`scenario ${path}: ${(err as Error).message.trim()}`);
  }
  return parseScenarioDocument(doc, path);
}

export function parseScenarioDocument(doc: unknown, source: string): Scenario {
  const r = ScenarioFile.safeParse(doc);
  if (!r.success) {
    // An unknown key is named as a field of its own, so a typo ("wieght") points at itself.
    const lines = r.error.issues.flatMap((i) =>
      i.code === "unrecognized_keys"
        ? i.keys.map((k) => `${fieldPath([...i.path, k])}: unknown field`)
        : [`${fieldPath(i.path)}: ${i.message}`],
    );
    throw new ScenarioError(`scenario ${source} is invalid:\n  ${lines.join("\n  ")}`);
  }
  const f = r.data;
  const errors: string[] = [];
  const seen = new Set<string>();
  const tenants: ScenarioTenant[] = [];
  f.tenants.forEach((e, i) => {
    const mca = e.mca ?? f.slots;
    const burst = { mca: e.burst?.mca ?? mca, seconds: e.burst?.seconds ?? 0, cooldownSeconds: e.burst?.cooldownSeconds ?? 0 };
    if (burst.mca < mca) errors.push(`tenants[${i}].burst.mca: must be >= mca (${mca})`);
    const names = e.count === undefined ? [e.name] : groupNames(`${e.name}-`, e.count, 3);
    // A range of arrival times spreads the group's members evenly over it, so a group's arrivals do not come in lockstep.
    const [atLo, atHi] = typeof e.at === "number" || e.at === undefined ? [e.at ?? 0, e.at ?? 0] : e.at;
    names.forEach((name, k) => {
      if (seen.has(name)) errors.push(`tenants[${i}].name: tenant "${name}" appears twice`);
      seen.add(name);
      tenants.push({
        name,
        weight: e.weight,
        cls: e.class,
        mca,
        burst,
        mcaUrgent: e.mcaUrgent ?? mca,
        jobs: e.jobs ?? null,
        rate: e.rate ?? null,
        durationMs: e.duration,
        atMs: Math.round(atLo + ((atHi - atLo) * k) / names.length),
      });
    });
  });
  if (errors.length) throw new ScenarioError(`scenario ${source} is invalid:\n  ${[...new Set(errors)].join("\n  ")}`);
  const s = f.shares ?? {
    reserve: DEFAULT_SHARES.reserveFraction,
    batchMaxShare: DEFAULT_SHARES.batchMaxShare,
    batchMinShare: DEFAULT_SHARES.batchMinShare,
  };
  return {
    source,
    slots: f.slots,
    forMs: f.for,
    seed: f.seed,
    shares: { reserveFraction: s.reserve, batchMaxShare: s.batchMaxShare, batchMinShare: s.batchMinShare },
    tenants,
  };
}
