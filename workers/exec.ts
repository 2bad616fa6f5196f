/**
 * The exec role: the worker pool. Scale it horizontally; each process adds
 * FAIRLANE_CONCURRENCY slots to pool FAIRLANE_POOL while it heartbeats, split
 * evenly among the cells in FAIRLANE_CELLS (docs/cluster.md).
 *   REDIS_URL=redis://... FAIRLANE_POOL=eu-west-1 FAIRLANE_CONCURRENCY=20 tsx workers/exec.ts
 * Workflow types: the built-in examples, plus the modules named in
 * FAIRLANE_WORKFLOW_MODULES (comma-separated paths; each calls defineWorkflow).
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Logger } from "pino";
import { DEFAULT_EXEC, ExecWorker, type ExecRuntime, type ExecWorkerOptions } from "../src/exec/execWorker.ts";
import { HealthCache } from "../src/backpressure/healthCache.ts";
import { HealthStore } from "../src/backpressure/healthStore.ts";
import { PassiveHealth } from "../src/backpressure/passiveHealth.ts";
import type { Config } from "../src/lib/config.ts";
import { setGateQueueDepthSource } from "../src/observability/metrics.ts";
import { TenantBudget } from "../src/runtime/budget.ts";
import { CpuPool } from "../src/runtime/cpuPool.ts";
import { TenantRateLimits } from "../src/runtime/rateLimit.ts";
import { ToolGate } from "../src/runtime/toolGate.ts";
import type { Platform } from "../src/platform.ts";
import { workflowTypes } from "../src/workflows/registry.ts";
import { runtimePolicy } from "../src/tenancy/policy.ts";
import { llmSettingsFromEnv } from "../src/agents/models.ts";
import "../src/workflows/noop.ts";
import "../src/dev/examples/index.ts";
import { startParentLink } from "../src/dev/execChildren.ts";
import { isMain, runPlatformRole } from "./role.ts";

export async function loadWorkflowModules(list: string): Promise<void> {
  for (const m of list.split(",").filter(Boolean)) await import(pathToFileURL(resolve(m)).href);
}

/**
 * The exec role's wiring: one subscriber connection (cell signals and the tool gate's wake-ups), the
 * tool gate, dependency health (a watched dependency whose signal is missing is not healthy; one no
 * monitor watches has no backpressure), passive health from tool-call outcomes, worker threads for
 * ctx.cpu, and per cell the tenants' rate limits and budgets. ExecWorker runs the workflows with them.
 */
export async function startExecRole(p: Platform, log: Logger): Promise<{ worker: ExecWorker; stop(): Promise<void> }> {
  const c = p.config;
  await loadWorkflowModules(c.FAIRLANE_WORKFLOW_MODULES);
  const cells = c.FAIRLANE_CELLS.split(",");
  const subscriber = p.connect();
  subscriber.on("error", () => undefined);
  // The runs' own commands (start and finish, the tool gate, spend, health reads, durable steps) on one
  // connection with ioredis's auto-pipelining: what the process's runs send in the same tick goes out in one
  // write and comes back in one read. A busy process sends thousands of these a second; one write each was
  // the largest cost of a tool call (the storm benchmark's profiles; docs/benchmarks.md). Scripts are sent as
  // EVALSHA (queues/lua/script.ts), which an automatic pipeline can carry; rate limits stay on the platform's
  // connection, since rate-limiter-flexible defines its script on first use. On a Redis Cluster the option is
  // dropped (src/lib/redis.ts: a resharding would fail commands).
  const hot = p.connect({ enableAutoPipelining: true });
  hot.on("error", () => undefined);
  const gate = new ToolGate(hot, subscriber, p.keys, p.clock);
  await gate.start(cells);
  setGateQueueDepthSource(() => gate.queueDepths());
  const healthStore = new HealthStore(p.redis, p.keys, cells, p.clock);
  const health = new HealthCache(
    { isHealthy: async (cell, dep) => !(await hot.sismember(p.keys.cell(cell).deps, dep)) || healthStore.isHealthy(cell, dep) },
    () => p.clock.now(),
    250,
  );
  const passive = new PassiveHealth(healthStore, health, p.clock);
  const cpu = new CpuPool();
  const llm = llmSettingsFromEnv(process.env, `${c.FAIRLANE_DOWNSTREAM_URL}/v1`);
  const runtime: ExecRuntime = {
    subscriber,
    health,
    runtimeFor: (cellName) => ({
      redis: hot,
      clock: p.clock,
      gate,
      rateLimits: new TenantRateLimits(p.redis, p.keys.cell(cellName).rateLimitPrefix),
      budget: new TenantBudget(hot, p.keys.cell(cellName).budgetPrefix, p.clock, undefined, p.registry),
      modelUrl: c.FAIRLANE_MODEL_URL ?? `${c.FAIRLANE_DOWNSTREAM_URL}/model/stream`,
      llm,
      cpu,
      health,
      onOutcome: (cell, dep, ok, overloaded) => passive.record(cell, dep, ok, overloaded),
      livePolicy: async (tenant) => {
        const e = p.registry.get(tenant) ?? (await p.registry.fresh(tenant));
        if (!e) return undefined;
        const org = e.policy.org === null ? undefined : p.registry.org(e.policy.org);
        const mctc = org?.policy.mctc;
        return { ...runtimePolicy(e.policy), ...(org && mctc ? { orgGate: { name: org.org, mctc } } : {}) };
      },
    }),
  };
  const worker = new ExecWorker(() => p.connect(), p.redis, p.keys, p.clock, log, execOptions(c, cells), runtime);
  await worker.start();
  log.info({ types: workflowTypes() }, "workflow types");
  return {
    worker,
    stop: async () => {
      await worker.stop();
      gate.stop();
      await cpu.destroy();
      await subscriber.quit().catch(() => undefined);
      await hot.quit().catch(() => undefined);
    },
  };
}

function execOptions(c: Config, cells: string[]): ExecWorkerOptions {
  return {
    ...DEFAULT_EXEC,
    pool: c.FAIRLANE_POOL,
    concurrency: c.FAIRLANE_CONCURRENCY,
    instance: c.FAIRLANE_WORKER_ID,
    cells,
    shutdownGraceMs: c.FAIRLANE_SHUTDOWN_GRACE_MS,
    lockDurationMs: c.FAIRLANE_LOCK_MS,
    stalledIntervalMs: Math.max(1000, Math.floor(c.FAIRLANE_LOCK_MS / 2)),
    heartbeatTtlMs: c.FAIRLANE_HEARTBEAT_TTL_MS,
    heartbeatMs: Math.max(200, Math.floor(c.FAIRLANE_HEARTBEAT_TTL_MS / 4)),
    recordTtlSec: c.FAIRLANE_RECORD_TTL_SEC,
    lagTargetMs: c.FAIRLANE_EXEC_LAG_TARGET_MS,
  };
}

if (isMain(import.meta.url)) {
  const parent = startParentLink(); // one of npm start's exec processes (src/dev/execChildren.ts)
  runPlatformRole("exec", async (p, log) => {
    const role = await startExecRole(p, log);
    parent?.ready();
    return role;
  });
}
