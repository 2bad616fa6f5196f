import type { Redis } from "ioredis";
import type { CellKeys } from "../../../queues/keys.ts";

/**
 * How each accepted workflow ended, read from its record while the record
 * still exists: the soak shortens FAIRLANE_RECORD_TTL_SEC so records expire
 * during the run (Redis memory must reach a steady state), so the records of
 * unfinished workflows are polled at every sample and each final state is
 * kept the moment it is seen.
 */
export interface Ending {
  state: string;
  errorCode?: string;
}

const FINAL = new Set(["completed", "failed", "cancelled"]);

export class Endings {
  readonly ended = new Map<string, Ending>();
  /** Records that vanished before their final state was seen (a TTL is set only when a workflow ends). */
  readonly vanished = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly cell: CellKeys,
  ) {}

  /** Reads the record of every id not yet seen ended. */
  async poll(ids: Iterable<string>): Promise<void> {
    const open = [...ids].filter((id) => !this.ended.has(id) && !this.vanished.has(id));
    for (let i = 0; i < open.length; i += 500) {
      const chunk = open.slice(i, i + 500);
      const p = this.redis.pipeline();
      for (const id of chunk) p.hmget(this.cell.workflow(id), "state", "errorCode");
      const rows = (await p.exec())!.map(([, v]) => v as (string | null)[]);
      chunk.forEach((id, k) => {
        const [state, errorCode] = rows[k]!;
        if (!state) this.vanished.add(id);
        else if (FINAL.has(state)) this.ended.set(id, errorCode ? { state, errorCode } : { state });
      });
    }
  }

  /** Counts by final state (failed ones by reason); `open` = accepted and not seen ended. */
  summary(ids: Iterable<string>): { byState: Record<string, number>; open: string[]; failedWithoutReason: string[] } {
    const byState: Record<string, number> = {};
    const open: string[] = [];
    const failedWithoutReason: string[] = [];
    for (const id of ids) {
      const e = this.ended.get(id);
      if (!e) {
        if (this.vanished.has(id)) byState["expired before seen"] = (byState["expired before seen"] ?? 0) + 1;
        else open.push(id);
        continue;
      }
      const label = e.state === "failed" ? `failed ${e.errorCode ?? "(no reason)"}` : e.state;
      byState[label] = (byState[label] ?? 0) + 1;
      if (e.state === "failed" && !e.errorCode) failedWithoutReason.push(id);
    }
    return { byState, open, failedWithoutReason };
  }
}
