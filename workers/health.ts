/**
 * The health role: probes downstream dependencies every 5 s and writes their
 * health (healthy | degraded | down, with hysteresis) to every cell, where
 * parking and recovery read it. Run one or two: each writes the same verdict
 * from the same probes, and the signal expires (= not healthy) if all stop.
 * At start it marks dependencies that have no signal "unknown" (called, not
 * parked; /readyz waits), probes at once and takes the first answer as it is;
 * the role counts as started when that first round is written (or after one
 * interval, whichever is first), so under `npm start` the api listens after it.
 *   REDIS_URL=redis://... tsx workers/health.ts
 *
 * FAIRLANE_HEALTH_PROBES: a JSON array of probes, one per dependency (names unique):
 *   {"dep":"fhir-gateway","kind":"http","url":"http://gw:8080/health",
 *    "expectStatus":200,"latencyThresholdMs":1000,"timeoutMs":2000}     (the last three optional)
 *   {"dep":"ledger-db","kind":"tcp","host":"db","port":5432,"timeoutMs":2000}   (timeoutMs optional)
 * Unset or blank: [{"dep":"fhir-gateway","kind":"http","url":"<FAIRLANE_DOWNSTREAM_URL>/health"}].
 * A malformed value stops the role at start, naming the bad field
 * (e.g. "FAIRLANE_HEALTH_PROBES[1].port: ...").
 */
import type { Logger } from "pino";
import { z } from "zod";
import { HealthMonitor, type ProbeSpec } from "../src/backpressure/healthMonitor.ts";
import { DEP_NAME_RULE, HealthStore, isValidDepName } from "../src/backpressure/healthStore.ts";
import type { Platform } from "../src/platform.ts";
import { isMain, runPlatformRole } from "./role.ts";

const dep = z.string().refine(isValidDepName, `must be ${DEP_NAME_RULE}`);
const isHttpUrl = (u: string): boolean => {
  try {
    return ["http:", "https:"].includes(new URL(u).protocol);
  } catch {
    return false;
  }
};
const timeoutMs = z.number().int().min(1).max(60_000).optional();

const ProbeSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    dep,
    kind: z.literal("http"),
    url: z.string().refine(isHttpUrl, "must be an http(s) URL"),
    expectStatus: z.number().int().min(100).max(599).optional(),
    latencyThresholdMs: z.number().int().min(1).optional(),
    timeoutMs,
  }),
  z.strictObject({
    dep,
    kind: z.literal("tcp"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535),
    timeoutMs,
  }),
]);

const ProbesSchema = z
  .array(ProbeSchema)
  .min(1, "must list at least one probe")
  .superRefine((probes, ctx) => {
    const seen = new Set<string>();
    probes.forEach((p, i) => {
      if (seen.has(p.dep)) ctx.addIssue({ code: "custom", path: [i, "dep"], message: `"${p.dep}" is probed twice` });
      seen.add(p.dep);
    });
  });

/** The probes from FAIRLANE_HEALTH_PROBES (see the header), or the default downstream probe when unset. Throws naming the bad field. */
export function parseHealthProbes(raw: string | undefined, downstreamUrl: string): ProbeSpec[] {
  if (!raw?.trim()) return [{ dep: "fhir-gateway", kind: "http", url: `${downstreamUrl.replace(/\/+$/, "")}/health` }];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new Error(`FAIRLANE_HEALTH_PROBES is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ProbesSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (i) => `  FAIRLANE_HEALTH_PROBES${i.path.map((s) => (typeof s === "number" ? `[${s}]` : `.${String(s)}`)).join("")}: ${i.message}`,
    );
    throw new Error(`invalid FAIRLANE_HEALTH_PROBES:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

export async function startHealthRole(p: Platform, log: Logger): Promise<{ monitor: HealthMonitor; stop(): Promise<void> }> {
  const probes = parseHealthProbes(p.config.FAIRLANE_HEALTH_PROBES, p.config.FAIRLANE_DOWNSTREAM_URL);
  const cells = p.config.FAIRLANE_CELLS.split(",");
  const store = new HealthStore(p.redis, p.keys, cells, p.clock);
  const monitor = new HealthMonitor(store, probes, p.clock, log, { intervalMs: p.config.FAIRLANE_HEALTH_INTERVAL_MS });
  monitor.start();
  // Bounded: a probe slower than an interval (or a Redis away) must not hold up the process's other roles.
  let bound: NodeJS.Timeout | undefined;
  const first = await Promise.race([
    monitor.firstRound.then(() => true),
    new Promise<boolean>((r) => (bound = setTimeout(() => r(false), p.config.FAIRLANE_HEALTH_INTERVAL_MS))),
  ]);
  clearTimeout(bound);
  log.info({ cells, deps: probes.map((x) => x.dep), firstRound: first ? "written" : "still under way" }, "health monitor started");
  return {
    monitor,
    async stop() {
      await monitor.stop();
    },
  };
}

if (isMain(import.meta.url)) runPlatformRole("health", startHealthRole);
