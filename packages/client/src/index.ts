/**
 * @fairlane/client: the producer API from TypeScript or JavaScript, with no dependencies.
 *   const fl = new FairlaneClient({ baseUrl: "http://localhost:3000", apiKey });
 *   const { id } = await fl.enqueue({ type: "prior-auth", class: "C", payload });
 *   const done = await fl.wait(id); // completed, failed or cancelled
 * Errors come back as FairlaneApiError with the API's code; a 429 carries
 * retryAfterSec. `enqueueMany` sends any number of workflows in bulk requests
 * and waits out backpressure instead of failing.
 */
export { FairlaneApiError } from "./apiError.js";
export { FairlaneClient, type ClientOptions, type EnqueueManyOptions } from "./client.js";
export { systemClock } from "./clock.js";
export { FINAL_STATES } from "./types.js";
export type {
  AbortSignalLike,
  Accepted,
  BulkResult,
  ClientClock,
  FetchLike,
  ListQuery,
  ResponseLike,
  Workflow,
  WorkflowClass,
  WorkflowPage,
  WorkflowRequest,
  WorkflowState,
} from "./types.js";
export { DEFAULT_POLL_MS, DEFAULT_WAIT_TIMEOUT_MS, MAX_POLL_MS, nextPollMs, type WaitOptions } from "./wait.js";
export { FairlaneWaitError } from "./waitError.js";
