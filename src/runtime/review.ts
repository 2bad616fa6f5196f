import { untilAborted } from "../lib/abortable.ts";
import type { ReviewDecision, ReviewRequest, RunInfo, RuntimeDeps } from "./workflowContext.ts";

/** The largest review request (summary and data, as JSON) a workflow may put before a reviewer. */
export const MAX_REVIEW_REQUEST_BYTES = 64 * 1024;
const STEP_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * ctx.review: the decision, when a reviewer already gave it (the review step's durable result, written by
 * queues/lua/decideReview-1.lua); otherwise the run ends as awaiting review (RunInfo.review: the runner
 * suspends it) and this throws REVIEW_PENDING so the handler unwinds.
 */
export async function requestReview(d: RuntimeDeps, r: RunInfo, req: ReviewRequest): Promise<ReviewDecision> {
  const name = req.name ?? "review";
  if (!STEP_NAME.test(name)) throw reviewError("REVIEW_INVALID", "a review's name is 1-64 of [A-Za-z0-9_.:-]");
  if (typeof req.summary !== "string" || !req.summary) throw reviewError("REVIEW_INVALID", "a review needs a summary");
  const step = `review:${name}`;
  const done = await untilAborted(d.redis.hget(r.cell.steps(r.workflowId), step), r.signal);
  if (done !== null) return (JSON.parse(done) as { v: ReviewDecision }).v;
  const request = JSON.stringify({ summary: req.summary, data: req.data ?? null });
  if (Buffer.byteLength(request) > MAX_REVIEW_REQUEST_BYTES)
    throw reviewError("REVIEW_INVALID", `a review request is at most ${MAX_REVIEW_REQUEST_BYTES} bytes of JSON`);
  r.review(step, request);
  throw reviewError("REVIEW_PENDING", "suspended until a reviewer decides");
}

function reviewError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}
