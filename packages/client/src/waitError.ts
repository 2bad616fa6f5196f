import type { WorkflowState } from "./types.js";

/**
 * `wait` gave up before the workflow ended: its timeout passed (`reason` "timeout") or its
 * signal aborted (`reason` "aborted"). The workflow itself goes on; `lastState` is what the
 * last look saw (undefined if none answered).
 */
export class FairlaneWaitError extends Error {
  constructor(
    readonly reason: "timeout" | "aborted",
    readonly workflowId: string,
    readonly lastState: WorkflowState | undefined,
    readonly waitedMs: number,
  ) {
    super(
      reason === "timeout"
        ? `workflow ${workflowId} did not end within ${waitedMs} ms (last seen ${lastState ?? "never"})`
        : `waiting for workflow ${workflowId} was aborted after ${waitedMs} ms (last seen ${lastState ?? "never"})`,
    );
    this.name = "FairlaneWaitError";
  }
}
