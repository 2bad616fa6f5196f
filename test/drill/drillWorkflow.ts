/**
 * The drill's workflow type `drill-agent`, loaded into exec processes with
 * FAIRLANE_WORKFLOW_MODULES. It is the product's prior-auth agent (tool calls
 * through the gate to the simulated downstream, so an outage parks it) plus
 * some held time, wrapped in the drill's own observer: every run appends
 * `start` and `end` lines to `<DRILL_OBS_DIR>/<pid>.log` with a synchronous
 * write — no Redis, so the record survives Redis being killed, and a kill -9
 * of this process loses nothing already written.
 * payload: prior-auth's ({ steps, fanout, latencyMs, submit }) and durationMs
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { priorAuthAgent } from "../../src/dev/examples/priorAuth.ts";
import { defineWorkflow } from "../../src/workflows/registry.ts";
import { drillNow } from "./invariants.ts";

const file = join(process.env.DRILL_OBS_DIR ?? "/tmp", `${process.pid}.log`);
const pool = process.env.FAIRLANE_POOL ?? "default";

defineWorkflow(
  "drill-agent",
  async (ctx) => {
    const line = (kind: string, extra = "") =>
      appendFileSync(
        file,
        `${kind}|${ctx.workflowId}|${ctx.tenant}|${ctx.class}|${pool}|${process.pid}|${drillNow().toFixed(3)}|${extra}\n`,
      );
    line("start");
    let how = "done";
    try {
      await priorAuthAgent(ctx); // payload { steps, fanout, latencyMs, submit } as prior-auth's
      await sleep(Number(ctx.payload.durationMs ?? 0), undefined, { signal: ctx.signal });
    } catch (err) {
      how = ctx.signal.aborted ? String(ctx.signal.reason) : "error";
      throw err;
    } finally {
      line("end", ctx.signal.aborted ? String(ctx.signal.reason) : how);
    }
    return { ok: true };
  },
  { dependencies: ["fhir-gateway"] },
);
