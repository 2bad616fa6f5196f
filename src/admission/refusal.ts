import type { AdmitInput } from "../../queues/lua/admitWorkflow.ts";
import { FairlaneError } from "../lib/errors.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import type { WorkflowTypes } from "./workflowTypes.ts";

/**
 * Work that can never run, refused before anything is written: Class A for a tenant whose
 * mcaUrgent is 0 (the dispatcher starts Class A only under that cap), and a type no live exec
 * worker of the cell can run (accepted while none advertises: src/admission/workflowTypes.ts).
 */
export async function refusal(types: WorkflowTypes, entry: TenantEntry, input: AdmitInput): Promise<FairlaneError | undefined> {
  if (input.cls === "A" && entry.policy.mcaUrgent === 0)
    return new FairlaneError(
      "CLASS_NOT_ALLOWED",
      `tenant ${entry.tenant} may not run Class A: its policy's mcaUrgent is 0, so a Class A workflow would never start (send class B, or raise mcaUrgent)`,
      422,
      { field: "class", policy: "mcaUrgent", mcaUrgent: 0 },
    );
  const verdict = await types.check(entry.policy.cell, input.type);
  if (!verdict.ok)
    return new FairlaneError(
      "UNKNOWN_WORKFLOW_TYPE",
      `no exec worker can run workflow type "${input.type}"; known types: ${verdict.known.slice(0, 20).join(", ")}${verdict.known.length > 20 ? ", ..." : ""}`,
      400,
      { field: "type", type: input.type, known: verdict.known.slice(0, 100) },
    );
  return undefined;
}
