import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("cancelWorkflow-2.lua");

export type CancelOutcome = { kind: "missing" } | { kind: "cancelled" } | { kind: "signalled" } | { kind: "final"; state: string };

export async function cancelWorkflow(
  redis: Redis,
  cell: CellKeys,
  id: string,
  tenant: string,
  now: number,
  /** `by`: who cancels, for the tenant's trail (key:<api key id>, operator:<name>; default "producer"). */
  o: { recordTtlSec: number; message?: string; by?: string },
): Promise<CancelOutcome> {
  const [kind, state] = await script.run<[string, string?]>(
    redis,
    [cell.workflow(id), cell.queued],
    [
      id,
      tenant,
      now,
      cell.bullPrefix,
      cell.signals,
      cell.own,
      o.recordTtlSec,
      o.message ?? "cancelled by the producer",
      o.by ?? "producer",
    ],
  );
  if (kind === "final") return { kind, state: state ?? "unknown" };
  if (kind === "missing" || kind === "cancelled" || kind === "signalled") return { kind };
  throw new Error(`cancelWorkflow: unexpected reply ${kind}`);
}
