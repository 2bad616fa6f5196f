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
import { DEFAULT_EXEC, ExecWorker } from "../src/exec/execWorker.ts";
import type { Platform } from "../src/platform.ts";
import { workflowTypes } from "../src/workflows/registry.ts";
import { runtimePolicy } from "../src/tenancy/policy.ts";
import { llmSettingsFromEnv } from "../src/agents/models.ts";
import "../src/workflows/noop.ts";
import "../src/examples/index.ts";
import { isMain, runPlatformRole } from "./role.ts";

export async function loadWorkflowModules(list: string): Promise<void> {
  for (const m of list.split(",").filter(Boolean)) await import(pathToFileURL(resolve(m)).href);
}

export async function startExecRole(p: Platform, log: Logger): Promise<{ worker: ExecWorker; stop(): Promise<void> }> {
  const c = p.config;
  await loadWorkflowModules(c.FAIRLANE_WORKFLOW_MODULES);
  const worker = new ExecWorker(() => p.connect(), p.redis, p.keys, p.clock, log, {
    ...DEFAULT_EXEC,
    pool: c.FAIRLANE_POOL,
    concurrency: c.FAIRLANE_CONCURRENCY,
    instance: c.FAIRLANE_WORKER_ID,
    cells: c.FAIRLANE_CELLS.split(","),
    shutdownGraceMs: c.FAIRLANE_SHUTDOWN_GRACE_MS,
    lockDurationMs: c.FAIRLANE_LOCK_MS,
    stalledIntervalMs: Math.max(1000, Math.floor(c.FAIRLANE_LOCK_MS / 2)),
    heartbeatTtlMs: c.FAIRLANE_HEARTBEAT_TTL_MS,
    heartbeatMs: Math.max(200, Math.floor(c.FAIRLANE_HEARTBEAT_TTL_MS / 4)),
    recordTtlSec: c.FAIRLANE_RECORD_TTL_SEC,
    modelUrl: c.FAIRLANE_MODEL_URL ?? `${c.FAIRLANE_DOWNSTREAM_URL}/model/stream`,
    llm: llmSettingsFromEnv(process.env, `${c.FAIRLANE_DOWNSTREAM_URL}/v1`),
    livePolicy: async (tenant) => {
      const e = p.registry.get(tenant) ?? (await p.registry.fresh(tenant));
      return e && runtimePolicy(e.policy);
    },
  });
  await worker.start();
  log.info({ types: workflowTypes() }, "workflow types");
  return { worker, stop: () => worker.stop() };
}

if (isMain(import.meta.url)) runPlatformRole("exec", startExecRole);
