import type { DispatchOptions } from "../../queues/lua/dispatch.ts";

/** The dispatch script's options as the dispatcher's defaults set them, for script-level tests. */
export const TEST_DISPATCH_OPTS: DispatchOptions = {
  maxMoves: 100,
  reserveA: 0.1,
  batchMaxShare: 0.5,
  batchMinShare: 0.05,
  maxRefresh: 1000,
  capacityCap: 0,
  recordTtlSec: 3600,
};
