import express, { Router, type Request } from "express";
import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { cancelWorkflow } from "../../queues/lua/cancelWorkflow.ts";
import { Admission, WORKFLOW_ID } from "../admission/admit.ts";
import { BulkRequestSchema, describeIssues, fieldIssues } from "../admission/schema.ts";
import type { Clock } from "../lib/clock.ts";
import { FairlaneError, invalidRequest, notFound } from "../lib/errors.ts";
import { readWorkflow } from "../workflows/record.ts";
import { waitingReason } from "../workflows/waiting.ts";
import { producerContext } from "./trace.ts";

export interface ProducerDeps {
  redis: Redis;
  keys: Keys;
  admission: Admission;
  clock: Clock;
  bodyLimit: string;
  bulkBodyLimit: string;
  /** How long an ended workflow's record is kept (FAIRLANE_RECORD_TTL_SEC). */
  recordTtlSec: number;
}

const json = (limit: string) => express.json({ limit, strict: true, type: ["application/json", "application/*+json"] });

function requireBody(req: Request): unknown {
  if (req.body === undefined)
    throw invalidRequest("the body must be JSON, sent with Content-Type: application/json");
  return req.body;
}

/** The producer API under /v1. Every route runs after tenantAuth has set req.tenant. */
export function producerRouter(d: ProducerDeps): Router {
  const r = Router();

  r.post("/workflows/bulk", json(d.bulkBodyLimit), async (req, res) => {
    const parsed = BulkRequestSchema.safeParse(requireBody(req));
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw invalidRequest(`invalid bulk request: ${describeIssues(issues)}`, issues);
    }
    const result = await d.admission.admitBulk(req.tenant!, parsed.data.workflows, producerContext(req));
    const allBackpressure =
      result.accepted.length === 0 && result.rejected.every((x) => x.error.code === "BACKPRESSURE");
    if (allBackpressure) {
      const retryAfter = d.admission.retryAfterSec;
      res.setHeader("Retry-After", String(retryAfter));
      res.status(429).json({
        error: { code: "BACKPRESSURE", message: result.rejected[0]!.error.message, details: { retryAfterSec: retryAfter } },
        ...result,
      });
      return;
    }
    res.status(202).json(result);
  });

  r.post("/workflows", json(d.bodyLimit), async (req, res) => {
    const { status, body } = await d.admission.admitOne(req.tenant!, requireBody(req), producerContext(req));
    if (body.duplicate) res.setHeader("Idempotent-Replayed", "true");
    res.status(status).json(body);
  });

  r.get("/workflows/:id", async (req, res) => {
    const cell = cellOf(d, req);
    const view = WORKFLOW_ID.test(req.params.id) ? await readWorkflow(d.redis, cell, req.params.id, req.tenant!) : null;
    if (!view) throw notFound();
    if (view.state === "queued") {
      const reason = await waitingReason(d.redis, cell, d.admission.tenantEntry(req.tenant!).policy, d.clock.now());
      if (reason) view.waitingReason = reason;
    }
    res.json(view);
  });

  r.delete("/workflows/:id", async (req, res) => {
    if (!WORKFLOW_ID.test(req.params.id)) throw notFound();
    const cell = cellOf(d, req);
    const outcome = await cancelWorkflow(d.redis, cell, req.params.id, req.tenant!, d.clock.now(), { recordTtlSec: d.recordTtlSec });
    if (outcome.kind === "missing") throw notFound();
    if (outcome.kind === "final")
      throw new FairlaneError("ALREADY_FINISHED", `workflow is already ${outcome.state}`, 409, { state: outcome.state });
    const view = await readWorkflow(d.redis, cell, req.params.id, req.tenant!);
    res.status(outcome.kind === "cancelled" ? 200 : 202).json(view);
  });

  return r;
}

function cellOf(d: ProducerDeps, req: Request) {
  return d.keys.cell(d.admission.tenantEntry(req.tenant!).policy.cell);
}
